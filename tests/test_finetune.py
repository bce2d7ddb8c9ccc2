"""Tests for scripts/finetune.py and rnn_hf.training.ulmfit: the real Trainer on real BBC News slices, a tiny LM.

The checkpoint is fabricated the way scripts/pretrain.py writes one: a tokenizer trained on BBC train documents,
an `RnnForCausalLM`, `save_pretrained` of both and a `split.json`.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value
from safetensors.torch import load_file
from transformers import (
    AutoModelForSequenceClassification,
    TrainerControl,
    TrainerState,
    TrainingArguments,
    set_seed,
)

from rnn_hf import RnnConfig, RnnForCausalLM, RnnForSequenceClassification
from rnn_hf.data import load_bbc_news, load_text_dataset, split_by_document, train_tokenizer
from rnn_hf.training import UserError
from rnn_hf.training.ulmfit import (
    EarlyStoppingAfterUnfreezing,
    GradualUnfreezing,
    discriminative_param_groups,
    layer_groups,
    slanted_triangular_schedule,
)

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import finetune  # noqa: E402

FAST_RUN = ["--num_labeled_per_class", "2", "--num_train_epochs", "1", "--max_seq_length", "64", "--quiet"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from a second thread, and lose a lot when another process holds the other core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_tiny_checkpoint(directory: Path) -> Path:
    """A tiny causal LM with a 500-token BPE tokenizer and split.json, as scripts/pretrain.py saves one."""
    if (directory / "model.safetensors").is_file():  # built once per session, shared by the test modules
        return directory
    torch.manual_seed(1234)  # not the fine-tuning seed: a scratch model must not start from these weights
    train_documents = split_by_document(load_bbc_news())["train"]
    tokenizer = train_tokenizer(train_documents.select(range(300))["text"], vocab_size=500)
    config = RnnConfig(vocab_size=len(tokenizer), embedding_size=16, hidden_size=32, num_layers=2)
    RnnForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / "split.json").write_text(json.dumps({"test_size": 0.2, "validation_size": 0.1, "seed": 0}))
    return directory


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.getbasetemp() / "tiny_rnn_lm")


@pytest.fixture(scope="module")
def pretrained_run(tiny_checkpoint, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("pretrained_run")
    metrics = finetune.main(
        [
            "--model_name_or_path",
            str(tiny_checkpoint),
            "--output_dir",
            str(output_dir),
            *FAST_RUN,
            "--validation_fraction",
            "0.2",
        ]  # fmt: skip
    )
    return output_dir, metrics


# ----------------------------------------------------------------------------------------------------------------
# End to end


def test_finetune_writes_metrics_card_and_a_loadable_model(pretrained_run):
    output_dir, metrics = pretrained_run
    saved = json.loads((output_dir / "metrics.json").read_text())
    assert saved == metrics
    assert 0 <= saved["accuracy"] <= 1 and 0 <= saved["macro_f1"] <= 1
    assert (saved["num_train"], saved["num_validation"], saved["num_test"]) == (
        5,
        5,
        445,
    )  # 2 per class, 1 held out
    assert not list(output_dir.glob("checkpoint-*"))

    card = (output_dir / "README.md").read_text()
    assert f"{saved['accuracy']:.4f}" in card and f"{saved['macro_f1']:.4f}" in card
    assert "pipeline_tag: text-classification" in card and "--num_labeled_per_class 2" in card

    model = AutoModelForSequenceClassification.from_pretrained(output_dir)
    assert isinstance(model, RnnForSequenceClassification)
    assert model.config.num_labels == 5 and model.config.classifier_pooling == "concat"
    assert model.config.classifier_norm == "batch"  # ULMFiT's head
    assert model.config.id2label[0] == "business"


def test_gradual_unfreezing_in_trainer_trains_only_the_head_in_epoch_one(pretrained_run, tiny_checkpoint):
    output_dir, _ = pretrained_run
    before, after = (
        load_file(tiny_checkpoint / "model.safetensors"),
        load_file(output_dir / "model.safetensors"),
    )
    for name in (
        "rnn.embeddings.weight",
        "rnn.recurrent.layers.0.weight_hh_l0",
        "rnn.recurrent.layers.1.weight_ih_l0",
    ):
        assert torch.equal(before[name], after[name]), name  # pretrained, and frozen during epoch 1


def test_freeze_backbone_trains_the_head_only(tiny_checkpoint, tmp_path):
    """Two epochs (gradual unfreezing would thaw the last recurrent layer in the second): the backbone stays as
    pretrained, the head learns."""
    metrics = finetune.main(
        ["--model_name_or_path", str(tiny_checkpoint), "--output_dir", str(tmp_path), "--freeze_backbone"]
        + [*FAST_RUN, "--num_train_epochs", "2"]
    )
    before, after = (
        load_file(tiny_checkpoint / "model.safetensors"),
        load_file(tmp_path / "model.safetensors"),
    )
    backbone = [name for name in after if name.startswith("rnn.")]
    assert len(backbone) >= 5 and all(torch.equal(before[name], after[name]) for name in backbone)

    def initial_head() -> torch.Tensor:  # the head as finetune.py initializes it (seed 0), before training
        set_seed(0)
        model = RnnForSequenceClassification.from_pretrained(
            tiny_checkpoint, num_labels=5, classifier_pooling="concat", classifier_hidden_size=50,
            classifier_norm="batch",
        )  # fmt: skip
        return model.classifier.dense.weight.detach()

    assert torch.equal(initial_head(), initial_head())  # reproducible: a difference below is training
    assert not torch.allclose(initial_head(), after["classifier.dense.weight"])
    assert metrics["freeze_backbone"] is True and metrics["epochs_trained"] == 2
    assert "frozen (head only)" in (tmp_path / "README.md").read_text()
    with pytest.raises(SystemExit):  # nothing to unfreeze
        finetune.parse_args(
            ["--model_name_or_path", "x", "--output_dir", "y", "--freeze_backbone", "--gradual_unfreezing"]
        )


def test_from_scratch_keeps_the_config_but_not_the_weights(tiny_checkpoint, tmp_path):
    finetune.main(
        [
            "--model_name_or_path",
            str(tiny_checkpoint),
            "--output_dir",
            str(tmp_path),
            "--from_scratch",
            *FAST_RUN,
        ]
    )
    pretrained_config = json.loads((tiny_checkpoint / "config.json").read_text())
    scratch_config = json.loads((tmp_path / "config.json").read_text())
    for key in ("cell_type", "vocab_size", "embedding_size", "hidden_size", "num_layers", "bidirectional"):
        assert scratch_config[key] == pretrained_config[key], key
    pretrained = load_file(tiny_checkpoint / "model.safetensors")["rnn.embeddings.weight"]
    scratch = load_file(tmp_path / "model.safetensors")["rnn.embeddings.weight"]
    assert pretrained.shape == scratch.shape and not torch.allclose(pretrained, scratch, atol=1e-2)
    vocab = json.loads((tmp_path / "tokenizer.json").read_text())["model"]["vocab"]
    assert vocab == json.loads((tiny_checkpoint / "tokenizer.json").read_text())["model"]["vocab"]


def test_parse_args_recipe_defaults_depend_on_pretraining():
    pretrained = finetune.parse_args(["--model_name_or_path", "x", "--output_dir", "y"])
    scratch = finetune.parse_args(["--model_name_or_path", "x", "--output_dir", "y", "--from_scratch"])
    assert (pretrained.discriminative_lr_decay, pretrained.gradual_unfreezing) == (2.6, True)
    assert (scratch.discriminative_lr_decay, scratch.gradual_unfreezing) == (1.0, False)
    assert pretrained.slanted_triangular and pretrained.classifier_pooling == "concat"
    switched = finetune.parse_args(
        ["--model_name_or_path", "x", "--output_dir", "y", "--no-slanted_triangular"]
    )
    assert switched.slanted_triangular is False


def test_default_num_epochs_and_learning_rate_depend_on_pretraining():
    sizes = (8, 40, 100, 200, 400, 1250)
    assert [finetune.default_num_epochs(n) for n in sizes] == [20, 20, 20, 10, 5, 5]
    assert [finetune.default_num_epochs(n, from_scratch=True) for n in sizes] == [40, 40, 40, 20, 10, 10]
    base = ["--model_name_or_path", "x", "--output_dir", "y"]
    assert finetune.parse_args(base).learning_rate == finetune.PRETRAINED_LEARNING_RATE == 5e-3
    assert (
        finetune.parse_args([*base, "--from_scratch"]).learning_rate == finetune.SCRATCH_LEARNING_RATE == 1e-3
    )
    assert finetune.parse_args([*base, "--from_scratch", "--learning_rate", "2e-3"]).learning_rate == 2e-3


# ----------------------------------------------------------------------------------------------------------------
# Data: validation carved from the labeled documents only


def labeled_rows(counts: list[int]) -> Dataset:
    labels = [label for label, count in enumerate(counts) for _ in range(count)]
    features = Features(
        {"text": Value("string"), "label": ClassLabel(names=[f"c{i}" for i in range(len(counts))])}
    )
    return Dataset.from_dict(
        {"text": [f"doc {i}" for i in range(len(labels))], "label": labels}, features=features
    )


def test_carve_validation_is_stratified_disjoint_and_keeps_one_per_class():
    labeled = labeled_rows([10, 2, 5])
    train, validation = finetune.carve_validation(labeled, 0.2, seed=0, label_names=["c0", "c1", "c2"])
    assert np.bincount(validation["label"]).tolist() == [2, 1, 1]
    assert np.bincount(train["label"]).tolist() == [8, 1, 4]
    assert not set(train["text"]) & set(validation["text"])
    again = finetune.carve_validation(labeled, 0.2, seed=0, label_names=["c0", "c1", "c2"])[1]
    assert again["text"] == validation["text"]
    assert finetune.carve_validation(labeled, 0.0, seed=0, label_names=["c0", "c1", "c2"]) == (labeled, None)


def test_validation_is_carved_by_default_only_from_enough_labels():
    limit = finetune.MIN_PER_CLASS_FOR_VALIDATION
    assert finetune.default_validation_fraction([0] * limit + [1] * limit, 2) == 0.2
    assert finetune.default_validation_fraction([0] * limit + [1] * (limit - 1), 2) == 0.0
    assert finetune.default_validation_fraction([0] * limit, 2) == 0.0  # a class without labels


def test_carve_validation_needs_two_documents_per_class():
    with pytest.raises(UserError, match="class 'c1' has 1 labeled document"):
        finetune.carve_validation(labeled_rows([3, 1]), 0.2, seed=0, label_names=["c0", "c1"])


def test_selection_score_is_accuracy_with_ties_broken_by_loss():
    from transformers import EvalPrediction

    labels = np.array([0, 1, 1, 0])
    confident = EvalPrediction(predictions=np.array([[3.0, 0], [0, 3], [0, 3], [0, 3]]), label_ids=labels)
    hesitant = EvalPrediction(
        predictions=np.array([[0.1, 0], [0, 0.1], [0, 0.1], [0, 0.1]]), label_ids=labels
    )
    better = EvalPrediction(predictions=np.array([[0.1, 0], [0, 0.1], [0, 0.1], [0.1, 0]]), label_ids=labels)
    scores = [finetune.compute_metrics(p) for p in (confident, hesitant, better)]
    assert [s["accuracy"] for s in scores] == [0.75, 0.75, 1.0]
    assert scores[0]["selection_score"] != scores[1]["selection_score"]  # same accuracy, the loss decides
    assert scores[2]["selection_score"] > max(scores[0]["selection_score"], scores[1]["selection_score"])


# ----------------------------------------------------------------------------------------------------------------
# The ULMFiT pieces


def tiny_classifier(num_layers: int = 3) -> RnnForSequenceClassification:
    config = RnnConfig(vocab_size=50, embedding_size=8, hidden_size=8, num_layers=num_layers, num_labels=3)
    return RnnForSequenceClassification(config)


def test_full_batch_trainer_drops_the_short_training_batch_only(tmp_path):
    """Batch norm would measure a batch of 2; the evaluation and test loaders must still see every document."""
    rows = Dataset.from_dict({"input_ids": [[5, 6, 7]] * 10, "labels": [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]})
    arguments = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, per_device_eval_batch_size=4, report_to=[]
    )
    trainer = finetune.FullBatchTrainer(
        model=tiny_classifier(), args=arguments, train_dataset=rows, eval_dataset=rows
    )
    assert [len(batch["labels"]) for batch in trainer.get_train_dataloader()] == [4, 4]
    assert sum(len(batch["labels"]) for batch in trainer.get_eval_dataloader()) == 10
    assert sum(len(batch["labels"]) for batch in trainer.get_test_dataloader(rows)) == 10
    assert trainer.args.dataloader_drop_last is False


def test_layer_groups_cover_every_parameter_once_top_to_bottom():
    model = tiny_classifier()
    groups = layer_groups(model)
    assert [name for name, _ in groups] == ["head", "rnn_layer_2", "rnn_layer_1", "rnn_layer_0", "embeddings"]
    grouped = [id(param) for _, params in groups for param in params]
    assert sorted(grouped) == sorted(id(param) for param in model.parameters())
    assert groups[0][1] == list(model.classifier.parameters())
    assert groups[-1][1] == [model.rnn.embeddings.weight]


def test_discriminative_learning_rates_decay_by_2_6_per_group():
    groups = layer_groups(tiny_classifier())
    optimizer = torch.optim.AdamW(discriminative_param_groups(groups, lr=1e-2, decay=2.6, weight_decay=0.01))
    rates = [group["lr"] for group in optimizer.param_groups]
    assert rates == pytest.approx([1e-2, 1e-2 / 2.6, 1e-2 / 2.6**2, 1e-2 / 2.6**3, 1e-2 / 2.6**4])
    assert [group["name"] for group in optimizer.param_groups][0] == "head"
    flat = discriminative_param_groups(groups, lr=1e-2, decay=1.0, weight_decay=0.0)
    assert {group["lr"] for group in flat} == {1e-2}


def test_slanted_triangular_schedule_rises_over_the_first_tenth_then_decays():
    groups = layer_groups(tiny_classifier())
    optimizer = torch.optim.AdamW(discriminative_param_groups(groups, lr=1e-2, decay=2.6, weight_decay=0.0))
    scheduler = slanted_triangular_schedule(optimizer, num_training_steps=100)
    head_rates, embedding_rates = [], []
    for _ in range(101):
        head_rates.append(optimizer.param_groups[0]["lr"])
        embedding_rates.append(optimizer.param_groups[-1]["lr"])
        optimizer.step()
        scheduler.step()
    assert head_rates[0] == pytest.approx(1e-2 / 32) and head_rates[10] == pytest.approx(1e-2)
    assert head_rates[100] == pytest.approx(1e-2 / 32)
    assert all(a < b for a, b in zip(head_rates[:10], head_rates[1:11], strict=True))
    assert all(a > b for a, b in zip(head_rates[10:100], head_rates[11:101], strict=True))
    assert max(embedding_rates) == pytest.approx(1e-2 / 2.6**4)  # each group keeps its own peak


def test_gradual_unfreezing_thaws_one_group_per_epoch_from_the_top():
    model = tiny_classifier(num_layers=2)
    groups = layer_groups(model)
    callback = GradualUnfreezing(groups)

    def trainable_groups(epoch: float) -> list[str]:
        callback.on_epoch_begin(None, TrainerState(epoch=epoch), TrainerControl())
        return [name for name, params in groups if all(p.requires_grad for p in params)]

    assert trainable_groups(0.0) == ["head"]
    assert trainable_groups(0.9999999) == ["head", "rnn_layer_1"]  # float drift at the end of epoch 1
    assert trainable_groups(2.0) == ["head", "rnn_layer_1", "rnn_layer_0"]
    assert trainable_groups(3.0) == ["head", "rnn_layer_1", "rnn_layer_0", "embeddings"]
    assert trainable_groups(7.0) == ["head", "rnn_layer_1", "rnn_layer_0", "embeddings"]
    trainable_groups(0.0)
    callback.on_train_end(None, TrainerState(), TrainerControl())
    assert all(param.requires_grad for param in model.parameters())


def test_early_stopping_patience_starts_once_every_group_trains(tmp_path):
    args = TrainingArguments(
        output_dir=str(tmp_path),
        metric_for_best_model="selection_score",
        greater_is_better=True,
        report_to=[],
    )
    callback = EarlyStoppingAfterUnfreezing(early_stopping_patience=2, start_epoch=3)
    state, control = TrainerState(best_metric=0.9), TrainerControl()
    for epoch in (1.0, 2.0, 3.0):  # no improvement, but the network was still partly frozen until epoch 3
        state.epoch = epoch
        callback.on_evaluate(args, state, control, metrics={"eval_selection_score": 0.5})
    assert not control.should_training_stop
    state.epoch = 4.0
    callback.on_evaluate(args, state, control, metrics={"eval_selection_score": 0.5})
    assert control.should_training_stop


# ----------------------------------------------------------------------------------------------------------------
# Bad input: a real subprocess, one `error:` line, no traceback


@pytest.fixture(scope="module")
def bad_input_runs(tiny_checkpoint, tmp_path_factory) -> dict:
    """Start every bad-input run at once (each pays the import of torch and transformers), then collect them."""
    root = tmp_path_factory.mktemp("bad_input")
    (root / "empty").mkdir()
    (root / "gpt2").mkdir()
    (root / "gpt2" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    small_csv = root / "small.csv"
    with small_csv.open(
        "w", newline=""
    ) as file:  # 2 topics x 10 documents: 7 of each remain to draw labels from
        writer = csv.writer(file)
        writer.writerow(["text", "topic"])
        writer.writerows(
            [f"document {i} about {topic}", topic] for i in range(10) for topic in ("money", "sport")
        )

    checkpoint = ["--model_name_or_path", str(tiny_checkpoint)]
    cases = {
        "empty_dir": ["--model_name_or_path", str(root / "empty")],
        "gpt2_config": ["--model_name_or_path", str(root / "gpt2")],
        "too_many_labels": [*checkpoint, "--train_file", str(small_csv), "--label_column", "topic",
                            "--num_labeled_per_class", "50"],
        "no_label_column": [*checkpoint, "--train_file", str(small_csv), "--label_column", "category"],
        "missing_train_file": [*checkpoint, "--train_file", str(root / "missing.csv")],
    }  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    processes = {
        name: subprocess.Popen(
            [sys.executable, str(SCRIPTS / "finetune.py"), *argv, "--output_dir", str(root / name)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for name, argv in cases.items()
    }  # fmt: skip
    return {name: (process.wait(timeout=300), process.stderr.read()) for name, process in processes.items()}


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty_dir", "is not an rnn_hf model: it has no config.json"),
        ("gpt2_config", "model_type='gpt2', not 'rnn'"),
        ("too_many_labels", "--num_labeled_per_class 50 is too many"),
        ("no_label_column", "label column 'category' not found"),
        ("missing_train_file", "missing.csv' does not exist"),
    ],
)
def test_bad_input_exits_with_one_error_line(bad_input_runs, case, message):
    returncode, stderr = bad_input_runs[case]
    assert returncode == 2, stderr
    assert "Traceback" not in stderr
    error_lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0], stderr


def test_load_data_keeps_pretrainings_test_documents_with_another_label_column(tmp_path):
    """Pretraining loads the corpus without --label_column, so its split is not stratified by `topic`."""
    path = tmp_path / "topics.csv"
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "topic"])
        writer.writerows([f"document {i}", "money" if i % 3 else "sport"] for i in range(60))
    split_settings = {"test_size": 0.2, "validation_size": 0.1, "seed": 0}
    as_pretrained = split_by_document(load_text_dataset(train_file=str(path))["train"], **split_settings)
    stratified = split_by_document(
        load_text_dataset(train_file=str(path), label_column="topic")["train"], **split_settings
    )
    assert sorted(stratified["test"]["text"]) != sorted(as_pretrained["test"]["text"])  # the trap

    args = finetune.parse_args(["--model_name_or_path", "-", "--output_dir", "-", "--train_file", str(path),
                                "--label_column", "topic"])  # fmt: skip
    pool, test, label_names, _ = finetune.load_data(args, split_settings)
    assert sorted(test["text"]) == sorted(as_pretrained["test"]["text"])
    assert sorted(pool["text"]) == sorted(as_pretrained["train"]["text"])
    assert label_names == ["money", "sport"] and set(test["label"]) == {0, 1}
