"""Fine-tuning a pretrained rnn_hf model with few labels, as a library: ULMFiT on `Trainer`, pluggable tasks.

    from transformers import TrainingArguments
    from rnn_hf.training import DataArguments, ModelArguments, UlmfitRecipe, finetune

    metrics = finetune(
        ModelArguments(model_name_or_path="runs/clm"),
        DataArguments(task="single_label_classification", num_labeled_per_class=10),
        TrainingArguments(output_dir="runs/clf", learning_rate=None, num_train_epochs=None),  # None: the recipe's
        UlmfitRecipe(),
    )

Reads top to bottom like transformers' `run_glue.py`: data (the document split pretraining recorded in
`split.json`, N labeled documents from its train split, a validation set carved from those N when there are
enough, the held-out test documents, checked never to have been pretrained on) -> model -> the ULMFiT recipe
(discriminative learning rates, slanted triangular schedule, gradual unfreezing, concat pooling and ULMFiT's head)
-> `Trainer` with early stopping -> test metrics, `metrics.json` and a model card.

A task (`TASKS`) says what a label is, how to draw labeled documents, which head and loss, and which metrics:
single-label and multi-label classification, regression and token classification.
"""

import dataclasses
import json
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from datasets import ClassLabel, Dataset, Sequence, Value
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score
from transformers import (
    AutoConfig,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    PrinterCallback,
    Trainer,
    TrainingArguments,
    set_seed,
)

from ..configuration_rnn import BACKBONE_DROPOUT_ARGUMENTS, RnnConfig, RnnSeq2SeqConfig
from ..data import DataError, DocumentSplit, load_text_dataset, sample_per_class, split_by_document
from ..hub import write_model_card
from ..modeling_rnn import RnnForSequenceClassification, RnnForTokenClassification
from ..modeling_rnn_seq2seq import RnnForSeq2SeqLM
from .cli import UserError, check_rnn_checkpoint, quiet_transformers
from .ulmfit import (
    EarlyStoppingAfterUnfreezing,
    GradualUnfreezing,
    discriminative_param_groups,
    layer_groups,
    set_trainable_groups,
    slanted_triangular_schedule,
)

# The recipe's defaults. Their measurements are dated in docs/results/ and the CHANGELOG.
MIN_PER_CLASS_FOR_VALIDATION = 25  # below this, a carved-out validation set costs more labels than it gives
PRETRAINED_LEARNING_RATE = 5e-3  # the head's peak rate, tuned on validation documents (label_efficiency.md)
SCRATCH_LEARNING_RATE = 1e-3


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        metadata={"help": "a local rnn_hf checkpoint (scripts/pretrain.py's output)"}
    )
    from_scratch: bool = field(
        default=False, metadata={"help": "same config and tokenizer, fresh weights: the baseline"}
    )
    freeze_backbone: bool = field(
        default=False, metadata={"help": "train the head only, on the pretrained features (a probe)"}
    )
    classifier_pooling: str = field(default="concat", metadata={"choices": ["last", "mean", "max", "concat"]})
    classifier_hidden_size: int = field(
        default=50,
        metadata={"help": "ULMFiT's head: norm -> linear to this width -> ReLU -> norm -> linear; 0: linear"},
    )
    classifier_norm: str = field(default="batch", metadata={"choices": ["batch", "layer"]})
    classifier_dropout: float | None = field(default=None, metadata={"help": "default: the checkpoint's"})
    classifier_bptt: int | None = field(
        default=None,
        metadata={
            "help": "read documents longer than this in chunks of this many tokens, the state carried (ULMFiT's "
            "BPT3C; raise --max_seq_length to read whole documents); default: one pass"
        },
    )
    classifier_grad_length: int | None = field(
        default=None,
        metadata={"help": "with --classifier_bptt: gradients through the chunks of the last N tokens only"},
    )

    def __post_init__(self):
        if self.classifier_hidden_size < 0:
            raise UserError(
                f"--classifier_hidden_size must be 0 or positive, got {self.classifier_hidden_size}"
            )
        for name in ("classifier_bptt", "classifier_grad_length"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UserError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.classifier_grad_length is not None and self.classifier_bptt is None:
            raise UserError("--classifier_grad_length needs --classifier_bptt (the chunks it counts)")


@dataclass
class DataArguments:
    task: str = field(
        default="single_label_classification",
        metadata={
            "choices": [
                "single_label_classification",
                "multi_label_classification",
                "regression",
                "token_classification",
            ]
        },  # fmt: skip
    )
    dataset_name: str | None = field(default=None, metadata={"help": "a Hub dataset (default: BBC News)"})
    dataset_config_name: str | None = None
    train_file: str | None = field(default=None, metadata={"help": "labeled documents: .csv, .json/.jsonl"})
    test_file: str | None = field(
        default=None,
        metadata={"help": "held-out labeled test documents; default: the test split pretraining held out"},
    )
    text_column: str = field(default="text", metadata={"help": "token classification: a list of words"})
    label_column: str = field(
        default="label", metadata={"help": "a class, a list of classes, a number, or a tag per word"}
    )
    num_labeled_per_class: int | None = field(
        default=None, metadata={"help": "classification: N labeled documents per class, drawn with --seed"}
    )
    num_labeled: int | None = field(
        default=None, metadata={"help": "N labeled documents drawn at random (regression, multi-label, tags)"}
    )
    validation_fraction: float | None = field(
        default=None,
        metadata={
            "help": "labeled share held out for early stopping; 0: none. Default: 0.2 with at least "
            f"{MIN_PER_CLASS_FOR_VALIDATION} labels per class (or 5x that in all), else 0"
        },  # fmt: skip
    )
    max_seq_length: int = field(default=512, metadata={"help": "documents are truncated to this many tokens"})

    def __post_init__(self):
        for name in ("num_labeled_per_class", "num_labeled", "max_seq_length"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UserError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.validation_fraction is not None and not 0 <= self.validation_fraction < 1:
            raise UserError(f"--validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if self.task not in TASKS:
            raise UserError(f"--task must be one of {sorted(TASKS)}, got {self.task!r}")
        if self.num_labeled_per_class is not None and self.task != "single_label_classification":
            raise UserError("--num_labeled_per_class is for single-label classification; use --num_labeled")


@dataclass
class UlmfitRecipe:
    """ULMFiT's fine-tuning recipe (Howard & Ruder, 2018); `None` picks the default for pretrained or scratch."""

    discriminative_lr_decay: float | None = field(
        default=None,
        metadata={
            "help": "each layer group learns this many times slower than the one above "
            "(default: 2.6 pretrained, 1.0 from scratch)"
        },  # fmt: skip
    )
    slanted_triangular: bool = field(default=True, metadata={"help": "slanted triangular learning rates"})
    cut_frac: float = 0.1
    ratio: float = 32.0
    gradual_unfreezing: bool | None = field(
        default=None, metadata={"help": "one more layer group each epoch (default: on when pretrained)"}
    )
    early_stopping_patience: int = field(
        default=5,
        metadata={"help": "epochs without a better validation score, once every layer trains; 0: off"},
    )

    def resolve(self, model_args: ModelArguments) -> "UlmfitRecipe":
        """A copy with every `None` replaced by the default for this model."""
        scratch = model_args.from_scratch
        if model_args.freeze_backbone and self.gradual_unfreezing:
            raise UserError(
                "--freeze_backbone trains the head only: --gradual_unfreezing has nothing to unfreeze"
            )
        if self.discriminative_lr_decay is not None and not self.discriminative_lr_decay > 0:
            raise UserError(f"--discriminative_lr_decay must be positive, got {self.discriminative_lr_decay}")
        return dataclasses.replace(
            self,
            discriminative_lr_decay=self.discriminative_lr_decay or (1.0 if scratch else 2.6),
            gradual_unfreezing=(
                not (scratch or model_args.freeze_backbone)
                if self.gradual_unfreezing is None
                else self.gradual_unfreezing
            ),  # fmt: skip
        )


# TrainingArguments defaults that suit the recipe (scripts/finetune.py starts from them; each can be overridden).
RECIPE_TRAINING_DEFAULTS = dict(
    learning_rate=None,  # the recipe's: PRETRAINED_LEARNING_RATE or SCRATCH_LEARNING_RATE
    num_train_epochs=None,  # the recipe's: default_num_epochs
    per_device_train_batch_size=8,
    per_device_eval_batch_size=32,
    seed=0,
    adam_beta2=0.99,  # fastai's: a shorter memory of the squared gradients than torch's 0.999
    logging_strategy="epoch",
    report_to="none",
    # documents of similar length in a batch: a padded batch runs the LSTM on packed sequences, slower on a CPU
    train_sampling_strategy="group_by_length",
    dataloader_pin_memory=torch.cuda.is_available(),
)


def recipe_training_arguments(output_dir: str, quiet: bool = False, **overrides) -> TrainingArguments:
    """`TrainingArguments` with the recipe's defaults (`RECIPE_TRAINING_DEFAULTS`) and `overrides`."""
    if quiet:
        overrides = {"disable_tqdm": True, "log_level": "error", **overrides}
    return TrainingArguments(output_dir=output_dir, **{**RECIPE_TRAINING_DEFAULTS, **overrides})


def default_learning_rate(from_scratch: bool) -> float:
    return SCRATCH_LEARNING_RATE if from_scratch else PRETRAINED_LEARNING_RATE


def default_num_epochs(num_train: int, from_scratch: bool = False) -> int:
    """Pretrained: about 2,000 document passes, 5 to 20 epochs; from scratch: about 4,000, 10 to 40 epochs (a
    random network needs more passes). Early stopping ends either sooner where there is a validation split."""
    if from_scratch:
        return max(10, min(40, math.ceil(4000 / num_train)))
    return max(5, min(20, math.ceil(2000 / num_train)))


# ---- tasks


class FinetuningTask:
    """What a label is for one kind of task: labels, sampling, head, loss, metrics."""

    problem_type = "single_label_classification"
    model_class = RnnForSequenceClassification
    card_task = "text-classification"
    selection_metric, greater_is_better = "selection_score", True
    headline_metrics = ("accuracy", "macro_f1")

    def __init__(self, data_args: DataArguments):
        self.data_args = data_args
        self.label_names: list[str] | None = None

    def prepare_labels(self, pool: Dataset, test: Dataset) -> tuple[Dataset, Dataset]:
        """Cast the `label` column to the task's form; set `label_names` where labels are classes."""
        return pool, test

    def num_labels(self) -> int:
        return len(self.label_names)

    def config_overrides(self) -> dict:
        names = self.label_names or [f"LABEL_{i}" for i in range(self.num_labels())]
        return dict(num_labels=self.num_labels(), problem_type=self.problem_type, id2label=dict(enumerate(names)),
                    label2id={name: i for i, name in enumerate(names)})  # fmt: skip

    def draw_labeled(self, pool: Dataset, seed: int) -> Dataset:
        n = self.data_args.num_labeled
        if n is None:
            return pool
        if n > len(pool):
            raise DataError(f"--num_labeled {n} is more than the {len(pool)} training documents")
        return pool.select(
            sorted(np.random.default_rng(seed).choice(len(pool), size=n, replace=False).tolist())
        )

    def default_validation_fraction(self, labeled: Dataset) -> float:
        return 0.2 if len(labeled) >= 5 * MIN_PER_CLASS_FOR_VALIDATION else 0.0

    def carve_validation(
        self, labeled: Dataset, fraction: float, seed: int
    ) -> tuple[Dataset, Dataset | None]:
        if fraction == 0:
            return labeled, None
        rows = np.random.default_rng(seed).permutation(len(labeled))
        num_validation = min(len(labeled) - 1, max(1, round(fraction * len(labeled))))
        return labeled.select(sorted(rows[num_validation:])), labeled.select(sorted(rows[:num_validation]))

    def tokenize(self, dataset: Dataset, tokenizer) -> Dataset:
        def encode(batch):
            return tokenizer(batch["text"], truncation=True, max_length=self.data_args.max_seq_length)

        columns = [name for name in dataset.column_names if name != "label"]
        return dataset.map(encode, batched=True, remove_columns=columns)

    def collator(self, tokenizer):
        return DataCollatorWithPadding(tokenizer)

    def fit_training_labels(self, train: Dataset) -> Dataset:
        """Fit a transform of the labels on the training documents and apply it; `finish_model` undoes it."""
        return self.transform_labels(train)

    def transform_labels(self, dataset: Dataset) -> Dataset:
        return dataset

    def finish_model(self, model) -> None:
        pass

    def compute_metrics(self, eval_prediction) -> dict:
        raise NotImplementedError


class SingleLabelClassification(FinetuningTask):
    def prepare_labels(self, pool, test):
        feature = pool.features["label"]
        if isinstance(feature, ClassLabel):
            self.label_names = feature.names
            return pool, test
        if not feature.dtype.startswith(("int", "uint")):
            raise UserError(f"label column '{self.data_args.label_column}' holds {feature.dtype} values; "
                            "classification needs class names or ids (regression: --task regression)")  # fmt: skip
        self.label_names = [str(value) for value in sorted(set(pool["label"]) | set(test["label"]))]
        classes = ClassLabel(names=self.label_names)
        return tuple(
            d.cast_column("label", Value("string")).cast_column("label", classes) for d in (pool, test)
        )

    def draw_labeled(self, pool, seed):
        n = self.data_args.num_labeled_per_class
        if n is not None:
            try:
                return sample_per_class(pool, n, seed=seed)
            except DataError as err:
                raise DataError(
                    f"--num_labeled_per_class {n} is too many for the training documents: {err}"
                ) from None
        return super().draw_labeled(pool, seed)

    def default_validation_fraction(self, labeled):
        counts = np.bincount(np.asarray(labeled["label"], dtype=np.int64), minlength=self.num_labels())
        return 0.2 if counts.min() >= MIN_PER_CLASS_FOR_VALIDATION else 0.0

    def carve_validation(self, labeled, fraction, seed):
        """Stratified: `fraction` of each class, at least one document, never a class's last one."""
        if fraction == 0:
            return labeled, None
        labels, rng, validation_rows = np.asarray(labeled["label"]), np.random.default_rng(seed), []
        for label, name in enumerate(self.label_names):
            rows = np.flatnonzero(labels == label)
            if len(rows) == 0:
                continue
            if len(rows) < 2:
                raise UserError(f"class '{name}' has {len(rows)} labeled document: too few to hold one out for "
                                "validation; label more documents or pass --validation_fraction 0")  # fmt: skip
            size = min(len(rows) - 1, max(1, round(fraction * len(rows))))
            validation_rows.extend(rng.choice(rows, size=size, replace=False).tolist())
        held_out = np.zeros(len(labeled), dtype=bool)
        held_out[validation_rows] = True
        return labeled.select(np.flatnonzero(~held_out)), labeled.select(np.flatnonzero(held_out))

    def compute_metrics(self, eval_prediction):
        """Accuracy and macro-F1; `selection_score` (the accuracy, ties broken by the lower loss) picks the epoch:
        on a few validation documents the accuracy plateaus, and ties going to the first epoch would keep a barely
        trained model. The loss term never outweighs one more correct document."""
        logits, labels = eval_prediction.predictions, eval_prediction.label_ids
        predictions = logits.argmax(-1)
        log_probs = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float32), dim=-1)
        loss = float(-log_probs[torch.arange(len(labels)), torch.as_tensor(labels)].mean())
        accuracy = float(accuracy_score(labels, predictions))
        return {"accuracy": accuracy, "macro_f1": float(f1_score(labels, predictions, average="macro")),
                "selection_score": accuracy - 0.5 * min(loss, 10.0) / 10.0 / len(labels)}  # fmt: skip


class MultiLabelClassification(FinetuningTask):
    """Each document has a set of classes: `label` is a list of class names (or ids); sigmoid outputs, BCE loss."""

    problem_type = "multi_label_classification"
    selection_metric = "micro_f1"
    headline_metrics = ("micro_f1", "macro_f1", "exact_match")

    def prepare_labels(self, pool, test):
        if not isinstance(pool.features["label"], (Sequence, list)):
            raise UserError(f"--task multi_label_classification needs a list of classes per document in "
                            f"'{self.data_args.label_column}', got {pool.features['label']}")  # fmt: skip
        self.label_names = sorted({str(c) for d in (pool, test) for classes in d["label"] for c in classes})
        index = {name: i for i, name in enumerate(self.label_names)}

        def multi_hot(batch):
            rows = np.zeros((len(batch["label"]), len(index)), dtype=np.float32)
            for row, classes in enumerate(batch["label"]):
                rows[row, [index[str(c)] for c in classes]] = 1.0
            return {"label": rows.tolist()}

        features = pool.features.copy()
        features["label"] = Sequence(Value("float32"))
        return tuple(d.map(multi_hot, batched=True, features=features) for d in (pool, test))

    def compute_metrics(self, eval_prediction):
        predicted = eval_prediction.predictions > 0  # sigmoid > 0.5
        labels = eval_prediction.label_ids > 0.5
        return {"micro_f1": float(f1_score(labels, predicted, average="micro", zero_division=0)),
                "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0)),
                "exact_match": float((predicted == labels).all(axis=1).mean())}  # fmt: skip


class Regression(FinetuningTask):
    """A number per document: MSE on standardized targets; RMSE, MAE, Pearson and Spearman on the original scale.

    The targets are standardized with the mean and std of the training labels, and the saved model's last
    layer is rescaled after training, so that it predicts on the original scale."""

    problem_type = "regression"
    selection_metric, greater_is_better = "rmse", False
    headline_metrics = ("rmse", "mae", "pearson", "spearman")
    card_task = "text-regression"

    def prepare_labels(self, pool, test):
        dtype = pool.features["label"].dtype if isinstance(pool.features["label"], Value) else "?"
        if not dtype.startswith(("float", "int", "uint")):
            raise UserError(f"--task regression needs a number per document in '{self.data_args.label_column}', "
                            f"got {pool.features['label']}")  # fmt: skip
        for name, dataset in (("training", pool), ("test", test)):
            if not np.isfinite(np.asarray(dataset["label"], dtype=np.float64)).all():
                raise DataError(
                    f"the {name} labels of '{self.data_args.label_column}' hold NaN or infinite values"
                )
        return tuple(d.cast_column("label", Value("float32")) for d in (pool, test))

    def num_labels(self):
        return 1

    mean, std = 0.0, 1.0

    def fit_training_labels(self, train):
        labels = np.asarray(train["label"], dtype=np.float64)
        self.mean, self.std = float(labels.mean()), float(labels.std()) or 1.0
        return self.transform_labels(train)

    def transform_labels(self, dataset):
        return dataset.map(
            lambda b: {"label": [(v - self.mean) / self.std for v in b["label"]]}, batched=True
        )

    def finish_model(self, model):
        last = (
            model.classifier if isinstance(model.classifier, torch.nn.Linear) else model.classifier.out_proj
        )
        with torch.no_grad():
            last.weight.mul_(self.std)
            last.bias.mul_(self.std).add_(self.mean)
        self.mean, self.std = 0.0, 1.0  # the metrics below now see the original scale

    def compute_metrics(self, eval_prediction):
        predicted = np.asarray(eval_prediction.predictions, dtype=np.float64).reshape(-1)
        labels = np.asarray(eval_prediction.label_ids, dtype=np.float64).reshape(-1)
        return regression_metrics(predicted * self.std + self.mean, labels * self.std + self.mean)


def regression_metrics(predicted, labels) -> dict:
    """RMSE, MAE, Pearson and Spearman correlations (0 where a constant makes a correlation undefined)."""
    predicted, labels = np.asarray(predicted, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    constant = predicted.std() == 0 or labels.std() == 0
    return {"rmse": float(np.sqrt(np.mean((predicted - labels) ** 2))),
            "mae": float(np.mean(np.abs(predicted - labels))),
            "pearson": 0.0 if constant else float(pearsonr(predicted, labels)[0]),
            "spearman": 0.0 if constant else float(spearmanr(predicted, labels)[0])}  # fmt: skip


class TokenClassification(FinetuningTask):
    """A tag per word: `text` is a list of words, `label` a list of tags (names or ids). The first sub-token of a
    word carries its tag, the others are ignored (-100), as transformers' `run_ner.py` does."""

    problem_type = None
    model_class = RnnForTokenClassification
    card_task = "token-classification"
    selection_metric = "accuracy"
    headline_metrics = ("accuracy", "macro_f1")

    def prepare_labels(self, pool, test):
        feature = pool.features["label"]
        inner = getattr(feature, "feature", None)
        if isinstance(inner, ClassLabel):
            self.label_names = inner.names
            return pool, test
        if not isinstance(feature, (Sequence, list)):
            raise UserError(f"--task token_classification needs a list of tags per document in "
                            f"'{self.data_args.label_column}', got {feature}")  # fmt: skip
        self.label_names = sorted({str(tag) for d in (pool, test) for tags in d["label"] for tag in tags})
        index = {name: i for i, name in enumerate(self.label_names)}
        return tuple(d.map(lambda b: {"label": [[index[str(t)] for t in tags] for tags in b["label"]]}, batched=True)
                     for d in (pool, test))  # fmt: skip

    def config_overrides(self):
        return {**super().config_overrides(), "problem_type": None}

    def tokenize(self, dataset, tokenizer):
        def encode(batch):
            encoded = tokenizer(batch["text"], is_split_into_words=True, truncation=True,
                                max_length=self.data_args.max_seq_length)  # fmt: skip
            encoded["labels"] = []
            for row, tags in enumerate(batch["label"]):
                previous, aligned = None, []
                for word in encoded.word_ids(row):
                    aligned.append(-100 if word is None or word == previous else tags[word])
                    previous = word
                encoded["labels"].append(aligned)
            return encoded

        return dataset.map(encode, batched=True, remove_columns=dataset.column_names)

    def collator(self, tokenizer):
        return DataCollatorForTokenClassification(tokenizer)

    def compute_metrics(self, eval_prediction):
        predicted, labels = eval_prediction.predictions.argmax(-1), eval_prediction.label_ids
        scored = labels != -100
        return {"accuracy": float(accuracy_score(labels[scored], predicted[scored])),
                "macro_f1": float(f1_score(labels[scored], predicted[scored], average="macro"))}  # fmt: skip


TASKS: dict[str, type[FinetuningTask]] = {
    "single_label_classification": SingleLabelClassification,
    "multi_label_classification": MultiLabelClassification,
    "regression": Regression,
    "token_classification": TokenClassification,
}


# ---- data


@dataclass
class FinetuningData:
    """The documents labels may be drawn from (`pool`), the test documents, and how they were chosen."""

    pool: Dataset
    test: Dataset
    description: str
    # what is computed from these documents once for every method of a study (e.g. the pool's TF-IDF); not an
    # __init__ argument, so a copy with other documents (dataclasses.replace) starts empty
    derived: dict = field(default_factory=dict, init=False, repr=False, compare=False)


def check_classes(pool: Dataset, test: Dataset) -> None:
    """Two classes at least among the labeled pool's documents, and none in the test documents that the pool lacks:
    no label could teach it."""
    feature = pool.features["label"]
    name = feature.int2str if isinstance(feature, ClassLabel) else str
    taught = set(pool["label"])
    if len(taught) < 2:
        raise UserError(f"classification needs two classes at least; the training documents have "
                        f"{sorted(map(name, taught))}")  # fmt: skip
    untaught = sorted(map(name, set(test["label"]) - taught))
    if untaught:
        raise UserError(f"the test documents have class(es) {untaught} that no training document has, so no "
                        "label can teach them")  # fmt: skip


def load_finetuning_data(data_args: DataArguments, checkpoint: Path) -> FinetuningData:
    """The labeled pool and the test documents, checked against what pretraining trained on (`split.json`).

    - `--test_file`: the test set; the pool is `--train_file` (or the default corpus / the dataset's train split).
    - a corpus with a single split (the default BBC News, a `--train_file`, a one-split Hub dataset): the document
      split pretraining recorded; the pool is its train split, the test set its test split.
    - a Hub dataset with several splits: `train` is the pool, `test` (else `validation`) the test set.
    In every case, a test document pretraining trained on is refused (`DocumentSplit.check_unseen`).
    """
    split = DocumentSplit.load(checkpoint)
    args = data_args
    raw = load_text_dataset(args.dataset_name, args.dataset_config_name, args.train_file, text_column=args.text_column,
                            label_column=args.label_column)  # fmt: skip
    source = args.dataset_name or args.train_file or "BBC News"
    if args.test_file is not None:
        if args.train_file is None:
            raise UserError("--test_file needs --train_file (the labeled documents to draw from)")
        # one call, so that string labels get one encoding in both files
        raw = load_text_dataset(train_file=args.train_file, validation_file=args.test_file, text_column=args.text_column,
                                label_column=args.label_column, validation_flag="--test_file")  # fmt: skip
        pool, test = raw["train"], raw["validation"]
        description = f"labeled pool: {source}; test: '{args.test_file}'"
    elif len(raw) == 1:
        # Split exactly as pretraining did: it loaded the corpus without the label column, and `split_by_document`
        # stratifies by a `label` class column when there is one, so split the row numbers of pretraining's view.
        try:
            settings = split.settings
        except DataError as err:
            raise DataError(f"{err} (--test_file)") from None
        as_pretrained = load_text_dataset(args.dataset_name, args.dataset_config_name, args.train_file,
                                          text_column=args.text_column)["train"]  # fmt: skip
        splits = split_by_document(
            as_pretrained.add_column("__row__", list(range(len(as_pretrained)))), **settings
        )
        labeled = next(iter(raw.values()))
        pool, test = labeled.select(splits["train"]["__row__"]), labeled.select(splits["test"]["__row__"])
        # A corpus may hold a document twice, one copy on each side of the split: keep the test copy out.
        duplicates = split.seen(test["text"])
        test = test.select([row for row, seen in enumerate(duplicates) if not seen])
        description = (
            f"{source}, split by document as in pretraining ({', '.join(f'{k}={v}' for k, v in settings.items())}): "
            f"labels drawn from its {len(pool)} train documents; test on its {len(test)} held-out test documents, "
            "never seen in pretraining or here"
            + (
                f" ({sum(duplicates)} test documents left out: copies of documents pretraining saw)."
                if any(duplicates)
                else "."
            )
        )
    else:
        test_split = "test" if "test" in raw else "validation"
        if "train" not in raw or test_split not in raw:
            raise UserError(
                f"dataset '{source}' has splits {list(raw)}; fine-tuning needs 'train' and 'test'"
            )
        pool, test = raw["train"], raw[test_split]
        description = f"{source}: labels drawn from its train split, test on its {test_split} split"
    if args.task != "token_classification":
        pool, test = (
            d.filter(lambda text: bool(text and text.strip()), input_columns="text") for d in (pool, test)
        )
    if args.task == "single_label_classification":
        check_classes(pool, test)
    texts = (
        test["text"] if args.task != "token_classification" else [" ".join(words) for words in test["text"]]
    )
    split.check_unseen(texts, what="test documents")
    return FinetuningData(pool, test, description)


# ---- fine-tuning


class FullBatchTrainer(Trainer):
    """`Trainer` that drops the last, short batch of each training epoch (as fastai does), never an evaluation one:
    `TrainingArguments.dataloader_drop_last` would drop test documents too."""

    def get_train_dataloader(self):
        self.args.dataloader_drop_last = True
        try:
            return super().get_train_dataloader()
        finally:
            self.args.dataloader_drop_last = False


def load_model(model_args: ModelArguments, task: FinetuningTask, checkpoint: Path, quiet: bool):
    overrides = dict(task.config_overrides(), classifier_pooling=model_args.classifier_pooling,
                     classifier_hidden_size=model_args.classifier_hidden_size or None,
                     classifier_norm=model_args.classifier_norm)  # fmt: skip
    if model_args.classifier_dropout is not None:
        overrides["classifier_dropout"] = model_args.classifier_dropout
    if model_args.classifier_bptt is not None:
        if task.model_class is not RnnForSequenceClassification:
            raise UserError(
                "--classifier_bptt is for document classification and regression, not token tagging"
            )
        overrides.update(classifier_bptt=model_args.classifier_bptt,
                         classifier_grad_length=model_args.classifier_grad_length)  # fmt: skip
    # fixed features: `Trainer` puts the model in train mode, so no backbone dropout
    if model_args.freeze_backbone:
        overrides.update(dict.fromkeys(BACKBONE_DROPOUT_ARGUMENTS, 0.0))
    if isinstance(AutoConfig.from_pretrained(checkpoint), RnnSeq2SeqConfig):
        return encoder_of_seq2seq(task, checkpoint, overrides, model_args.from_scratch, quiet)
    if model_args.from_scratch:
        return task.model_class(AutoConfig.from_pretrained(checkpoint, **overrides))
    # one line below instead of transformers' table of unused weights; a checkpoint with another head (e.g.
    # pretrain.py's bag_of_words, whose head predicts words) gets a new one
    with quiet_transformers():
        model, info = task.model_class.from_pretrained(checkpoint, output_loading_info=True,
                                                       ignore_mismatched_sizes=True, **overrides)  # fmt: skip
    missing = sorted(key for key in info["missing_keys"] if not key.startswith("classifier."))
    # transformers 5 reports (name, checkpoint shape, model shape)
    mismatched = sorted(name for name, *_ in info["mismatched_keys"] if not name.startswith("classifier."))
    if missing or mismatched:
        bad = missing or mismatched
        raise UserError(
            f"--model_name_or_path '{checkpoint}' does not fit this network: {', '.join(bad[:3])} ..."
        )
    if not quiet:
        print(f"loaded the backbone of {checkpoint}; new head, unused: {sorted(info['unexpected_keys'])}")
    return model


def encoder_of_seq2seq(
    task: FinetuningTask, checkpoint: Path, overrides: dict, from_scratch: bool, quiet: bool
):
    """A classifier whose backbone is the encoder of a seq2seq checkpoint (a sequence autoencoder, a translation
    model): Dai & Le's fine-tuning of a pretrained sequence autoencoder. The backbone's dropouts start at 0, as a
    pretrained LM's do."""
    seq2seq = RnnForSeq2SeqLM.from_pretrained(checkpoint)
    settings = {**seq2seq.config.encoder_config().to_dict(), **dict.fromkeys(BACKBONE_DROPOUT_ARGUMENTS, 0.0)}
    for name in ("model_type", "transformers_version", "auto_map", "architectures"):
        settings.pop(name, None)
    model = task.model_class(RnnConfig(**{**settings, **overrides}))
    if not from_scratch:
        model.rnn.load_state_dict(seq2seq.encoder.state_dict())
        if not quiet:
            print(f"loaded the encoder of {checkpoint} as the backbone; new head")
    return model


def finetune(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    recipe: UlmfitRecipe | None = None,
    data: FinetuningData | None = None,
    command: str | None = None,
) -> dict:
    """Fine-tune, test on the held-out documents, save the model, `metrics.json` and a model card; return the metrics.

    `training_args.learning_rate` / `num_train_epochs` = None take the recipe's defaults (the head's peak rate:
    5e-3 pretrained, 1e-3 from scratch; ~2,000 / 4,000 document passes). The recipe sets the evaluation, saving
    and best-model flags (early stopping on the carved-out validation set); every other `TrainingArguments` flag
    (`report_to`, `bf16`, `push_to_hub`, ...) is the user's. `data` skips loading (a study reuses one pool).
    """
    start_time = time.time()
    recipe = (recipe or UlmfitRecipe()).resolve(model_args)
    quiet = training_args.disable_tqdm and training_args.log_level == "error"
    checkpoint = check_rnn_checkpoint(model_args.model_name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    except (OSError, ValueError) as err:
        raise UserError(
            f"--model_name_or_path '{checkpoint}' has no usable tokenizer ({str(err).splitlines()[0]})"
        ) from None
    data = data or load_finetuning_data(data_args, checkpoint)
    task = TASKS[data_args.task](data_args)

    # ---- data: the labeled documents, their validation part, the test documents
    pool, test = task.prepare_labels(data.pool, data.test)
    labeled = task.draw_labeled(pool, seed=training_args.seed)
    fraction = data_args.validation_fraction
    train, validation = task.carve_validation(
        labeled,
        task.default_validation_fraction(labeled) if fraction is None else fraction,
        training_args.seed,
    )
    train = task.fit_training_labels(train)
    validation = task.transform_labels(validation) if validation is not None else None
    train_dataset, test_dataset = task.tokenize(train, tokenizer), task.tokenize(test, tokenizer)
    eval_dataset = task.tokenize(validation, tokenizer) if validation is not None else None
    num_epochs = training_args.num_train_epochs or default_num_epochs(
        len(train_dataset), model_args.from_scratch
    )
    learning_rate = training_args.learning_rate or default_learning_rate(model_args.from_scratch)

    # ---- model and the ULMFiT recipe
    set_seed(training_args.seed)
    model = load_model(model_args, task, checkpoint, quiet)
    if len(tokenizer) > model.config.vocab_size:
        raise UserError(
            f"the tokenizer of '{checkpoint}' has {len(tokenizer)} tokens, the model {model.config.vocab_size}"
        )
    groups = layer_groups(model)  # head, last recurrent layer, ..., embeddings
    if model_args.freeze_backbone:
        set_trainable_groups(groups, 1)
        groups = groups[:1]
    optimizer = torch.optim.AdamW(
        discriminative_param_groups(
            groups, learning_rate, recipe.discriminative_lr_decay, training_args.weight_decay
        ),
        betas=(training_args.adam_beta1, training_args.adam_beta2),  # scripts/finetune.py: fastai's 0.99
    )
    # Batch norm measures each training batch: a short last one gives noisy statistics. fastai drops it too.
    batch_size = training_args.per_device_train_batch_size * max(1, training_args.n_gpu)
    drop_last = model_args.classifier_norm == "batch" and model_args.classifier_hidden_size > 0
    drop_last = drop_last and data_args.task != "token_classification" and len(train_dataset) >= batch_size
    steps_per_epoch = (math.floor if drop_last else math.ceil)(len(train_dataset) / batch_size)
    steps_per_epoch = math.ceil(steps_per_epoch / training_args.gradient_accumulation_steps)
    scheduler = None  # Trainer's own (linear decay)
    if recipe.slanted_triangular:
        scheduler = slanted_triangular_schedule(optimizer, steps_per_epoch * math.ceil(num_epochs), recipe.cut_frac,
                                                recipe.ratio)  # fmt: skip
    callbacks = [GradualUnfreezing(groups)] if recipe.gradual_unfreezing else []
    validate = eval_dataset is not None
    if validate and recipe.early_stopping_patience > 0:
        first_full_epoch = len(groups) if recipe.gradual_unfreezing else 1
        callbacks.append(
            EarlyStoppingAfterUnfreezing(recipe.early_stopping_patience, start_epoch=first_full_epoch)
        )
    # The epoch checkpoints (only reloaded, for the best epoch) go to a folder of this run's own, removed at the
    # end: in `output_dir` itself, Trainer's `save_total_limit` rotation would delete the user's `checkpoint-*`.
    output_dir = Path(training_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    checkpoints_dir = Path(tempfile.mkdtemp(prefix="epoch-checkpoints-", dir=output_dir))
    training_args = dataclasses.replace(
        training_args,
        output_dir=str(checkpoints_dir),
        # the Hub repository is named after the user's folder, not the private one
        hub_model_id=training_args.hub_model_id or (output_dir.name if training_args.push_to_hub else None),
        num_train_epochs=num_epochs,
        learning_rate=learning_rate,  # informative: the optimizer holds the rates
        eval_strategy="epoch" if validate else "no",
        save_strategy="epoch" if validate else "no",
        save_total_limit=1,
        save_only_model=True,  # the best checkpoint is only reloaded, never resumed
        load_best_model_at_end=validate,
        metric_for_best_model=task.selection_metric if validate else None,
        greater_is_better=task.greater_is_better,
    )
    trainer = (FullBatchTrainer if drop_last else Trainer)(
        model=model, args=training_args, train_dataset=train_dataset, eval_dataset=eval_dataset,
        data_collator=task.collator(tokenizer), processing_class=tokenizer, compute_metrics=task.compute_metrics,
        callbacks=callbacks, optimizers=(optimizer, scheduler),
    )  # fmt: skip
    if quiet:
        trainer.remove_callback(PrinterCallback)

    # ---- train, then measure on the held-out test documents
    train_result = trainer.train()
    epochs_trained = round(trainer.state.epoch)
    best_validation = None
    if validate:
        best = [log for log in trainer.state.log_history
                if log.get(f"eval_{task.selection_metric}") == trainer.state.best_metric]  # fmt: skip
        best_validation = best[0] if best else None
    task.finish_model(trainer.model)
    test_metrics = trainer.evaluate(test_dataset, metric_key_prefix="test")
    wall_time = time.time() - start_time
    shutil.rmtree(checkpoints_dir)
    training_args.output_dir = str(output_dir)  # `trainer.args`: where the model goes (and the Hub push)
    trainer.save_model(str(output_dir))  # the best (or last) model and the tokenizer

    metrics = {name: test_metrics[f"test_{name}"] for name in task.headline_metrics}
    metrics.update({
        "test_loss": test_metrics["test_loss"],
        "best_validation": {k.removeprefix("eval_"): v for k, v in best_validation.items() if k.startswith("eval_")}
        if best_validation else None,
        "task": data_args.task, "num_labeled_per_class": data_args.num_labeled_per_class,
        "num_labeled": len(labeled), "num_train": len(train_dataset),
        "num_validation": len(eval_dataset) if validate else 0, "num_test": len(test_dataset),
        "epochs_trained": epochs_trained, "num_train_epochs": num_epochs, "learning_rate": learning_rate,
        "train_runtime_s": round(train_result.metrics["train_runtime"], 1), "wall_time_s": round(wall_time, 1),
        "from_scratch": model_args.from_scratch, "freeze_backbone": model_args.freeze_backbone,
        "classifier_bptt": model_args.classifier_bptt, "seed": training_args.seed,
    })  # fmt: skip
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_card(
        trainer.model, task, data, model_args, data_args, training_args, recipe, metrics, checkpoint, command
    )
    if training_args.push_to_hub:
        trainer.push_to_hub()
    if not quiet:
        summary = ", ".join(f"{name} {metrics[name]:.4f}" for name in task.headline_metrics)
        print(f"test {summary} on {metrics['num_test']} documents ({metrics['num_train']} train + "
              f"{metrics['num_validation']} validation labeled, epochs {epochs_trained}/{num_epochs}, "
              f"{wall_time:.0f} s) -> {output_dir}")  # fmt: skip
    return metrics


def write_card(model, task, data, model_args, data_args, training_args, recipe, metrics, checkpoint, command):
    head = f"{model_args.classifier_pooling} pooling -> " + (
        f"ULMFiT head (hidden {model_args.classifier_hidden_size}, {model_args.classifier_norm} norm)"
        if model_args.classifier_hidden_size else "linear"
    )  # fmt: skip
    labeled = data_args.num_labeled_per_class and f"{data_args.num_labeled_per_class} per class"
    write_model_card(
        training_args.output_dir,
        task.card_task,
        model,
        data_description=data.description,
        training={
            "task": data_args.task,
            "initialization": "random (from scratch)"
            if model_args.from_scratch
            else f"pretrained: `{checkpoint}`",
            "labeled documents": labeled or metrics["num_labeled"],
            "backbone": "frozen (head only)" if model_args.freeze_backbone else "fine-tuned",
            "head": head if task.model_class is RnnForSequenceClassification else "linear, per token",
            "train / validation / test documents": f"{metrics['num_train']} / {metrics['num_validation']} / "
            f"{metrics['num_test']}",
            "epochs": f"{metrics['epochs_trained']} of {metrics['num_train_epochs']}"
            + (" (early stopping)" if metrics["epochs_trained"] < metrics["num_train_epochs"] else ""),
            "batch size": training_args.per_device_train_batch_size,
            "peak learning rate (head)": metrics["learning_rate"],
            "discriminative lr decay": recipe.discriminative_lr_decay,
            "schedule": f"slanted triangular (cut_frac {recipe.cut_frac}, ratio {recipe.ratio:g})"
            if recipe.slanted_triangular
            else "linear decay",
            "gradual unfreezing": recipe.gradual_unfreezing,
            "max sequence length": data_args.max_seq_length,
            "reading": "one pass"
            if model_args.classifier_bptt is None
            else f"chunks of {model_args.classifier_bptt} tokens, state carried (BPT3C); gradients through "
            + (
                "all"
                if model_args.classifier_grad_length is None
                else f"the last {model_args.classifier_grad_length}"
            ),
            "seed": training_args.seed,
            "wall time": f"{metrics['wall_time_s']:.0f} s",
        },  # fmt: skip
        metrics={f"test {name}": metrics[name] for name in task.headline_metrics},
        command=command,
        summary=f"An rnn_hf model fine-tuned for {data_args.task.replace('_', ' ')} from "
        + ("scratch" if model_args.from_scratch else f"the language model `{checkpoint.name}`")
        + f" with {labeled or metrics['num_labeled']} labeled documents.",
        limitations=f"Trained on {metrics['num_labeled']} labeled documents of one corpus: expect lower scores on "
        f"other sources, topics or periods. Documents are truncated to their first {data_args.max_seq_length} tokens.",
    )
