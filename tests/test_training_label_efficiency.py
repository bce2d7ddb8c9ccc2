"""rnn_hf.training.label_efficiency: the study on a non-BBC regression set through the library, and
scripts/label_efficiency.py --quick on BBC News in a subprocess (resumable, tuned learning rates)."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.linear_model import LogisticRegression
from transformers import AutoTokenizer

import rnn_hf.training.label_efficiency as label_efficiency_module
from rnn_hf import RnnForSequenceClassification
from rnn_hf.data import DataError, DocumentSplit, load_trump_tweets
from rnn_hf.layers import pool_sequence
from rnn_hf.training import DataArguments, load_finetuning_data
from rnn_hf.training.cli import UserError, labels_per_class, non_negative_int
from rnn_hf.training.finetuning import FinetuningData
from rnn_hf.training.label_efficiency import (
    CV_STRENGTHS,
    NOT_PRETRAINED,
    Method,
    baseline_method,
    beside_tfidf,
    feature_method,
    feature_methods,
    finetune_method,
    fit_linear_model,
    fusion_weight,
    label_efficiency,
    label_savings,
    linear_model_scores,
    majority_class_scores,
    markdown_table,
    paired_with_scratch,
    pooled_features,
    rounds_table,
    self_trained_linear_model,
    self_trained_linear_models,
    study_summary_lines,
    text_study_method_lines,
    unseen_by_every_checkpoint,
)

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "label_efficiency.py"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
pytestmark = pytest.mark.usefixtures("one_thread")


def test_study_of_a_regression_set_resumes_and_reports_rmse(tiny_checkpoint, tmp_path):
    tweets = load_trump_tweets().shuffle(seed=0)
    tweets.select(range(300)).to_csv(str(tmp_path / "train.csv"))
    tweets.select(range(300, 380)).to_csv(str(tmp_path / "test.csv"))
    data = load_finetuning_data(DataArguments(task="regression", train_file=str(tmp_path / "train.csv"),
                                              test_file=str(tmp_path / "test.csv")), tiny_checkpoint)  # fmt: skip
    methods = [baseline_method(data, "regression"),
               finetune_method("clm", "pretrained causal LM", tiny_checkpoint, data, tmp_path / "work", "regression",
                               num_train_epochs=1, max_seq_length=32)]  # fmt: skip
    report = label_efficiency(methods, ["40", "20"], [0], tmp_path / "work", tmp_path / "out",
                              metrics=("rmse", "pearson"), x_label="labeled training documents")  # fmt: skip
    records = [json.loads(line) for line in (tmp_path / "work" / "results.jsonl").read_text().splitlines()]
    assert sorted((r["method"], r["num_labels"]) for r in records) == [("clm", "20"), ("clm", "40"),
                                                                       ("tfidf", "20"), ("tfidf", "40")]  # fmt: skip
    assert all(r["rmse"] > 0 and -1 <= r["pearson"] <= 1 for r in records)
    text = report.read_text()
    assert "| labels | TF-IDF + ridge regression | pretrained causal LM |" in text and "## rmse" in text
    assert text.index("| 20 |") < text.index("| 40 |")  # rows in increasing N, whatever the run order
    assert (tmp_path / "out" / "label_efficiency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "out" / "label_efficiency.json").read_text())  # the tables, for scripts
    clm_rmse = [r["rmse"] for r in records if r["method"] == "clm" and r["num_labels"] == "20"]
    assert summary["scores"]["rmse"]["clm"]["20"] == {"mean": clm_rmse[0], "std": 0.0, "count": 1}
    assert summary["num_labels"] == ["20", "40"] and summary["methods"]["clm"] == "pretrained causal LM"
    quoted = study_summary_lines(tmp_path / "out" / "label_efficiency.json", 20, "rmse")
    assert quoted[2].split() == [*"pretrained causal LM".split(), f"{clm_rmse[0]:.1f}", "±", "0.0"]
    assert quoted[1].startswith("  TF-IDF + ridge regression") and len(quoted) == 4
    assert "N = 20, 40" in study_summary_lines(tmp_path / "out" / "label_efficiency.json", 5, "rmse")[0]
    # A rerun runs nothing: every run is recorded under the same settings
    never = [
        Method(m.name, m.legend, lambda n, s: pytest.fail("reran a recorded run"), m.settings)
        for m in methods
    ]
    label_efficiency(never, ["20", "40"], [0], tmp_path / "work", tmp_path / "out", metrics=("rmse",))


def test_fixed_features_are_the_classifiers_pooled_states_and_feed_a_linear_model(tiny_checkpoint, tmp_path):
    model = RnnForSequenceClassification.from_pretrained(tiny_checkpoint, num_labels=3).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    texts = [
        "a much longer document about the markets and the bank rates",
        "short one",
        "a middle-sized text",
    ]
    features = pooled_features(model, tokenizer, texts, max_seq_length=16, batch_size=2)
    assert features.shape == (3, 3 * model.config.output_size)
    for text, row in zip(texts, features, strict=True):  # the input order, whatever the batching order
        alone = tokenizer([text], truncation=True, max_length=16, return_tensors="pt")
        with torch.no_grad():
            states = model.rnn(**alone).last_hidden_state
        want = pool_sequence(states, alone["attention_mask"], "concat", model.config.bidirectional)[0]
        assert torch.allclose(torch.from_numpy(row), want, atol=1e-5)
    data = load_finetuning_data(DataArguments(), tiny_checkpoint)
    data = FinetuningData(data.pool.select(range(300)), data.test.select(range(60)), data.description)
    method = feature_method("clm_features", "features", tiny_checkpoint, data, max_seq_length=24)
    scores = [method.run("2", seed) for seed in (0, 1)]
    assert all(0 <= s["accuracy"] <= 1 and 0 <= s["macro_f1"] <= 1 and s["num_train"] == 10 for s in scores)
    chunked = feature_method(
        "clm_features", "features", tiny_checkpoint, data, max_seq_length=24, classifier_bptt=8
    )
    assert chunked.run("2", 0) == pytest.approx(scores[0])  # BPT3C reads the same states in chunks
    assert method.settings["max_seq_length"] == 24 and chunked.settings["classifier_bptt"] == 8
    random = feature_method(
        "scratch_features", "random", tiny_checkpoint, data, max_seq_length=24, from_scratch=True
    )
    assert random.run("2", 0)["num_train"] == 10 and random.settings["from_scratch"] is True
    assert "from_scratch" not in method.settings  # runs recorded before the control existed keep their key


def test_standardized_linear_model_reads_a_feature_of_any_scale():
    # The class lives in a feature a thousand times smaller than a noise feature: the regularized logistic
    # regression cannot afford its weight unless the features are standardized first, as pooled states need
    rng = np.random.default_rng(0)

    def draw(n):
        labels = rng.integers(0, 2, n)
        return np.stack([1e-3 * (2 * labels - 1 + 0.3 * rng.normal(size=n)), rng.normal(size=n)], 1), labels

    (train, labels), (test, test_labels) = draw(20), draw(500)
    raw, standardized = (
        linear_model_scores(train, labels, test, test_labels, "single_label_classification", standardize=flag)
        for flag in (False, True)
    )
    assert raw["accuracy"] < 0.7 and standardized["accuracy"] > 0.95 and standardized["num_train"] == 20


def test_cross_validated_strength_follows_what_the_labels_support():
    rng = np.random.default_rng(0)
    noise, labels = rng.normal(size=(20, 5)), np.repeat([0, 1], 10)
    task = "single_label_classification"
    assert fit_linear_model(noise, labels, task).C == 1.0  # scikit-learn's default
    # labels the features cannot predict: the strongest regularization, probabilities near the class rates
    assert fit_linear_model(noise, labels, task, "cv").C == CV_STRENGTHS[0]
    separable = noise.copy()
    separable[:, 0] += 4 * (2 * labels - 1)  # one feature separates the classes: little regularization
    assert fit_linear_model(separable, labels, task, "cv").C > 1
    targets = 2 * separable[:, 0] + 0.01 * rng.normal(size=20)
    assert (
        fit_linear_model(separable, targets, "regression", "cv").alpha
        < fit_linear_model(separable, targets, "regression").alpha
    )
    assert fit_linear_model(noise[[0, 10]], [0, 1], task, "cv").C == 1.0  # one row per class: nothing to fold
    with pytest.raises(UserError, match="regularization"):
        fit_linear_model(noise, labels, task, "loo")
    # self-training keeps the strength cross-validated on the labeled rows in every round
    assert self_trained_linear_model(noise, labels, noise, regularization="cv").C == CV_STRENGTHS[0]


def test_study_methods_record_a_cross_validated_strength(tiny_checkpoint, tmp_path):
    data = load_finetuning_data(DataArguments(), tiny_checkpoint)
    data = FinetuningData(data.pool.select(range(200)), data.test.select(range(40)), data.description)
    plain, cv = (baseline_method(data, regularization=r) for r in ("default", "cv"))
    assert (
        "linear_model" not in plain.settings and cv.settings["linear_model"] == "cv"
    )  # old records keep keys
    assert cv.legend == "TF-IDF + logistic regression (strength cross-validated)"
    assert 0 <= cv.run("5", 0)["accuracy"] <= 1
    features = feature_method("clm_features", "features", tiny_checkpoint, data, max_seq_length=16,
                              cache_dir=tmp_path, regularization="cv")  # fmt: skip
    default = feature_method("clm_features", "features", tiny_checkpoint, data, max_seq_length=16,
                             cache_dir=tmp_path)  # fmt: skip
    assert features.settings["linear_model"] == "cv" and features.run("5", 0)["num_train"] == 25
    default.run("5", 0)
    assert len(list(tmp_path.glob("features-*.npz"))) == 1  # both strengths read the same features
    lines = text_study_method_lines(
        cv.legend, tiny_checkpoint, fine_tuned=False, features=True, regularization="cv"
    )
    assert "5-fold cross-validation on the N labeled documents" in lines[-1]


def test_features_beside_tfidf_follow_whichever_model_holds_the_class():
    rng = np.random.default_rng(0)
    words = np.array(["alpha", "beta", "gamma", "delta", "omega"])

    def draw(n, signal):
        labels = rng.integers(0, 2, n)
        texts = [" ".join(rng.choice(words[:4], 6)) + (f" {words[4]}" * label if signal == "words" else "")
                 for label in labels]  # fmt: skip
        states = rng.normal(size=(n, 64))
        states += 0.5 * (2 * labels - 1)[:, None] if signal == "states" else 0  # spread over every unit
        return states, texts, labels

    task = "single_label_classification"
    for signal in ("words", "states"):
        (train, train_texts, labels), (test, test_texts, test_labels) = draw(40, signal), draw(400, signal)
        both, weight = beside_tfidf(train, test, train_texts, test_texts, labels, task, "cv")
        assert both.shape == (400,) and (both == test_labels).mean() > 0.9 and weight == 0.5, signal
        # weights cross-validated on the 40 labels: never away from the view that holds the class
        fused, weight = beside_tfidf(train, test, train_texts, test_texts, labels, task, "cv", fusion="cv")
        assert (fused == test_labels).mean() >= (both == test_labels).mean() - 0.01, signal
        assert weight >= 0.5 if signal == "states" else weight <= 0.5, (signal, weight)
    # regression: the two models' predictions averaged, each fitted on what it reads
    targets = train.mean(1) + 0.1 * rng.normal(size=40)
    predicted, _ = beside_tfidf(train, test, train_texts, test_texts, targets, "regression", "cv")
    assert np.corrcoef(predicted, test.mean(1))[0, 1] > 0.9
    _, weight = beside_tfidf(train, test, train_texts, test_texts, targets, "regression", "cv", fusion="cv")
    assert weight > 0.5  # the words hold nothing of these targets


def test_fusion_weight_is_the_out_of_fold_best_and_needs_two_rows_per_class():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 20)
    # a view that knows the class, with flat probabilities (strong penalty), and one that knows nothing, with sharp
    # ones (no penalty, 30 features for 32 rows): equal weights follow the sharp one; log loss would pick it too
    informative = (2 * labels - 1)[:, None] + rng.normal(size=(40, 3))
    noise = 10 * rng.normal(size=(40, 30))
    models = [
        LogisticRegression(C=0.01).fit(informative, labels),
        LogisticRegression(C=1e4).fit(noise, labels),
    ]
    task = "single_label_classification"
    weight = fusion_weight([informative, noise], labels, models, task)
    assert weight > 0.5
    assert fusion_weight([noise, informative], labels, models[::-1], task) == pytest.approx(1 - weight)
    # equally good weights: the nearest to equal ones
    assert fusion_weight([informative, informative], labels, models[:1] * 2, task) == 0.5
    one_each = np.array([0, 1])
    assert fusion_weight([informative[[0, 20]], noise[[0, 20]]], one_each, models, task) == 0.5
    with pytest.raises(ValueError, match="two views"):
        fusion_weight([informative], labels, models[:1], task)


def test_feature_methods_name_each_variant(tiny_checkpoint):
    data = load_finetuning_data(DataArguments(), tiny_checkpoint)
    methods = feature_methods({"scratch": tiny_checkpoint, "clm": tiny_checkpoint}, {"scratch": "S", "clm": "C"},
                              data, self_training="balanced", with_tfidf=True)  # fmt: skip
    assert [m.name for m in methods] == ["scratch_features", "clm_features", "scratch_features_self_training",
                                         "clm_features_self_training", "scratch_features_tfidf", "clm_features_tfidf",
                                         "scratch_features_tfidf_self_training", "clm_features_tfidf_self_training"]  # fmt: skip
    assert methods[5].legend == "C, fixed features beside TF-IDF + logistic regression"
    assert (
        methods[-1].legend == "C, fixed features beside TF-IDF + logistic regression, self-trained (balanced)"
    )
    assert methods[-1].settings["with_tfidf"] and "with_tfidf" not in methods[1].settings
    assert methods[3].settings["self_training"] == "balanced" and methods[0].settings.get("from_scratch")
    assert methods[-1].settings["self_training"] == "balanced" and "self_training" not in methods[5].settings
    assert all(m.name in NOT_PRETRAINED for m in methods[::2])  # the random-weight controls
    weighed = feature_methods({"clm": tiny_checkpoint}, {"clm": "C"}, data, with_tfidf=True, fusion="cv")
    assert (
        weighed[1].legend == "C, fixed features beside TF-IDF (weights cross-validated) + logistic regression"
    )
    assert weighed[1].settings["fusion"] == "cv" and "fusion" not in weighed[0].settings
    with pytest.raises(UserError, match="classification"):
        feature_method("f", "f", tiny_checkpoint, data, task="regression", self_training="predicted")


def test_self_training_moves_a_boundary_that_two_labels_misplace():
    rng = np.random.default_rng(0)

    def draw(n):  # two well-separated clusters on the first feature, noise on the second
        labels = np.repeat([0, 1], n)
        centers = np.where(labels == 0, -2.0, 2.0)
        return np.stack([centers + 0.5 * rng.normal(size=2 * n), rng.normal(size=2 * n)], 1), labels

    pool, _ = draw(500)
    test, test_labels = draw(500)
    labeled, labels = np.array([[-3.0, 0.0], [-0.5, 0.0]]), np.array([0, 1])  # the midpoint cuts cluster 0
    plain = (LogisticRegression().fit(labeled, labels).predict(test) == test_labels).mean()
    self_trained = (self_trained_linear_model(labeled, labels, pool).predict(test) == test_labels).mean()
    assert plain < 0.9 and self_trained > 0.97
    # An imbalanced pool, overlapping classes, 1 in 5 of class 1: labels drawn per class start the model at even
    # odds; pseudo-labels split as predicted inflate the minority less than an equal split, and err less
    features = np.stack(
        [np.concatenate([rng.normal(-1, 1, 800), rng.normal(1, 1, 200)]), rng.normal(size=1000)], 1
    )
    truth = np.repeat([0, 1], [800, 200])
    centers = np.array([[-1.0, 0.0], [1.0, 0.0]])
    predicted, balanced = (
        self_trained_linear_model(centers, [0, 1], features, quota=quota).predict(features)
        for quota in ("predicted", "balanced")
    )
    assert predicted.mean() < balanced.mean() and (predicted == truth).mean() > (balanced == truth).mean()
    with pytest.raises(ValueError, match="final_fraction"):
        self_trained_linear_model(labeled, labels, pool, final_fraction=1.5)
    with pytest.raises(ValueError, match="quota"):
        self_trained_linear_model(labeled, labels, pool, quota="equal")
    assert self_trained_linear_model(labeled, labels, pool[:0]).predict(labeled).tolist() == [0, 1]  # no pool
    # the labels' stop trusts the labels: from round 2 the boundary passes the label in cluster 0's tail, so it
    # keeps round 1, whose boundary has already moved most of the way
    stopped = self_trained_linear_models([labeled], labels, [pool], stop="labels")
    assert stopped.rounds == 1 and (stopped.models[0].predict(test) == test_labels).mean() > 0.97
    with pytest.raises(ValueError, match="stop"):
        self_trained_linear_model(labeled, labels, pool, stop="never")


def test_self_training_stops_before_pseudo_labels_outvote_the_labels():
    # features that say nothing of the labels, as IMDB's words say little with 10 labels per class: cross-validation
    # picks the strongest regularization, a model near even odds; the first round's pseudo-labels lean to one
    # class, so its refit predicts that class everywhere, the labeled rows of the other one included
    rng = np.random.default_rng(0)
    labeled, labels, pool = rng.normal(size=(20, 5)), np.repeat([0, 1], 10), rng.normal(size=(2000, 5))

    def fitted(model):
        return (model.predict(labeled) == labels).mean()

    first = fit_linear_model(labeled, labels, "single_label_classification", "cv")
    assert first.C == CV_STRENGTHS[0]
    every_round = self_trained_linear_models([labeled], labels, [pool], regularization="cv")
    assert every_round.rounds == 5 and len(set(every_round.models[0].predict(pool))) == 1  # one class
    assert fitted(every_round.models[0]) == 0.5 < fitted(first)
    stopped = self_trained_linear_models([labeled], labels, [pool], regularization="cv", stop="labels")
    assert stopped.rounds < 5 and fitted(stopped.models[0]) >= fitted(first)
    assert len(set(stopped.models[0].predict(pool))) == 2


def test_views_self_trained_together_learn_from_each_others_pseudo_labels(monkeypatch):
    rng = np.random.default_rng(0)

    def draw(n):  # view "clear": one feature separates the classes; view "faint": 100 features a little each
        labels = np.repeat([0, 1], n)
        signs = 2 * labels - 1
        clear = np.stack([3 * signs + 0.5 * rng.normal(size=2 * n), rng.normal(size=2 * n)], 1)
        return clear, 0.12 * signs[:, None] + rng.normal(size=(2 * n, 100)), labels

    (clear, faint, _), (test_clear, test_faint, test_labels) = draw(400), draw(400)
    labeled = np.array([0, 1, 2, 400, 401, 402])  # three labels per class
    pool = np.setdiff1d(np.arange(800), labeled)
    labels = np.repeat([0, 1], 3)

    def accuracy(model, view):
        return (model.predict(view) == test_labels).mean()

    alone = self_trained_linear_model(faint[labeled], labels, faint[pool])
    together = self_trained_linear_models(
        [clear[labeled], faint[labeled]], labels, [clear[pool], faint[pool]]
    )
    (clear_model, faint_model), weights = together.models, together.weights
    assert weights == [0.5, 0.5] and together.rounds == 5
    # the faint view alone confirms its own mistakes (77.5% here); beside the clear one it learns from the clear
    # one's labels (83.4%, near the 84.5% of a model given all 800 true labels)
    assert accuracy(alone, test_faint) + 0.04 < accuracy(faint_model, test_faint)
    assert accuracy(clear_model, test_clear) > 0.99
    # sparse views (TF-IDF) self-train as dense ones do
    sparse = self_trained_linear_model(scipy.sparse.csr_matrix(faint[labeled]), labels,
                                       scipy.sparse.csr_matrix(faint[pool]))  # fmt: skip
    np.testing.assert_allclose(sparse.coef_, alone.coef_, rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match="one pool view per training view"):
        self_trained_linear_models([clear[labeled]], labels, [clear[pool], faint[pool]])
    # weights cross-validated on the labels (three per class: three folds; ties: equal), kept for every round
    weights = self_trained_linear_models([clear[labeled], faint[labeled]], labels, [clear[pool], faint[pool]],
                                         fusion="cv").weights  # fmt: skip
    assert weights[0] >= 0.5 and sum(weights) == pytest.approx(1)
    # every round's pseudo-labels follow the weights: all of it on the faint view is the faint view alone
    monkeypatch.setattr(label_efficiency_module, "fusion_weight", lambda *args: 0.0)
    faint_only = self_trained_linear_models([clear[labeled], faint[labeled]], labels, [clear[pool], faint[pool]],
                                            fusion="cv")  # fmt: skip
    assert faint_only.weights == [0.0, 1.0]
    np.testing.assert_allclose(faint_only.models[1].coef_, alone.coef_)


def test_tfidf_self_trains_as_the_control_of_the_networks_self_training(tiny_checkpoint, monkeypatch):
    data = load_finetuning_data(DataArguments(), tiny_checkpoint)
    data = FinetuningData(data.pool.select(range(200)), data.test.select(range(40)), data.description)
    pool_fits = []  # the pool's TF-IDF: fitted once for the study, whichever methods self-train on it
    fit = label_efficiency_module.tfidf_features
    monkeypatch.setattr(label_efficiency_module, "tfidf_features", lambda train, test: pool_fits.append(
        len(train)) or fit(train, test))  # fmt: skip
    method = baseline_method(data, regularization="cv", self_training="predicted")
    assert method.name == "tfidf_self_training" and method.settings["self_training"] == "predicted"
    assert (
        method.legend == "TF-IDF + logistic regression, self-trained (predicted) (strength cross-validated)"
    )
    scores = method.run("2", 0)
    assert 0 <= scores["accuracy"] <= 1 and scores["num_train"] == 10
    assert "self_training" not in baseline_method(data).settings  # the plain baseline keeps its records' key
    with pytest.raises(UserError, match="classification"):
        baseline_method(data, "regression", self_training="predicted")
    beside = feature_method("clm_features_tfidf_self_training", "f", tiny_checkpoint, data, max_seq_length=16,
                            self_training="predicted", with_tfidf=True)  # fmt: skip
    assert beside.run("2", 0)["num_train"] == 10 and "fusion" not in beside.settings
    weighed = feature_method("clm_features_tfidf_self_training", "f", tiny_checkpoint, data, max_seq_length=16,
                             self_training="predicted", with_tfidf=True, fusion="cv")  # fmt: skip
    scores = weighed.run("2", 0)
    assert weighed.settings["fusion"] == "cv" and 0 <= scores["states_weight"] <= 1
    with pytest.raises(UserError, match="fusion must be one of"):
        feature_method("f", "f", tiny_checkpoint, data, with_tfidf=True, fusion="learned")
    assert pool_fits == [len(data.pool)]
    # a stop other than the default is part of the settings (the runs recorded before it keep their key)
    stopped = baseline_method(
        data, regularization="cv", self_training="predicted", self_training_stop="labels"
    )
    assert stopped.settings["self_training_stop"] == "labels" and "self_training_stop" not in method.settings
    assert stopped.legend == ("TF-IDF + logistic regression, self-trained (predicted, stopped by the labels) "
                              "(strength cross-validated)")  # fmt: skip
    assert 0 <= stopped.run("2", 0)["self_training_rounds"] <= 5
    with pytest.raises(UserError, match="self_training_stop must be one of"):
        feature_method("f", "f", tiny_checkpoint, data, self_training="predicted", self_training_stop="never")


def test_self_trained_features_read_the_cached_pool(tiny_checkpoint, tmp_path):
    data = load_finetuning_data(DataArguments(), tiny_checkpoint)
    data = FinetuningData(data.pool.select(range(200)), data.test.select(range(40)), data.description)
    method = feature_method("clm_features_self_training", "self-trained", tiny_checkpoint, data,
                            max_seq_length=16, self_training="predicted", cache_dir=tmp_path)  # fmt: skip
    scores = method.run("2", 0)
    assert (
        0 <= scores["accuracy"] <= 1
        and scores["num_train"] == 10
        and method.settings["self_training"] == "predicted"
    )
    (cached,) = tmp_path.glob("features-*.npz")
    assert np.load(cached)["pool"].shape[0] == 200 and np.load(cached)["test"].shape[0] == 40
    plain = feature_method(
        "clm_features", "plain", tiny_checkpoint, data, max_seq_length=16, cache_dir=tmp_path
    )
    computed = feature_method("clm_features", "plain", tiny_checkpoint, data, max_seq_length=16)
    assert plain.run("2", 1) == pytest.approx(computed.run("2", 1))  # the same features, read from the file
    assert "self_training" not in plain.settings and list(tmp_path.glob("features-*.npz")) == [cached]
    with pytest.raises(UserError, match="classification"):
        feature_method("f", "f", tiny_checkpoint, data, task="regression", self_training="predicted")


def test_plain_features_read_only_the_drawn_pool_documents(tiny_checkpoint, tmp_path, monkeypatch):
    data = load_finetuning_data(DataArguments(), tiny_checkpoint)
    data = FinetuningData(data.pool.select(range(200)), data.test.select(range(40)), data.description)
    method = feature_method(
        "clm_features", "plain", tiny_checkpoint, data, max_seq_length=16, cache_dir=tmp_path
    )
    first = method.run("2", 0)
    (cached,) = tmp_path.glob("features-*.npz")
    with np.load(cached) as saved:  # 2 labels for each of 5 classes: 10 pool rows, not 200
        assert 0 < len(saved["pool_rows"]) == len(saved["pool"]) <= 10 and len(saved["test"]) == 40
        drawn = set(saved["pool_rows"].tolist())
    method.run("2", 1)  # another draw adds its rows, keeps the first ones
    with np.load(cached) as saved:
        assert drawn < set(saved["pool_rows"].tolist()) and len(saved["pool_rows"]) <= 20
    rerun = feature_method(
        "clm_features", "plain", tiny_checkpoint, data, max_seq_length=16, cache_dir=tmp_path
    )

    def encode(*args, **kwargs):
        raise AssertionError("the file holds these rows: nothing should be encoded again")

    monkeypatch.setattr(label_efficiency_module, "pooled_features", encode)
    assert rerun.run("2", 0) == pytest.approx(first)  # read from the file, rows in the draw's order
    with pytest.raises(AssertionError, match="encoded again"):  # a draw the file lacks is encoded
        rerun.run("2", 2)


def test_script_refuses_a_self_training_stop_without_self_training(tiny_checkpoint):
    result = subprocess.run([sys.executable, str(SCRIPT), "--clm_checkpoint", str(tiny_checkpoint), "--features",
                             "--self_training_stop", "labels"], capture_output=True, text=True, env=ENV, timeout=300)  # fmt: skip
    assert result.returncode == 2 and "--self_training_stop needs --self_training" in result.stderr


def run_script(argv):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, env=ENV, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow  # ~1 minute: 9 fine-tunes in subprocesses; the library's own study test above is in the default suite
def test_quick_study_script_tunes_writes_and_resumes(tiny_checkpoint, tmp_path):
    argv = ["--clm_checkpoint", str(tiny_checkpoint), "--quick", "--num_labels_list", "2", "--output_dir",
            str(tmp_path / "results"), "--work_dir", str(tmp_path / "work"), "--learning_rates", "1e-4", "1e-2",
            "--tune_num_labels", "25", "--features", "--self_training", "--per_device_train_batch_size", "4"]  # fmt: skip
    run_script(argv)
    report = (tmp_path / "results" / "label_efficiency.md").read_text()
    assert (
        "| labels per class | TF-IDF + logistic regression | TF-IDF + logistic regression, self-trained (predicted) "
        "| RNN from scratch | pretrained causal LM | RNN from "
        "scratch, fixed features + logistic regression | pretrained causal LM, fixed features + logistic regression | "
        "RNN from scratch, fixed features + logistic regression, self-trained (predicted) | pretrained causal LM, "
        "fixed features + logistic regression, self-trained (predicted) |" in report
    )
    assert "Hardware: " in report and "Quick mode" in report and "| 2 |" in report
    # the floor under every table: the share of BBC News's largest topic among the test documents
    assert report.count("Floor: always predicting the test set's most frequent class scores ") == 2
    records = [json.loads(line) for line in (tmp_path / "work" / "results.jsonl").read_text().splitlines()]
    assert {r["method"] for r in records if r["num_labels"] == "2"} == {
        "tfidf",
        "tfidf_self_training",
        "scratch",
        "clm",
        "scratch_features",
        "clm_features",
        "scratch_features_self_training",
        "clm_features_self_training",
    }
    # the batch size reaches every fine-tuning run and is recorded with it (another value reruns them)
    assert {
        r["settings"].get("per_device_train_batch_size") for r in records if r["method"] in ("scratch", "clm")
    } == {4}
    tuning = [r for r in records if r["num_labels"] == "25"]
    assert sorted((r["method"], r["settings"]["learning_rate"]) for r in tuning) == [
        ("clm", 1e-4), ("clm", 1e-2), ("scratch", 1e-4), ("scratch", 1e-2)]  # fmt: skip
    for method in ("scratch", "clm"):
        scores = {
            r["settings"]["learning_rate"]: r["best_validation_accuracy"]
            for r in tuning
            if r["method"] == method
        }
        best = max(
            scores, key=lambda lr: (scores[lr], -[1e-4, 1e-2].index(lr))
        )  # ties: the first of the grid
        (main_run,) = [r for r in records if r["method"] == method and r["num_labels"] == "2"]
        assert main_run["settings"]["learning_rate"] == best
    assert (
        report.split("## Learning rates")[1].split("**Quick mode**")[0].count("**") == 4
    )  # one bold per net
    # Resumes: a rerun records nothing new; --report_only marks what is missing
    before = (tmp_path / "work" / "results.jsonl").read_text()
    run_script([*argv, "--report_only", "--num_labels_list", "2", "8"])
    assert (tmp_path / "work" / "results.jsonl").read_text() == before
    assert (
        "| 8 | – | – | – | – | – | – | – | – |" in (tmp_path / "results" / "label_efficiency.md").read_text()
    )
    run_script([*argv, "--features", "only", "--report_only", "--output_dir", str(tmp_path / "only")])
    only = (tmp_path / "only" / "label_efficiency.md").read_text()
    assert "| labels per class | TF-IDF + logistic regression | TF-IDF + logistic regression, self-trained " \
           "(predicted) | RNN from scratch, fixed features + logistic regression | pretrained causal LM, fixed" in only  # fmt: skip
    assert "No network is fine-tuned" in only and "## Learning rates" not in only
    # beside TF-IDF, strengths cross-validated: only linear models run, on the features the first runs kept
    run_script([*argv, "--features", "only", "--with_tfidf", "--linear_model", "cv", "--seeds", "0", "1",
                "--output_dir", str(tmp_path / "cv")])  # fmt: skip
    cv = (tmp_path / "cv" / "label_efficiency.md").read_text()
    assert "| pretrained causal LM, fixed features beside TF-IDF + logistic regression (strength cross-validated) |" \
        in cv and "cross-validation on the N labeled documents" in cv and "probabilities averaged" in cv  # fmt: skip
    assert "## Against TF-IDF + logistic regression (strength cross-validated), seed by seed (accuracy)" in cv
    # with --self_training too, the two self-train together
    assert "| pretrained causal LM, fixed features beside TF-IDF + logistic regression, self-trained (predicted) " \
        "(strength cross-validated) |" in cv and "the two self-train together" in cv  # fmt: skip
    # the views' weights cross-validated on the labels, recorded with each run
    run_script([*argv, "--features", "only", "--with_tfidf", "cv", "--output_dir", str(tmp_path / "fused")])
    fused = (tmp_path / "fused" / "label_efficiency.md").read_text()
    assert "| pretrained causal LM, fixed features beside TF-IDF (weights cross-validated) + logistic regression |" \
        in fused and "out-of-fold probabilities" in fused  # fmt: skip
    records = [json.loads(line) for line in (tmp_path / "work" / "results.jsonl").read_text().splitlines()]
    weights = [r["states_weight"] for r in records if r["settings"].get("fusion") == "cv"]
    assert len(weights) == 4 and all(0 <= w <= 1 for w in weights)  # 2 networks, plain and self-trained
    # self-training stopped by the labels: its own runs, each with the rounds it kept
    run_script(
        [
            *argv,
            "--features",
            "only",
            "--self_training_stop",
            "labels",
            "--output_dir",
            str(tmp_path / "stop"),
        ]
    )
    stop = (tmp_path / "stop" / "label_efficiency.md").read_text()
    assert "| TF-IDF + logistic regression, self-trained (predicted, stopped by the labels) |" in stop
    assert "## Self-training rounds kept" in stop and "## Self-training rounds kept" not in only
    records = [json.loads(line) for line in (tmp_path / "work" / "results.jsonl").read_text().splitlines()]
    rounds = [
        r["self_training_rounds"] for r in records if r["settings"].get("self_training_stop") == "labels"
    ]
    assert len(rounds) == 3 and all(0 <= n <= 5 for n in rounds)  # TF-IDF and the 2 networks' features
    assert (
        not list(Path("docs/results").glob("*.md"))
        or "Quick mode" not in Path("docs/results/label_efficiency.md").read_text()
    )  # fmt: skip  (the committed results are never touched)


def test_report_says_how_each_method_learns_from_the_labels():
    fine_tuned = text_study_method_lines("TF-IDF + logistic regression", "runs/lm")
    assert fine_tuned[0].startswith("- The networks fine-tune with `rnn_hf.training.finetune`")
    assert "early stopping from 25 per class" in fine_tuned[0] and fine_tuned[0].endswith("of `runs/lm`.")
    assert fine_tuned[1].endswith("trains on all N labeled documents. The linear models keep scikit-learn's "
                                  "default strength (C = 1; ridge: alpha = 1).")  # fmt: skip
    assert (
        "they train a fixed number of epochs" in text_study_method_lines("b", "x", validation_fraction=0)[0]
    )
    assert "they hold 10% of the labels out" in text_study_method_lines("b", "x", validation_fraction=0.1)[0]
    features_only = text_study_method_lines(
        "b", "x", fine_tuned=False, features=True, self_training="balanced"
    )
    assert (
        features_only[0].startswith("- No network is fine-tuned") and "fine-tune with" not in features_only[0]
    )
    assert "standardized pooled states (fixed features). Self-trained:" in features_only[1]
    assert "split among classes equally; TF-IDF + logistic regression self-trains alike" in features_only[1]
    assert "the control. The linear models keep" in features_only[1]
    stopped = text_study_method_lines("b", "x", fine_tuned=False, features=True, self_training="predicted",
                                      self_training_stop="labels")  # fmt: skip
    assert ("split among classes as predicted; it stops at the first round whose model classifies the N labeled "
            "documents worse than the first model did, keeping the round before; TF-IDF") in stopped[1]  # fmt: skip


def test_rounds_table_says_how_often_a_stop_ended_self_training():
    records = [{"method": "st", "num_labels": n, "self_training_rounds": rounds} for n, rounds in
               (("10", 5), ("10", 0), ("10", 2), ("all", 5))] + [{"method": "st", "num_labels": "100"}]  # fmt: skip
    table = rounds_table(records, ["10", "100", "all"], [Method("st", "self-trained", None)], 312.4, "labels")
    assert table.splitlines() == ["| labels | self-trained |", "|---|---|", "| 10 | 2.3 (0–5) |", "| 100 | – |",
                                  "| all (≈312) | 5.0 (5–5) |"]  # fmt: skip


def test_label_savings_and_table_cells():
    table = {("scratch", "10"): (0.3, 0, 3), ("scratch", "100"): (0.7, 0, 3), ("clm", "10"): (0.72, 0, 3),
             ("clm", "100"): (0.9, 0, 3), ("mlm", "10"): (0.5, 0, 3), ("mlm", "100"): (0.69, 0, 3)}  # fmt: skip
    methods = [Method(name, legend, None) for name, legend in
               (("tfidf", "TF-IDF"), ("scratch", "scratch"), ("clm", "CLM"), ("mlm", "MLM"))]  # fmt: skip
    clm, mlm = label_savings(table, ["10", "100", "all"], methods, "accuracy")
    assert clm.startswith("- CLM: 10 labels reach") and "10x fewer" in clm
    assert "MLM: does not reach the network from scratch with 100 labels" in mlm
    rmse = label_savings(
        {("scratch", "100"): (2.0, 0, 1), ("clm", "10"): (1.9, 0, 1)}, ["10", "100"], methods, "rmse"
    )
    assert rmse[0].startswith("- CLM: 10 labels reach")  # lower is better
    table[("mlm", "100")] = (0.75, 0, 3)  # ahead of scratch only at the most labels: no "1x fewer"
    mlm = label_savings(table, ["10", "100"], methods, "accuracy")[1]
    assert mlm == (
        "- MLM: at 100 labels it reaches the network from scratch with 100 (accuracy 0.75 vs 0.7), with fewer "
        "it does not: no saving measurable below 100."
    )
    cells = {
        ("tfidf", "5"): (0.9, 0.01, 3),
        ("tfidf", "all"): (0.98, 0.0, 1),
        ("tfidf", "10"): (0.93, 0.02, 2),
    }
    text = markdown_table(cells, ["5", "10", "all"], methods[:1], 3, 100, 300.0, "labels per class")
    assert (
        "| 5 | 90.0 ± 1.0 |" in text
        and "| 10 | 93.0 ± 2.0 (n=2) |" in text
        and "| all (≈300) | 98.0 (n=1) |" in text
    )


def test_report_pairs_each_pretrained_network_with_scratch_seed_by_seed(tmp_path):
    accuracy = {"scratch": [0.5, 0.6, 0.7], "clm": [0.6, 0.6, 0.9], "tfidf": [0.9, 0.9, 0.9],
                "scratch_objective": [0.4, 0.4, 0.4]}  # fmt: skip
    methods = [Method(name, legend, lambda n, seed, name=name: {"accuracy": accuracy[name][seed]})
               for name, legend in (("tfidf", "TF-IDF"), ("scratch", "scratch"), ("clm", "CLM"),
                                    ("scratch_objective", "scratch, objective kept"))]  # fmt: skip
    report = label_efficiency(methods, ["5", "10"], [0, 1, 2], tmp_path / "work", tmp_path / "out",
                              metrics=("accuracy",)).read_text()  # fmt: skip
    section = report.split("## Against the network from scratch, seed by seed (accuracy)")[1].split("\n## ")[
        0
    ]
    # differences 0.1, 0.0, 0.2: mean 0.1, sample std 0.1, standard error 0.1 / sqrt(3); one tie
    assert "| labels per class | CLM |" in section and "TF-IDF" not in section and "objective" not in section
    assert "| 5 | +10.0 ± 5.8 (2 ahead, 0 behind of 3) |" in section
    summary = json.loads((tmp_path / "out" / "label_efficiency.json").read_text())
    assert summary["minus_scratch"]["accuracy"]["clm"]["10"] == pytest.approx(
        {"mean": 0.1, "standard_error": 0.1 / 3**0.5, "ahead": 2, "behind": 0, "count": 3}
    )
    # and every network with the baseline, the controls too: clm - tfidf is -0.3, -0.3, 0.0
    baseline = report.split("## Against TF-IDF, seed by seed (accuracy)")[1].split("\n## ")[0]
    assert "| labels per class | scratch | CLM | scratch, objective kept |" in baseline
    assert "| 5 | -30.0 ± 5.8 (0 ahead, 3 behind of 3) | -20.0 ± 10.0 (0 ahead, 2 behind of 3) |" in baseline
    assert summary["minus_tfidf"]["accuracy"]["clm"]["5"]["mean"] == pytest.approx(-0.2)
    records = [{"method": m, "num_labels": "5", "seed": seed, "rmse": value} for m, values in
               (("scratch", [2.0, 2.0]), ("clm", [1.0, 3.0]), ("mlm", [1.5, 1.5])) for seed, value in enumerate(values)]  # fmt: skip
    records.append({"method": "clm", "num_labels": "10", "seed": 0, "rmse": 1.0})  # one seed: no cell
    paired = paired_with_scratch(records, ["5", "10"], [Method("clm", "CLM", None), Method("mlm", "MLM", None)],
                                 "rmse")  # fmt: skip
    assert paired == {("clm", "5"): (0.0, pytest.approx(1.0), 1, 1, 2), ("mlm", "5"): (-0.5, 0.0, 2, 0, 2)}


def test_report_pairs_the_networks_with_the_self_trained_baseline_too(tmp_path):
    accuracy = {"tfidf": [0.8, 0.8, 0.8], "tfidf_self_training": [0.9, 0.85, 0.9], "clm": [0.95, 0.8, 0.9]}
    methods = [Method(name, legend, lambda n, seed, name=name: {"accuracy": accuracy[name][seed]})
               for name, legend in (("tfidf", "TF-IDF"), ("tfidf_self_training", "TF-IDF, self-trained"),
                                    ("clm", "CLM"))]  # fmt: skip
    report = label_efficiency(methods, ["5"], [0, 1, 2], tmp_path / "work", tmp_path / "out",
                              metrics=("accuracy",)).read_text()  # fmt: skip
    plain = report.split("## Against TF-IDF, seed by seed (accuracy)")[1].split("\n## ")[0]
    assert "| labels per class | TF-IDF, self-trained | CLM |" in plain
    # clm - self-trained TF-IDF: 0.05, -0.05, 0.0 (one tie); the plain baseline is not paired again
    section = report.split("## Against TF-IDF, self-trained, seed by seed (accuracy)")[1].split("\n## ")[0]
    assert (
        "| labels per class | CLM |" in section and "| 5 | +0.0 ± 2.9 (1 ahead, 1 behind of 3) |" in section
    )
    summary = json.loads((tmp_path / "out" / "label_efficiency.json").read_text())
    assert summary["minus_tfidf_self_training"]["accuracy"]["clm"]["5"]["mean"] == pytest.approx(0.0)
    assert set(summary["minus_tfidf_self_training"]["accuracy"]) == {"clm"}
    assert summary["minus_tfidf"]["accuracy"]["tfidf_self_training"]["5"]["mean"] == pytest.approx(0.25 / 3)
    only_self_trained = label_efficiency(methods[1:], ["5"], [0, 1, 2], tmp_path / "work", tmp_path / "out2",
                                         metrics=("accuracy",)).read_text()  # fmt: skip
    assert "## Against TF-IDF, self-trained, seed by seed" in only_self_trained
    assert "## Against TF-IDF, seed by seed" not in only_self_trained


def test_majority_class_floor():
    floor = majority_class_scores(["a", "b", "a", "c", "a", "b"])
    assert floor["accuracy"] == 0.5 and floor["macro_f1"] == pytest.approx((2 * 0.5 / 1.5) / 3)


def test_document_split_records_and_refuses(tmp_path):
    split = DocumentSplit.from_documents(
        ["a  b", "c"], source="x.txt", test_size=0.2, validation_size=0.1, seed=0
    )
    split.save(tmp_path)
    loaded = DocumentSplit.load(tmp_path)
    assert loaded == split and loaded.seen(["a b", "d"]) == [True, False]  # blind to whitespace


def test_a_study_tests_on_documents_no_checkpoint_pretrained_on(tiny_checkpoint, tmp_path):
    data = load_finetuning_data(DataArguments(), tiny_checkpoint)
    other = tmp_path / "other"
    other.mkdir()
    DocumentSplit.from_documents(data.test["text"][:3], source="BBC News").save(
        other
    )  # pretrained on 3 of them
    copies = sum(DocumentSplit.load(other).seen(data.test["text"]))  # 3 or more: the test split repeats a few
    assert copies >= 3
    common = unseen_by_every_checkpoint(data, [tiny_checkpoint, other], refuse=False)
    assert len(common.test) == len(data.test) - copies and common.pool is data.pool
    assert not any(DocumentSplit.load(other).seen(common.test["text"]))
    with pytest.raises(DataError, match=f"{copies} of the"):
        unseen_by_every_checkpoint(data, [tiny_checkpoint, other], refuse=True)


def test_finetune_method_passes_data_and_model_settings_and_records_them(tmp_path):
    method = finetune_method("clm", "CLM", tmp_path, None, tmp_path, validation_fraction=0.0, classifier_bptt=64,
                             learning_rate=1e-3)  # fmt: skip
    assert method.settings["validation_fraction"] == 0.0 and method.settings["classifier_bptt"] == 64
    assert method.settings["learning_rate"] == 1e-3  # a TrainingArguments field, recorded too


def test_study_flag_types_refuse_what_the_draws_cannot_take():
    assert [labels_per_class(value) for value in ("1", "25", "all")] == ["1", "25", "all"]
    assert non_negative_int("0") == 0 and non_negative_int("7") == 7
    for value in ("0", "-3", "x", "2.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive integers or 'all'"):
            labels_per_class(value)
    for value in ("-1", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="non-negative integers"):
            non_negative_int(value)
