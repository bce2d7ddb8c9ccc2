#!/usr/bin/env python
"""Fine-tune a pretrained rnn_hf language model as a text classifier with few labels: ULMFiT on `Trainer`.

    python scripts/finetune.py --model_name_or_path runs/clm --num_labeled_per_class 10 --output_dir runs/clf
    python scripts/finetune.py --model_name_or_path runs/clm --from_scratch ...   # the baseline: same net, no pretraining

Reads top to bottom like transformers' `run_glue.py`: arguments; data (the document split that pretraining used,
N labeled documents per class from its train split, a validation set carved from those N when N is large enough,
the held-out test documents); tokenizer and model; the ULMFiT recipe (discriminative learning rates, slanted triangular schedule,
gradual unfreezing, concat pooling); `Trainer` with early stopping; test metrics, `metrics.json` and a model card.

The test documents are never trained on nor used to pick a model: the validation set comes out of the labeled
budget, as it would for a user who only has N labels per class.
"""

import argparse
import json
import math
import shlex
import shutil
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import torch
import transformers
from datasets import ClassLabel, Dataset, Value
from sklearn.metrics import accuracy_score, f1_score
from transformers import (
    AutoConfig,
    AutoTokenizer,
    DataCollatorWithPadding,
    PrinterCallback,
    Trainer,
    TrainingArguments,
    set_seed,
)

from rnn_hf import RnnForSequenceClassification
from rnn_hf.configuration_rnn import BACKBONE_DROPOUT_ARGUMENTS
from rnn_hf.data import DataError, load_text_dataset, sample_per_class, split_by_document
from rnn_hf.hub import write_model_card
from rnn_hf.training import UserError, check_rnn_checkpoint, exit_on_user_error
from rnn_hf.training.ulmfit import (
    EarlyStoppingAfterUnfreezing,
    GradualUnfreezing,
    discriminative_param_groups,
    layer_groups,
    set_trainable_groups,
    slanted_triangular_schedule,
)

# Below this many labeled documents per class, early stopping on a carved-out validation set costs more than it
# gives: at 10 per class (2 held out), BBC News test accuracy 41.6% with it vs 56.2% training all 20 epochs on all
# 10 (scripts/finetune.py on the `make demo` LM, seed 0, layer-norm head).
MIN_PER_CLASS_FOR_VALIDATION = 25
# Peak learning rates of the head: the better of 1e-3 and 5e-3 on validation documents for each network in the
# label-efficiency study (100 labels per class; docs/results/label_efficiency.md). From scratch, 5e-3 stays at
# chance (24% validation accuracy vs 73% at 1e-3); pretrained, 5e-3 wins (84% vs 75%).
PRETRAINED_LEARNING_RATE = 5e-3
SCRATCH_LEARNING_RATE = 1e-3

# ULMFiT's batch norm in the head. On BBC News, 128 tokens, seed 0 (test accuracy, batch vs layer norm, both keeping
# the short batch): 74.6% vs 63.1% fine-tuning the 34-minute causal LM with 10 labels per class, 80.0% vs 69.0% from
# scratch with 100.
DEFAULT_CLASSIFIER_NORM = "batch"

# What pretraining records in `split.json`, and what it used when the file is absent.
DEFAULT_SPLIT = {"test_size": 0.2, "validation_size": 0.1, "seed": 0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Fine-tune an rnn_hf language model as a few-label text classifier (ULMFiT on Trainer).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model_name_or_path", required=True, help="a local rnn_hf checkpoint (scripts/pretrain.py's output)"
    )
    model.add_argument(
        "--from_scratch",
        action="store_true",
        help="same config and tokenizer as the checkpoint, freshly initialized weights: the baseline",
    )
    model.add_argument(
        "--freeze_backbone",
        action="store_true",
        help="train the classifier head only, on the pretrained network's features (a probe): its embeddings and "
        "recurrent layers never change and run without dropout. About half the time of fine-tuning them; on BBC "
        "News with 10 labels per class (seed 0, 128 tokens) 71.2%% test accuracy vs 74.6%%",
    )
    model.add_argument(
        "--classifier_pooling",
        default="concat",
        choices=["last", "mean", "max", "concat"],
        help="concat = ULMFiT's [last, max, mean] over the non-pad positions",
    )
    model.add_argument(
        "--classifier_hidden_size",
        type=int,
        default=50,
        help="ULMFiT's head: norm -> linear to this width -> ReLU -> norm -> linear; 0 = one linear layer",
    )
    model.add_argument(
        "--classifier_norm",
        default=DEFAULT_CLASSIFIER_NORM,
        choices=["layer", "batch"],
        help="normalization in ULMFiT's head: per feature (batch, ULMFiT's own) or per document (layer)",
    )
    model.add_argument(
        "--classifier_dropout",
        type=float,
        default=None,
        help="dropout on the pooled features (default: the checkpoint's classifier_dropout)",
    )

    data = parser.add_argument_group("data (default: the BBC News corpus)")
    data.add_argument("--dataset_name", default=None, help="a Hugging Face Hub dataset")
    data.add_argument("--dataset_config_name", default=None)
    data.add_argument("--train_file", default=None, help="a local .csv, .json/.jsonl or .txt file")
    data.add_argument(
        "--validation_file",
        default=None,
        help="a local file of held-out labeled documents: used as the TEST set (see load_data)",
    )
    data.add_argument("--text_column", default="text")
    data.add_argument("--label_column", default="label")
    data.add_argument(
        "--num_labeled_per_class",
        type=int,
        default=None,
        help="N labeled training documents per class, drawn with --seed (default: all of them)",
    )
    data.add_argument(
        "--validation_fraction",
        type=float,
        default=None,
        help="share of the labeled documents held out for early stopping (stratified, >= 1 per class); "
        "0 = no validation: train all epochs, keep the last model. Default: 0.2 when every class has at least "
        f"{MIN_PER_CLASS_FOR_VALIDATION} labeled documents, else 0 (a few held-out documents pick epochs by "
        "noise and take labels from training)",
    )
    data.add_argument(
        "--max_seq_length", type=int, default=512, help="documents are truncated to this many tokens"
    )

    training = parser.add_argument_group("training")
    training.add_argument("--output_dir", required=True)
    training.add_argument(
        "--seed", type=int, default=0, help="draws the labeled subset, the head and the batches"
    )
    training.add_argument(
        "--num_train_epochs",
        type=int,
        default=None,
        help="default when pretrained: about 2,000 document passes, 5 to 20 epochs; from scratch: about 4,000, "
        "10 to 40 epochs (a random network needs more passes)",
    )
    training.add_argument("--per_device_train_batch_size", type=int, default=8)
    training.add_argument("--per_device_eval_batch_size", type=int, default=32)
    training.add_argument(
        "--learning_rate",
        type=float,
        default=None,
        help=f"peak learning rate of the head (default: {PRETRAINED_LEARNING_RATE:g} when pretrained, "
        f"{SCRATCH_LEARNING_RATE:g} from scratch)",
    )
    training.add_argument("--weight_decay", type=float, default=0.01)
    training.add_argument(
        "--discriminative_lr_decay",
        type=float,
        default=None,
        help="each layer group below the head learns this many times slower than the one above "
        "(default: 2.6 when pretrained, 1.0 = off from scratch)",
    )
    training.add_argument(
        "--slanted_triangular",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="slanted triangular learning rates (cut_frac 0.1, ratio 32); off: linear decay",
    )
    training.add_argument(
        "--gradual_unfreezing",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="epoch 1 trains the head only, each later epoch one more layer group down "
        "(default: on when pretrained, off from scratch)",
    )
    training.add_argument(
        "--early_stopping_patience",
        type=int,
        default=5,
        help="stop after this many epochs without a better validation score, counted once "
        "every layer trains; 0 = off",
    )
    training.add_argument(
        "--group_by_length",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="batch documents of similar length: on a CPU a padded batch runs the LSTM on packed "
        "sequences, ~10x slower to train than an unpadded one",
    )
    training.add_argument("--mixed_precision", default="no", choices=["no", "fp16", "bf16"])
    training.add_argument(
        "--quiet", action="store_true", help="no progress bar or logs, not even the summary line"
    )
    args = parser.parse_args(argv)

    if args.classifier_hidden_size < 0:
        parser.error(
            f"--classifier_hidden_size must be 0 (no hidden layer) or positive, got {args.classifier_hidden_size}"
        )
    if args.num_labeled_per_class is not None and args.num_labeled_per_class < 1:
        parser.error(f"--num_labeled_per_class must be at least 1, got {args.num_labeled_per_class}")
    if args.validation_fraction is not None and not 0 <= args.validation_fraction < 1:
        parser.error(f"--validation_fraction must be in [0, 1), got {args.validation_fraction}")
    for name in (
        "max_seq_length",
        "per_device_train_batch_size",
        "per_device_eval_batch_size",
        "num_train_epochs",
    ):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.learning_rate is None:
        args.learning_rate = default_learning_rate(args.from_scratch)
    if not args.learning_rate > 0 or (
        args.discriminative_lr_decay is not None and not args.discriminative_lr_decay > 0
    ):
        parser.error("--learning_rate and --discriminative_lr_decay must be positive")
    if args.discriminative_lr_decay is None:
        args.discriminative_lr_decay = 1.0 if args.from_scratch else 2.6
    if args.freeze_backbone and args.gradual_unfreezing:
        parser.error("--freeze_backbone trains the head only: --gradual_unfreezing has nothing to unfreeze")
    if args.gradual_unfreezing is None:
        args.gradual_unfreezing = not (args.from_scratch or args.freeze_backbone)
    return args


class FullBatchTrainer(Trainer):
    """`Trainer` that drops the last, short batch of each training epoch (as fastai does), never an evaluation one:
    `TrainingArguments.dataloader_drop_last` would drop test documents too."""

    def get_train_dataloader(self):
        self.args.dataloader_drop_last = True
        try:
            return super().get_train_dataloader()
        finally:
            self.args.dataloader_drop_last = False


def default_learning_rate(from_scratch: bool) -> float:
    """The head's peak learning rate when `--learning_rate` is not given."""
    return SCRATCH_LEARNING_RATE if from_scratch else PRETRAINED_LEARNING_RATE


def read_split_settings(checkpoint: Path) -> dict:
    """The document split pretraining used (`split.json` in the checkpoint), so that its test documents stay unseen."""
    path = checkpoint / "split.json"
    if not path.is_file():
        return dict(DEFAULT_SPLIT)
    try:
        recorded = json.loads(path.read_text())
        return {key: recorded.get(key, default) for key, default in DEFAULT_SPLIT.items()}
    except (json.JSONDecodeError, AttributeError) as err:
        raise UserError(f"'{path}' is not a valid split record ({err})") from None


def load_data(args: argparse.Namespace, split_settings: dict) -> tuple[Dataset, Dataset, list[str], str]:
    """`(pool, test, label_names, description)`: the documents labels may be drawn from, and the test documents.

    - the default corpus (BBC News), a local `--train_file` or a Hub dataset with a single split: the document split
      of pretraining (`split_by_document` with `split.json`'s settings); the pool is its `train` split, the
      test set its `test` split. Its `validation` split (pretraining's model selection) is not used.
    - `--train_file` with `--validation_file`: the validation file is the test set. A user who passes labeled
      held-out documents wants them to measure the model; early stopping takes its validation set from the
      labeled budget anyway (a user with N labels per class has no other labels).
    - a Hub dataset with several splits: `train` is the pool, `test` (else `validation`) the test set.
    """
    raw = load_text_dataset(
        dataset_name=args.dataset_name,
        dataset_config_name=args.dataset_config_name,
        train_file=args.train_file,
        validation_file=args.validation_file,
        text_column=args.text_column,
        label_column=args.label_column,
    )
    source = args.dataset_name or args.train_file or "BBC News"
    if args.validation_file is not None:
        pool, test = raw["train"], raw["validation"]
        description = f"labeled pool: '{args.train_file}'; test: '{args.validation_file}'"
    elif len(raw) == 1:
        # Split exactly as pretraining did. It loads the corpus without --label_column, and `split_by_document`
        # stratifies by a `label` class column when there is one: with another --label_column the two views of
        # the corpus could split differently. So split the row numbers of pretraining's view.
        as_pretrained = raw
        if args.label_column != "label":
            as_pretrained = load_text_dataset(
                args.dataset_name, args.dataset_config_name, args.train_file, text_column=args.text_column
            )
        rows = next(iter(as_pretrained.values()))
        splits = split_by_document(rows.add_column("__row__", list(range(len(rows)))), **split_settings)
        labeled = next(iter(raw.values()))
        pool, test = labeled.select(splits["train"]["__row__"]), labeled.select(splits["test"]["__row__"])
        settings = ", ".join(f"{key}={value}" for key, value in split_settings.items())
        description = (
            f"{source}, split by document as in pretraining ({settings}): labels drawn from its {len(pool)} train "
            f"documents; test on its {len(test)} held-out test documents, never seen in pretraining or here."
        )
    else:
        test_split = "test" if "test" in raw else "validation"
        if "train" not in raw or test_split not in raw:
            raise UserError(
                f"dataset '{source}' has splits {list(raw)}; finetune.py needs 'train' and 'test'"
            )
        pool, test = raw["train"], raw[test_split]
        description = f"{source}: labels drawn from its train split, test on its {test_split} split"

    pool, test = (
        dataset.filter(lambda text: bool(text and text.strip()), input_columns="text")
        for dataset in (pool, test)
    )
    label_names = pool.features["label"].names if isinstance(pool.features["label"], ClassLabel) else None
    if label_names is None:  # integer class ids in a csv/json file: name each class by its id
        dtype = pool.features["label"].dtype
        if not dtype.startswith(("int", "uint")):
            raise UserError(
                f"label column '{args.label_column}' holds {dtype} values; classification needs class names or ids"
            )
        label_names = [str(value) for value in sorted(set(pool["label"]) | set(test["label"]))]
        classes = ClassLabel(names=label_names)
        pool, test = (
            dataset.cast_column("label", Value("string")).cast_column("label", classes)
            for dataset in (pool, test)
        )
    return pool, test, label_names, description


def default_validation_fraction(labels: list[int], num_labels: int) -> float:
    """0.2 when every class has `MIN_PER_CLASS_FOR_VALIDATION` labeled documents, else 0 (no early stopping)."""
    smallest_class = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_labels).min()
    return 0.2 if smallest_class >= MIN_PER_CLASS_FOR_VALIDATION else 0.0


def carve_validation(
    labeled: Dataset, fraction: float, seed: int, label_names: list[str]
) -> tuple[Dataset, Dataset | None]:
    """Split the labeled documents into train and validation, stratified: `fraction` of each class, at least one."""
    if fraction == 0:
        return labeled, None
    labels = np.asarray(labeled["label"])
    rng = np.random.default_rng(seed)
    validation_rows = []
    for label, name in enumerate(label_names):
        rows = np.flatnonzero(labels == label)
        if len(rows) == 0:
            continue
        if len(rows) < 2:
            raise UserError(
                f"class '{name}' has {len(rows)} labeled document: too few to hold one out for validation; "
                "label more documents or pass --validation_fraction 0"
            )
        num_validation = min(len(rows) - 1, max(1, round(fraction * len(rows))))
        validation_rows.extend(rng.choice(rows, size=num_validation, replace=False).tolist())
    in_validation = np.zeros(len(labeled), dtype=bool)
    in_validation[validation_rows] = True
    return labeled.select(np.flatnonzero(~in_validation)), labeled.select(np.flatnonzero(in_validation))


def default_num_epochs(num_train: int, from_scratch: bool = False) -> int:
    """Pretrained: about 2,000 document passes in all, 5 to 20 epochs. From scratch: about 4,000, 10 to 40 epochs.

    A random network needs more passes than one that starts from language-model features: on BBC News with 100
    labels per class and lr 1e-3 it still improved on validation documents within its last 5 of 10 epochs (early
    stopping, patience 5, did not fire). Where there is a validation split, early stopping ends either sooner.
    """
    if from_scratch:
        return max(10, min(40, math.ceil(4000 / num_train)))
    return max(5, min(20, math.ceil(2000 / num_train)))


def compute_metrics(eval_prediction) -> dict:
    """Accuracy and macro-F1 (scikit-learn: the `evaluate` library would download its metrics from the Hub).

    `selection_score` picks the best epoch: the accuracy, ties broken by the lower loss. On a few validation
    documents the accuracy plateaus early; with ties going to the first epoch that reached it, early stopping
    would keep a barely trained model. The loss term never outweighs one more correct document.
    """
    logits, labels = eval_prediction.predictions, eval_prediction.label_ids
    predictions = logits.argmax(-1)
    log_probs = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float32), dim=-1)
    loss = float(-log_probs[torch.arange(len(labels)), torch.as_tensor(labels)].mean())
    accuracy = float(accuracy_score(labels, predictions))
    return {
        "accuracy": accuracy,
        "macro_f1": float(f1_score(labels, predictions, average="macro")),
        "selection_score": accuracy - 0.5 * min(loss, 10.0) / 10.0 / len(labels),
    }


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    start_time = time.time()
    datasets.disable_progress_bars()  # map/filter bars on a few documents are noise
    transformers.utils.logging.disable_progress_bar()
    if args.quiet:
        transformers.logging.set_verbosity_error()
    if args.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise UserError("--mixed_precision fp16 needs a CUDA GPU; use bf16 or no on a CPU")

    checkpoint = check_rnn_checkpoint(args.model_name_or_path)
    split_settings = read_split_settings(checkpoint)
    try:
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    except (OSError, ValueError) as err:
        raise UserError(
            f"--model_name_or_path '{checkpoint}' has no usable tokenizer ({str(err).splitlines()[0]})"
        ) from None

    # ---- data: the labeled subset, its validation part, the held-out test documents
    pool, test, label_names, data_description = load_data(args, split_settings)
    if args.num_labeled_per_class is None:
        labeled = pool
    else:
        try:
            labeled = sample_per_class(pool, args.num_labeled_per_class, seed=args.seed)
        except DataError as err:
            raise DataError(
                f"--num_labeled_per_class {args.num_labeled_per_class} is too many for the training documents: {err}"
            ) from None
    validation_fraction = args.validation_fraction
    if validation_fraction is None:
        validation_fraction = default_validation_fraction(labeled["label"], len(label_names))
    train_dataset, eval_dataset = carve_validation(labeled, validation_fraction, args.seed, label_names)

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=args.max_seq_length)

    def prepare(dataset: Dataset) -> Dataset:
        columns = [name for name in dataset.column_names if name != "label"]
        return dataset.map(tokenize, batched=True, remove_columns=columns)

    train_dataset, test_dataset = prepare(train_dataset), prepare(test)
    eval_dataset = prepare(eval_dataset) if eval_dataset is not None else None
    num_epochs = args.num_train_epochs or default_num_epochs(len(train_dataset), args.from_scratch)

    # ---- model: the pretrained backbone under a new classifier head, or the same network freshly initialized
    config_overrides = dict(
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: index for index, name in enumerate(label_names)},
        problem_type="single_label_classification",
        classifier_pooling=args.classifier_pooling,
        classifier_hidden_size=args.classifier_hidden_size or None,
        classifier_norm=args.classifier_norm,
    )
    if args.classifier_dropout is not None:
        config_overrides["classifier_dropout"] = args.classifier_dropout
    if args.freeze_backbone:  # fixed features: `Trainer` puts the model in train mode, so no backbone dropout
        config_overrides.update(dict.fromkeys(BACKBONE_DROPOUT_ARGUMENTS, 0.0))
    set_seed(args.seed)
    if args.from_scratch:
        config = AutoConfig.from_pretrained(checkpoint, **config_overrides)
        model = RnnForSequenceClassification(config)
    else:
        # transformers prints a table of the checkpoint's unused LM head and the new classifier: one line instead
        verbosity = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()
        model, loading_info = RnnForSequenceClassification.from_pretrained(
            checkpoint, output_loading_info=True, **config_overrides
        )
        transformers.logging.set_verbosity(verbosity)
        missing_backbone = sorted(
            key for key in loading_info["missing_keys"] if not key.startswith("classifier.")
        )
        if missing_backbone or loading_info["mismatched_keys"]:
            bad = missing_backbone or sorted(str(key) for key in loading_info["mismatched_keys"])
            raise UserError(
                f"--model_name_or_path '{checkpoint}' does not fit this network: {', '.join(bad[:3])} ..."
            )
        if not args.quiet:
            print(
                f"loaded the backbone of {checkpoint}; new classifier head, unused: {sorted(loading_info['unexpected_keys'])}"
            )
    if len(tokenizer) > model.config.vocab_size:
        raise UserError(
            f"the tokenizer of '{checkpoint}' has {len(tokenizer)} tokens but the model only {model.config.vocab_size}"
        )

    # ---- the ULMFiT recipe: discriminative learning rates, slanted triangular schedule, gradual unfreezing
    groups = layer_groups(model)  # head, last recurrent layer, ..., embeddings
    if args.freeze_backbone:
        set_trainable_groups(groups, 1)
        groups = groups[:1]  # the optimizer and the recipe below see the head only
    optimizer = torch.optim.AdamW(
        discriminative_param_groups(
            groups, args.learning_rate, args.discriminative_lr_decay, args.weight_decay
        ),
        betas=(0.9, 0.99),  # fastai's: a shorter memory of the squared gradients than torch's 0.999
    )
    # Batch norm measures each training batch: the last, short one of an epoch (2 of 50 documents at 8 per batch)
    # would give noisy statistics and pull the running ones used at test time. fastai drops it too.
    drop_last = args.classifier_norm == "batch" and len(train_dataset) >= args.per_device_train_batch_size
    batches = len(train_dataset) / args.per_device_train_batch_size
    steps_per_epoch = math.floor(batches) if drop_last else math.ceil(batches)
    scheduler = (
        slanted_triangular_schedule(optimizer, steps_per_epoch * num_epochs)
        if args.slanted_triangular
        else None
    )
    callbacks = [GradualUnfreezing(groups)] if args.gradual_unfreezing else []
    validate = eval_dataset is not None
    if validate and args.early_stopping_patience > 0:
        first_full_epoch = len(groups) if args.gradual_unfreezing else 1
        callbacks.append(
            EarlyStoppingAfterUnfreezing(args.early_stopping_patience, start_epoch=first_full_epoch)
        )

    if "train_sampling_strategy" in TrainingArguments.__dataclass_fields__:  # transformers >= 5.2x
        length_grouping = {"train_sampling_strategy": "group_by_length" if args.group_by_length else "random"}
    else:  # pragma: no cover
        length_grouping = {"group_by_length": args.group_by_length}
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        num_train_epochs=num_epochs,
        per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size,
        learning_rate=args.learning_rate,  # informative only: the optimizer above holds the rates
        weight_decay=args.weight_decay,
        eval_strategy="epoch" if validate else "no",
        save_strategy="epoch" if validate else "no",
        save_total_limit=1,
        save_only_model=True,  # the best checkpoint is only reloaded, never resumed: no optimizer state
        load_best_model_at_end=validate,
        metric_for_best_model="selection_score" if validate else None,
        greater_is_better=True,
        **length_grouping,
        logging_strategy="epoch",
        report_to=[],
        seed=args.seed,
        data_seed=args.seed,
        bf16=args.mixed_precision == "bf16",
        fp16=args.mixed_precision == "fp16",
        disable_tqdm=args.quiet,
        dataloader_pin_memory=torch.cuda.is_available(),
        log_level="error" if args.quiet else "passive",
    )
    trainer = (FullBatchTrainer if drop_last else Trainer)(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
        optimizers=(optimizer, scheduler),  # no scheduler: Trainer's linear decay
    )
    if args.quiet:
        trainer.remove_callback(PrinterCallback)

    # ---- train, then measure on the held-out test documents
    train_result = trainer.train()
    epochs_trained = round(trainer.state.epoch)
    test_metrics = trainer.evaluate(test_dataset, metric_key_prefix="test")
    wall_time = time.time() - start_time

    trainer.save_model(args.output_dir)  # the best (or last) model and the tokenizer
    for checkpoint_dir in Path(args.output_dir).glob("checkpoint-*"):  # the final model is saved above
        shutil.rmtree(checkpoint_dir)
    metrics = {
        "accuracy": test_metrics["test_accuracy"],
        "macro_f1": test_metrics["test_macro_f1"],
        "test_loss": test_metrics["test_loss"],
        "best_validation_accuracy": None,
        "num_labeled_per_class": args.num_labeled_per_class,
        "num_train": len(train_dataset),
        "num_validation": len(eval_dataset) if validate else 0,
        "num_test": len(test_dataset),
        "epochs_trained": epochs_trained,
        "num_train_epochs": num_epochs,
        "train_runtime_s": round(train_result.metrics["train_runtime"], 1),
        "wall_time_s": round(wall_time, 1),
        "from_scratch": args.from_scratch,
        "freeze_backbone": args.freeze_backbone,
        "seed": args.seed,
    }
    if validate:
        best = [
            log
            for log in trainer.state.log_history
            if log.get("eval_selection_score") == trainer.state.best_metric
        ]
        metrics["best_validation_accuracy"] = best[0]["eval_accuracy"] if best else None
    (Path(args.output_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")

    write_model_card(
        args.output_dir,
        "text-classification",
        model,
        data_description=data_description,
        training={
            "initialization": "random (from scratch)" if args.from_scratch else f"pretrained: `{checkpoint}`",
            "labeled documents per class": args.num_labeled_per_class or "all",
            "backbone": "frozen (head only)" if args.freeze_backbone else "fine-tuned",
            "classifier head": f"{args.classifier_pooling} pooling -> "
            + (
                f"ULMFiT head (hidden {args.classifier_hidden_size}, {args.classifier_norm} norm)"
                if args.classifier_hidden_size
                else "linear"
            ),
            "train / validation / test documents": f"{metrics['num_train']} / {metrics['num_validation']} / {metrics['num_test']}",
            "epochs": f"{epochs_trained} of {num_epochs}"
            + (" (early stopping)" if epochs_trained < num_epochs else ""),
            "batch size": args.per_device_train_batch_size,
            "peak learning rate (head)": args.learning_rate,
            "discriminative lr decay": args.discriminative_lr_decay,
            "schedule": "slanted triangular (cut_frac 0.1, ratio 32)"
            if args.slanted_triangular
            else "linear decay",
            "gradual unfreezing": args.gradual_unfreezing,
            "weight decay": args.weight_decay,
            "max sequence length": args.max_seq_length,
            "seed": args.seed,
            "wall time": f"{wall_time:.0f} s",
        },
        metrics={"test accuracy": metrics["accuracy"], "test macro-F1": metrics["macro_f1"]},
        command="python scripts/finetune.py " + shlex.join(argv),
        summary=f"A {len(label_names)}-class text classifier ({', '.join(label_names)}) fine-tuned from "
        + ("scratch" if args.from_scratch else f"the language model `{checkpoint.name}`")
        + f" with {args.num_labeled_per_class or 'all'} labeled documents per class.",
        limitations=f"Trained on {len(labeled)} labeled documents of one corpus: expect lower accuracy on other "
        f"sources, topics or periods. Documents are truncated to their first {args.max_seq_length} tokens.",
    )
    if not args.quiet:
        print(
            f"test accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f} on {metrics['num_test']} "
            f"documents ({metrics['num_train']} train + {metrics['num_validation']} validation labeled, "
            f"epochs {epochs_trained}/{num_epochs}, {wall_time:.0f} s) -> {args.output_dir}"
        )
    return metrics


if __name__ == "__main__":
    main()
