"""The document-split contract between pretraining and fine-tuning: `split.json` in a pretrained checkpoint.

Pretraining writes what it saw: how it split the corpus (so that fine-tuning can draw the same held-out test
documents) and a digest of every document it trained on. Fine-tuning reads the file and refuses to test on a
document whose digest is there: a model tested on text it was pretrained on reports a number it has not earned.

    split = DocumentSplit.from_documents(train["text"], source="news.txt", test_size=0.2, validation_size=0.1, seed=0)
    split.save(output_dir)
    ...
    DocumentSplit.load(checkpoint).check_unseen(test["text"], what="test documents")
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .text import DataError

SPLIT_FILE = "split.json"
# What pretraining used (and what older checkpoints without these keys used): 20% test, 10% validation, seed 0.
DEFAULT_SPLIT = {"test_size": 0.2, "validation_size": 0.1, "seed": 0}


def document_digest(text: str) -> str:
    """A short fingerprint of a document, blind to whitespace (re-wrapped or re-indented text is the same text)."""
    return hashlib.blake2b(" ".join(text.split()).encode("utf-8"), digest_size=8).hexdigest()


@dataclass
class DocumentSplit:
    """What a pretraining run saw.

    Args:
        source: the corpus (a dataset name, a file, or "BBC News").
        test_size, validation_size, seed: the `split_by_document` settings when pretraining split the corpus
            itself; `None` when the user gave the held-out documents (`--validation_file`): then no test
            documents were held out, and fine-tuning needs its own (`--test_file`).
        trained_on: the digests (`document_digest`) of every document pretraining trained on, sorted.
    """

    source: str
    test_size: float | None = None
    validation_size: float | None = None
    seed: int | None = None
    trained_on: list[str] = field(default_factory=list)

    @classmethod
    def from_documents(cls, texts: Iterable[str], **kwargs) -> "DocumentSplit":
        return cls(trained_on=sorted({document_digest(text) for text in texts}), **kwargs)

    @property
    def holds_out_test_documents(self) -> bool:
        """True when pretraining split the corpus itself and left a test split out of its training."""
        return self.test_size is not None

    @property
    def settings(self) -> dict:
        """The keyword arguments of `split_by_document` that reproduce pretraining's split."""
        if not self.holds_out_test_documents:
            raise DataError(
                f"pretraining on '{self.source}' did not split it (its held-out documents came from a "
                "validation file): there is no test split to reproduce; give the test documents explicitly"
            )
        return {"test_size": self.test_size, "validation_size": self.validation_size, "seed": self.seed}

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / SPLIT_FILE
        path.write_text(json.dumps(asdict(self)) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> "DocumentSplit":
        """The split recorded in `directory`; a checkpoint without one gets the defaults and no digests."""
        path = Path(directory) / SPLIT_FILE
        if not path.is_file():
            return cls(source="unknown (no split.json)", **DEFAULT_SPLIT)
        try:
            recorded = json.loads(path.read_text())
            known = {key: recorded[key] for key in cls.__dataclass_fields__ if key in recorded}
        except (json.JSONDecodeError, TypeError) as err:
            raise DataError(f"'{path}' is not a valid split record ({err})") from None
        if "test_size" not in recorded:  # written before the contract had a source: split with the defaults
            known.update(DEFAULT_SPLIT)
        return cls(**{"source": "unknown", **known})

    def seen(self, texts: Iterable[str]) -> list[bool]:
        """For each text, whether pretraining trained on it (a corpus may hold the same document twice: one copy
        in its train split, one in its test split)."""
        trained_on = set(self.trained_on)
        return [document_digest(text) in trained_on for text in texts]

    def check_unseen(self, texts: Iterable[str], what: str = "test documents") -> None:
        """Raise a `DataError` if any of `texts` is a document pretraining trained on."""
        texts = list(texts)
        seen = sum(self.seen(texts))
        if seen:
            raise DataError(
                f"{seen} of the {len(texts)} {what} were in the pretraining text of this checkpoint "
                f"('{self.source}', see its {SPLIT_FILE}): testing on them would overstate the model. Use "
                "documents pretraining never saw (a --test_file, or pretrain without --validation_file so that "
                "its split holds test documents out)"
            )
