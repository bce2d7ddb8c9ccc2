"""rnn_hf.training.finetuning (and scripts/finetune.py): the real Trainer on real BBC News and tweet slices, a tiny
LM fabricated as scripts/pretrain.py saves one (`conftest.make_tiny_checkpoint`)."""

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
    AutoTokenizer,
    EvalPrediction,
    TrainingArguments,
    set_seed,
)

from rnn_hf import RnnConfig, RnnForSequenceClassification, RnnForTokenClassification
from rnn_hf.data import (
    DEFAULT_SPLIT,
    DataError,
    DocumentSplit,
    load_bbc_news,
    load_text_dataset,
    load_trump_tweets,
    split_by_document,
)
from rnn_hf.training import DataArguments, ModelArguments, UlmfitRecipe, UserError, finetune
from rnn_hf.training.finetuning import (
    MIN_PER_CLASS_FOR_VALIDATION,
    PRETRAINED_LEARNING_RATE,
    SCRATCH_LEARNING_RATE,
    FinetuningData,
    FullBatchTrainer,
    SingleLabelClassification,
    check_classes,
    default_num_epochs,
    load_finetuning_data,
    recipe_training_arguments,
)

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
pytestmark = pytest.mark.usefixtures("one_thread")


def fast(output_dir, **overrides):
    return recipe_training_arguments(str(output_dir), quiet=True, **{"num_train_epochs": 1, **overrides})


def run_script(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / "finetune.py"), *argv], capture_output=True, text=True,
                          env=ENV, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def pretrained_run(tiny_checkpoint, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("pretrained_run")
    (output_dir / "checkpoint-7").mkdir()  # the user's, not this run's: it must survive
    metrics = finetune(
        ModelArguments(str(tiny_checkpoint)),
        DataArguments(num_labeled_per_class=2, validation_fraction=0.2, max_seq_length=64),
        fast(output_dir),
        command="finetune(...) --num_labeled_per_class 2",
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
        441,
    )  # 2 per class, 1 held out
    # (4 of the 445 test documents are copies of documents pretraining saw: left out)
    assert saved["learning_rate"] == PRETRAINED_LEARNING_RATE and saved["best_validation"]["accuracy"] >= 0
    # Only the checkpoints this run wrote are removed
    assert [path.name for path in output_dir.glob("checkpoint-*")] == ["checkpoint-7"]
    card = (output_dir / "README.md").read_text()
    assert f"{saved['accuracy']:.4f}" in card and f"{saved['macro_f1']:.4f}" in card
    assert "pipeline_tag: text-classification" in card and "--num_labeled_per_class 2" in card
    model = AutoModelForSequenceClassification.from_pretrained(output_dir)
    assert isinstance(model, RnnForSequenceClassification)
    assert model.config.num_labels == 5 and model.config.classifier_pooling == "concat"
    assert model.config.classifier_norm == "batch" and model.config.id2label[0] == "business"


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
    """Two epochs (gradual unfreezing would thaw the last recurrent layer in the second)."""
    metrics = finetune(ModelArguments(str(tiny_checkpoint), freeze_backbone=True),
                       DataArguments(num_labeled_per_class=2, max_seq_length=64), fast(tmp_path, num_train_epochs=2))  # fmt: skip
    before, after = (
        load_file(tiny_checkpoint / "model.safetensors"),
        load_file(tmp_path / "model.safetensors"),
    )
    backbone = [name for name in after if name.startswith("rnn.")]
    assert len(backbone) >= 5 and all(torch.equal(before[name], after[name]) for name in backbone)

    def initial_head() -> torch.Tensor:  # the head as finetune initializes it (seed 0), before training
        set_seed(0)
        model = RnnForSequenceClassification.from_pretrained(tiny_checkpoint, num_labels=5, classifier_pooling="concat",
                                                             classifier_hidden_size=50, classifier_norm="batch")  # fmt: skip
        return model.classifier.dense.weight.detach()

    assert torch.equal(initial_head(), initial_head())  # reproducible: a difference below is training
    assert not torch.allclose(initial_head(), after["classifier.dense.weight"])
    assert metrics["freeze_backbone"] is True and metrics["epochs_trained"] == 2
    assert "frozen (head only)" in (tmp_path / "README.md").read_text()
    with pytest.raises(UserError, match="nothing to unfreeze"):
        UlmfitRecipe(gradual_unfreezing=True).resolve(ModelArguments("x", freeze_backbone=True))


def test_whole_documents_in_chunks_bpt3c(tiny_checkpoint, tmp_path):
    """`classifier_bptt`: the classifier reads up to `max_seq_length` tokens in chunks, saved in its config."""
    metrics = finetune(ModelArguments(str(tiny_checkpoint), classifier_bptt=16, classifier_grad_length=32),
                       DataArguments(num_labeled_per_class=2, max_seq_length=96), fast(tmp_path))  # fmt: skip
    assert metrics["classifier_bptt"] == 16 and 0 <= metrics["accuracy"] <= 1
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert (model.config.classifier_bptt, model.config.classifier_grad_length) == (16, 32)
    assert "chunks of 16 tokens" in (tmp_path / "README.md").read_text()
    with pytest.raises(UserError, match="needs --classifier_bptt"):
        ModelArguments("x", classifier_grad_length=32)
    with pytest.raises(UserError, match="--classifier_bptt must be at least 1"):
        ModelArguments("x", classifier_bptt=0)


def test_from_scratch_keeps_the_config_but_not_the_weights(tiny_checkpoint, tmp_path):
    metrics = finetune(ModelArguments(str(tiny_checkpoint), from_scratch=True),
                       DataArguments(num_labeled_per_class=2, max_seq_length=64), fast(tmp_path))  # fmt: skip
    assert metrics["learning_rate"] == SCRATCH_LEARNING_RATE
    pretrained_config = json.loads((tiny_checkpoint / "config.json").read_text())
    scratch_config = json.loads((tmp_path / "config.json").read_text())
    for key in ("cell_type", "vocab_size", "embedding_size", "hidden_size", "num_layers", "bidirectional"):
        assert scratch_config[key] == pretrained_config[key], key
    pretrained = load_file(tiny_checkpoint / "model.safetensors")["rnn.embeddings.weight"]
    scratch = load_file(tmp_path / "model.safetensors")["rnn.embeddings.weight"]
    assert pretrained.shape == scratch.shape and not torch.allclose(pretrained, scratch, atol=1e-2)


def test_a_checkpoint_with_another_head_fine_tunes_with_a_new_one(tiny_checkpoint, tmp_path):
    """pretrain.py's bag_of_words saves a sequence classifier whose head predicts the vocabulary: the classifier
    keeps its backbone and gets a head of its own labels; backbone weights that do not fit are still refused."""
    import shutil

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    config = RnnConfig.from_pretrained(
        tiny_checkpoint, num_labels=len(tokenizer), classifier_hidden_size=None
    )
    encoder_dir = tmp_path / "bow"
    torch.manual_seed(5)
    RnnForSequenceClassification(config).save_pretrained(encoder_dir)
    tokenizer.save_pretrained(encoder_dir)
    shutil.copy(tiny_checkpoint / "split.json", encoder_dir / "split.json")
    encoder = load_file(encoder_dir / "model.safetensors")
    assert encoder["classifier.weight"].shape[0] == len(tokenizer)
    # ULMFiT's head (other weight names) and a linear one (the checkpoint's names, other shapes)
    for hidden_size, head in ((50, "classifier.out_proj.weight"), (0, "classifier.weight")):
        metrics = finetune(ModelArguments(str(encoder_dir), freeze_backbone=True, classifier_hidden_size=hidden_size),
                           DataArguments(num_labeled_per_class=2, max_seq_length=64),
                           fast(tmp_path / f"out{hidden_size}"))  # fmt: skip
        assert 0 <= metrics["accuracy"] <= 1
        classifier = load_file(tmp_path / f"out{hidden_size}" / "model.safetensors")
        assert classifier[head].shape[0] == 5  # BBC News's five topics
        for name in ("rnn.embeddings.weight", "rnn.recurrent.layers.1.weight_hh_l0"):
            assert torch.equal(encoder[name], classifier[name]), name  # frozen: still the encoder's
    # weights of a wider backbone under the config of this one: refused, not loaded with new random weights
    fitting_config = (encoder_dir / "config.json").read_text()
    wider = RnnConfig.from_pretrained(tiny_checkpoint, hidden_size=config.hidden_size + 8)
    RnnForSequenceClassification(wider).save_pretrained(encoder_dir)
    (encoder_dir / "config.json").write_text(fitting_config)
    with pytest.raises(UserError, match="does not fit this network"):
        finetune(ModelArguments(str(encoder_dir)), DataArguments(num_labeled_per_class=2, max_seq_length=64),
                 fast(tmp_path / "wider"))  # fmt: skip


def test_the_encoder_of_a_sequence_autoencoder_starts_the_classifier(tiny_checkpoint, tmp_path):
    """Dai & Le: a seq2seq checkpoint (here a sequence autoencoder) fine-tunes through its encoder."""
    import shutil

    from rnn_hf import RnnForSeq2SeqLM, RnnSeq2SeqConfig

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    config = RnnSeq2SeqConfig(vocab_size=len(tokenizer), embedding_size=16, hidden_size=16, decoder_hidden_size=24,
                              attention_type="none", input_feeding=False, share_embeddings=True)  # fmt: skip
    autoencoder_dir = tmp_path / "sa"
    torch.manual_seed(5)
    RnnForSeq2SeqLM(config).save_pretrained(autoencoder_dir)
    tokenizer.save_pretrained(autoencoder_dir)
    shutil.copy(tiny_checkpoint / "split.json", autoencoder_dir / "split.json")
    metrics = finetune(ModelArguments(str(autoencoder_dir), freeze_backbone=True),
                       DataArguments(num_labeled_per_class=2, max_seq_length=64), fast(tmp_path / "out"))  # fmt: skip
    assert 0 <= metrics["accuracy"] <= 1 and metrics["num_test"] == 441
    encoder, classifier = (
        load_file(autoencoder_dir / "model.safetensors"),
        load_file(tmp_path / "out" / "model.safetensors"),
    )
    for name in (
        "embeddings.weight",
        "recurrent.layers.0.weight_ih_l0",
        "recurrent.layers.1.weight_hh_l0_reverse",
    ):
        assert torch.equal(encoder[f"encoder.{name}"], classifier[f"rnn.{name}"]), (
            name
        )  # frozen: still the encoder's
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["model_type"] == "rnn" and saved["bidirectional"] and saved["hidden_size"] == 16


def tweets_csv(directory: Path) -> tuple[Path, Path]:
    """300 labeled tweets to draw from and 100 held-out ones (a real regression target: ln(1 + retweets))."""
    tweets = load_trump_tweets().shuffle(seed=0)
    paths = directory / "tweets_train.csv", directory / "tweets_test.csv"
    for path, rows in zip(paths, (tweets.select(range(300)), tweets.select(range(300, 400))), strict=True):
        rows.select_columns(["text", "label"]).rename_column("label", "retweets").to_csv(str(path))
    return paths


def test_regression_through_the_api_and_the_cli_reports_rmse_and_pearson(tiny_checkpoint, tmp_path):
    train_file, test_file = tweets_csv(tmp_path)
    data_args = DataArguments(task="regression", train_file=str(train_file), test_file=str(test_file),
                              label_column="retweets", num_labeled=200, max_seq_length=48)  # fmt: skip
    metrics = finetune(
        ModelArguments(str(tiny_checkpoint)), data_args, fast(tmp_path / "api", num_train_epochs=3)
    )
    assert metrics["num_test"] == 100 and metrics["num_labeled"] == 200 and metrics["num_validation"] == 40
    assert np.isfinite([metrics[name] for name in ("rmse", "mae", "pearson", "spearman")]).all()
    print(f"tweets regression (API): RMSE {metrics['rmse']:.3f}, Pearson {metrics['pearson']:.3f}")
    # The saved model predicts on the original scale (the standardization is folded into its last layer).
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "api").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "api")
    test = load_text_dataset(train_file=str(test_file), label_column="retweets")["train"]
    with torch.no_grad():
        predicted = torch.cat([model(**tokenizer([text], truncation=True, max_length=48, return_tensors="pt"))
                               .logits.reshape(-1) for text in test["text"]])  # fmt: skip
    rmse = float(torch.sqrt(torch.mean((predicted - torch.tensor(test["label"])) ** 2)))
    assert rmse == pytest.approx(metrics["rmse"], rel=1e-4)
    assert model.config.problem_type == "regression" and model.config.num_labels == 1

    result = run_script(["--model_name_or_path", str(tiny_checkpoint), "--task", "regression", "--train_file",
                         str(train_file), "--test_file", str(test_file), "--label_column", "retweets", "--num_labeled",
                         "200", "--max_seq_length", "48", "--num_train_epochs", "3", "--output_dir",
                         str(tmp_path / "cli")])  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert "test rmse" in result.stdout and cli["rmse"] == pytest.approx(metrics["rmse"], rel=1e-3)
    assert "pipeline_tag: text-classification" in (tmp_path / "cli" / "README.md").read_text()


def test_multi_label_classification_trains_a_sigmoid_head(tiny_checkpoint, tmp_path):
    """Each BBC article gets its topic plus 'long' when it has more than 400 words: two labels for some."""
    seen = DocumentSplit.load(tiny_checkpoint).seen
    bbc = load_bbc_news().shuffle(seed=0).select(range(400))
    bbc = bbc.select([row for row, was_seen in enumerate(seen(bbc["text"])) if not was_seen][:160])
    names = bbc.features["label"].names
    rows = [{"text": text, "topics": [names[label]] + (["long"] if len(text.split()) > 400 else [])}
            for text, label in zip(bbc["text"], bbc["label"], strict=True)]  # fmt: skip
    for name, part in (("train", rows[:120]), ("test", rows[120:])):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in part))
    data_args = DataArguments(task="multi_label_classification", train_file=str(tmp_path / "train.jsonl"),
                              test_file=str(tmp_path / "test.jsonl"), label_column="topics", max_seq_length=48)  # fmt: skip
    metrics = finetune(ModelArguments(str(tiny_checkpoint)), data_args, fast(tmp_path / "out"))
    assert 0 <= metrics["micro_f1"] <= 1 and 0 <= metrics["exact_match"] <= 1 and metrics["num_test"] == 40
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification" and len(config["id2label"]) == 6


def test_token_classification_tags_the_first_piece_of_each_word(tiny_checkpoint, tmp_path):
    """Real sentences, a tag per word (capitalized or not): the mechanics of word/sub-token alignment."""
    sentences = [text.split()[:30] for text in load_bbc_news().shuffle(seed=1).select(range(80))["text"]]
    rows = [
        {"words": words, "tags": ["CAP" if word[:1].isupper() else "O" for word in words]}
        for words in sentences
    ]
    for name, part in (("train", rows[:60]), ("test", rows[60:])):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in part))
    data_args = DataArguments(task="token_classification", train_file=str(tmp_path / "train.jsonl"),
                              test_file=str(tmp_path / "test.jsonl"), text_column="words", label_column="tags",
                              max_seq_length=64)  # fmt: skip
    metrics = finetune(
        ModelArguments(str(tiny_checkpoint)), data_args, fast(tmp_path / "out", num_train_epochs=2)
    )
    assert 0 <= metrics["accuracy"] <= 1 and metrics["num_test"] == 20
    model = RnnForTokenClassification.from_pretrained(tmp_path / "out")
    assert model.config.id2label == {0: "CAP", 1: "O"}


# ----------------------------------------------------------------------------------------------------------------
# Defaults and the recipe


def test_recipe_defaults_depend_on_pretraining():
    pretrained = UlmfitRecipe().resolve(ModelArguments("x"))
    scratch = UlmfitRecipe().resolve(ModelArguments("x", from_scratch=True))
    assert (pretrained.discriminative_lr_decay, pretrained.gradual_unfreezing) == (2.6, True)
    assert (scratch.discriminative_lr_decay, scratch.gradual_unfreezing) == (1.0, False)
    sizes = (8, 40, 100, 200, 400, 1250)
    assert [default_num_epochs(n) for n in sizes] == [20, 20, 20, 10, 5, 5]
    assert [default_num_epochs(n, from_scratch=True) for n in sizes] == [40, 40, 40, 20, 10, 10]


def test_the_config_defaults_are_the_recipes_classifier():
    """A Python user building `RnnForSequenceClassification` gets the head the CLI and the README report."""
    config, model_args = RnnConfig(), ModelArguments("x")
    assert config.classifier_pooling == model_args.classifier_pooling == "concat"
    assert config.classifier_hidden_size == model_args.classifier_hidden_size == 50
    assert config.classifier_norm == model_args.classifier_norm == "batch"


# ----------------------------------------------------------------------------------------------------------------
# Data: the document split, validation carved from the labeled documents only


def labeled_rows(counts: list[int]) -> Dataset:
    labels = [label for label, count in enumerate(counts) for _ in range(count)]
    features = Features(
        {"text": Value("string"), "label": ClassLabel(names=[f"c{i}" for i in range(len(counts))])}
    )
    return Dataset.from_dict(
        {"text": [f"doc {i}" for i in range(len(labels))], "label": labels}, features=features
    )


def single_label_task(num_classes: int) -> SingleLabelClassification:
    task = SingleLabelClassification(DataArguments())
    task.label_names = [f"c{i}" for i in range(num_classes)]
    return task


def test_carve_validation_is_stratified_disjoint_and_keeps_one_per_class():
    labeled, task = labeled_rows([10, 2, 5]), single_label_task(3)
    train, validation = task.carve_validation(labeled, 0.2, seed=0)
    assert np.bincount(validation["label"]).tolist() == [2, 1, 1]
    assert np.bincount(train["label"]).tolist() == [8, 1, 4]
    assert not set(train["text"]) & set(validation["text"])
    assert task.carve_validation(labeled, 0.2, seed=0)[1]["text"] == validation["text"]
    assert task.carve_validation(labeled, 0.0, seed=0) == (labeled, None)
    with pytest.raises(UserError, match="class 'c1' has 1 labeled document"):
        single_label_task(2).carve_validation(labeled_rows([3, 1]), 0.2, seed=0)


def test_classes_without_training_documents_are_refused():
    def rows(labels):
        return Dataset.from_dict({"text": [f"doc {i}" for i in range(len(labels))], "label": labels})

    check_classes(rows([1, 2, 1, 2]), rows([2, 1]))  # every test class taught: no error
    with pytest.raises(UserError, match=r"two classes at least; the training documents have \['1'\]"):
        check_classes(rows([1, 1, 1]), rows([1]))
    named = Features({"text": Value("string"), "label": ClassLabel(names=["sport", "tech", "arts"])})
    pool, test = (Dataset.from_dict({"text": ["a"] * len(labels), "label": labels}, features=named)
                  for labels in ([0, 1, 0, 1], [2, 0]))  # fmt: skip
    with pytest.raises(UserError, match=r"the test documents have class\(es\) \['arts'\] that no training"):
        check_classes(pool, test)


def test_validation_is_carved_by_default_only_from_enough_labels():
    limit, task = MIN_PER_CLASS_FOR_VALIDATION, single_label_task(2)
    assert task.default_validation_fraction(labeled_rows([limit, limit])) == 0.2
    assert task.default_validation_fraction(labeled_rows([limit, limit - 1])) == 0.0
    assert task.default_validation_fraction(labeled_rows([limit, 0])) == 0.0  # a class without labels


def test_selection_score_is_accuracy_with_ties_broken_by_loss():
    labels, task = np.array([0, 1, 1, 0]), single_label_task(2)
    confident = EvalPrediction(predictions=np.array([[3.0, 0], [0, 3], [0, 3], [0, 3]]), label_ids=labels)
    hesitant = EvalPrediction(
        predictions=np.array([[0.1, 0], [0, 0.1], [0, 0.1], [0, 0.1]]), label_ids=labels
    )
    better = EvalPrediction(predictions=np.array([[0.1, 0], [0, 0.1], [0, 0.1], [0.1, 0]]), label_ids=labels)
    scores = [task.compute_metrics(p) for p in (confident, hesitant, better)]
    assert [s["accuracy"] for s in scores] == [0.75, 0.75, 1.0]
    assert scores[0]["selection_score"] != scores[1]["selection_score"]  # same accuracy, the loss decides
    assert scores[2]["selection_score"] > max(scores[0]["selection_score"], scores[1]["selection_score"])


def test_load_data_keeps_pretrainings_test_documents_with_another_label_column(tmp_path):
    """Pretraining loads the corpus without the label column, so its split is not stratified by `topic`."""
    path = tmp_path / "topics.csv"
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "topic"])
        writer.writerows([f"document {i}", "money" if i % 3 else "sport"] for i in range(60))
    as_pretrained = split_by_document(load_text_dataset(train_file=str(path))["train"], **DEFAULT_SPLIT)
    stratified = split_by_document(load_text_dataset(train_file=str(path), label_column="topic")["train"],
                                   **DEFAULT_SPLIT)  # fmt: skip
    assert sorted(stratified["test"]["text"]) != sorted(as_pretrained["test"]["text"])  # the trap
    DocumentSplit.from_documents(as_pretrained["train"]["text"], source=str(path), **DEFAULT_SPLIT).save(
        tmp_path
    )
    data = load_finetuning_data(DataArguments(train_file=str(path), label_column="topic"), tmp_path)
    assert sorted(data.test["text"]) == sorted(as_pretrained["test"]["text"])
    assert sorted(data.pool["text"]) == sorted(as_pretrained["train"]["text"])


def test_refuses_to_test_on_documents_pretraining_trained_on(tiny_checkpoint, tmp_path):
    # pretraining on a file with a --validation_file held out no test documents: fine-tuning cannot split one off
    pretrained = tmp_path / "pretrained"
    pretrained.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (pretrained / name).write_bytes((tiny_checkpoint / name).read_bytes())
    bbc = load_bbc_news().select(range(0, 2225, 20))  # 112 documents of every topic
    bbc.to_csv(str(tmp_path / "bbc.csv"))
    DocumentSplit.from_documents(bbc["text"], source="bbc.csv").save(pretrained)
    with pytest.raises(DataError, match="did not split it"):
        load_finetuning_data(DataArguments(train_file=str(tmp_path / "bbc.csv")), pretrained)
    # a test file holding documents pretraining trained on
    bbc.select(range(10)).to_csv(str(tmp_path / "seen.csv"))
    with pytest.raises(DataError, match="10 of the 10 test documents were in the pretraining text"):
        load_finetuning_data(DataArguments(train_file=str(tmp_path / "bbc.csv"), test_file=str(tmp_path / "seen.csv")),
                             pretrained)  # fmt: skip
    unseen = load_bbc_news().select(range(1, 2225, 20)).select(range(10))
    unseen.to_csv(str(tmp_path / "unseen.csv"))
    data = load_finetuning_data(DataArguments(train_file=str(tmp_path / "bbc.csv"), test_file=str(tmp_path / "unseen.csv")),
                                pretrained)  # fmt: skip
    assert isinstance(data, FinetuningData) and len(data.test) == 10 and len(data.pool) == 112


def test_full_batch_trainer_drops_the_short_training_batch_only(tmp_path):
    """Batch norm would measure a batch of 2; the evaluation and test loaders must still see every document."""
    rows = Dataset.from_dict({"input_ids": [[5, 6, 7]] * 10, "labels": [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]})
    arguments = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, per_device_eval_batch_size=4, report_to=[]
    )
    trainer = FullBatchTrainer(
        model=RnnForSequenceClassification(
            RnnConfig(vocab_size=50, embedding_size=8, hidden_size=8, num_labels=3)
        ),
        args=arguments,
        train_dataset=rows,
        eval_dataset=rows,
    )
    assert [len(batch["labels"]) for batch in trainer.get_train_dataloader()] == [4, 4]
    assert sum(len(batch["labels"]) for batch in trainer.get_eval_dataloader()) == 10
    assert sum(len(batch["labels"]) for batch in trainer.get_test_dataloader(rows)) == 10
    assert trainer.args.dataloader_drop_last is False


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
        "validation_file": [*checkpoint, "--train_file", str(small_csv), "--validation_file", str(small_csv)],
        "test_file_alone": [*checkpoint, "--test_file", str(small_csv)],
        "regression_on_classes": [*checkpoint, "--train_file", str(small_csv), "--label_column", "topic", "--task",
                                  "regression"],
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
        ("validation_file", "unrecognized arguments: --validation_file"),  # the test set is --test_file now
        ("test_file_alone", "--test_file needs --train_file"),
        ("regression_on_classes", "--task regression needs a number per document in 'topic'"),
    ],
)
def test_bad_input_exits_with_one_error_line(bad_input_runs, case, message):
    returncode, stderr = bad_input_runs[case]
    assert returncode == 2, stderr
    assert "Traceback" not in stderr
    error_lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0], stderr


def test_quiet_transformers_restores_the_verbosity_also_when_loading_fails():
    """`load_model` and `pretrain` load checkpoints inside `quiet_transformers`: a failed load must not leave
    transformers silenced for the rest of the user's process."""
    import transformers

    from rnn_hf.training.cli import quiet_transformers

    before = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_info()
    try:
        with quiet_transformers():
            assert transformers.logging.get_verbosity() == transformers.logging.ERROR
        assert transformers.logging.get_verbosity() == transformers.logging.INFO
        with pytest.raises(OSError), quiet_transformers():
            transformers.AutoConfig.from_pretrained("/nonexistent/checkpoint")
        assert transformers.logging.get_verbosity() == transformers.logging.INFO
    finally:
        transformers.logging.set_verbosity(before)
