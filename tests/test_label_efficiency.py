"""Tests for scripts/label_efficiency.py: the --quick study on a tiny fabricated checkpoint, and its resumption."""

import json
import shutil
import sys
from pathlib import Path

import pytest
from test_finetune import make_tiny_checkpoint, one_thread  # noqa: F401  (one_thread: autouse fixture)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import label_efficiency  # noqa: E402


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory):
    checkpoint = make_tiny_checkpoint(tmp_path_factory.getbasetemp() / "tiny_rnn_lm")
    root = tmp_path_factory.mktemp("label_efficiency")
    argv = ["--clm_checkpoint", str(checkpoint), "--quick", "--output_dir", str(root / "results"),
            "--work_dir", str(root / "work")]  # fmt: skip
    label_efficiency.main(argv)
    return root, argv


def test_quick_study_writes_table_plot_and_every_run(quick_study):
    root, _ = quick_study
    report = (root / "results" / "label_efficiency.md").read_text()
    assert (
        "| labels per class | TF-IDF + logistic regression | LSTM from scratch | pretrained causal LM |"
        in report
    )
    assert "| 2 |" in report and "| 4 |" in report and "## Macro-F1" in report
    assert "Hardware: " in report and "--quick" in report and "Quick mode" in report
    assert (root / "results" / "label_efficiency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    records = [json.loads(line) for line in (root / "work" / "results.jsonl").read_text().splitlines()]
    assert sorted((r["method"], r["num_labels"]) for r in records) == sorted(
        (method, n) for method in ("tfidf", "scratch", "clm") for n in ("2", "4")
    )
    assert all(0 <= r["accuracy"] <= 1 and 0 <= r["macro_f1"] <= 1 for r in records)
    tfidf_4 = next(r for r in records if r["method"] == "tfidf" and r["num_labels"] == "4")
    assert tfidf_4["num_train"] == 20  # all 4 x 5 labeled documents
    assert not [path for path in (root / "work").iterdir() if path.is_dir()]  # model dirs removed


def test_rerun_resumes_from_recorded_runs(quick_study, monkeypatch):
    root, argv = quick_study
    results = (root / "work" / "results.jsonl").read_text()
    monkeypatch.setattr(label_efficiency.finetune, "main", lambda argv: pytest.fail("reran a recorded run"))
    label_efficiency.main([*argv, "--num_labels_list", "4", "2"])  # another run order, the same table
    assert (root / "work" / "results.jsonl").read_text() == results
    report = (root / "results" / "label_efficiency.md").read_text()
    assert report.index("| 2 |") < report.index("| 4 |")


def test_report_only_runs_nothing_and_marks_what_is_missing(quick_study, monkeypatch):
    root, argv = quick_study
    monkeypatch.setattr(label_efficiency.finetune, "main", lambda argv: pytest.fail("ran a fine-tune"))
    label_efficiency.main([*argv, "--report_only", "--num_labels_list", "2", "8"])
    report = (root / "results" / "label_efficiency.md").read_text()
    assert "| 8 | – | – | – |" in report and "| 2 | " in report and "| 2 | –" not in report


def test_new_settings_rerun_only_the_runs_they_change(quick_study, monkeypatch):
    root, argv = quick_study
    work = root / "work"
    before = (work / "results.jsonl").read_text().splitlines()
    calls = []
    real_finetune = label_efficiency.finetune.main
    monkeypatch.setattr(
        label_efficiency.finetune, "main", lambda argv: calls.append(argv) or real_finetune(argv)
    )
    label_efficiency.main([*argv, "--max_seq_length", "32", "--num_labels_list", "2"])

    after = (work / "results.jsonl").read_text().splitlines()
    assert after[: len(before)] == before  # earlier runs are kept, never rewritten
    new = [json.loads(line) for line in after[len(before) :]]
    assert sorted(r["method"] for r in new) == ["clm", "scratch"]  # TF-IDF does not read tokens: not rerun
    assert all(r["settings"]["max_seq_length"] == 32 and r["num_labels"] == "2" for r in new)
    assert all(call[call.index("--max_seq_length") + 1] == "32" for call in calls)
    report = (root / "results" / "label_efficiency.md").read_text()
    assert "| 2 |" in report and "| 4 |" not in report
    assert "over 3 runs" in report  # the table holds the 3 runs under these settings, not the 64-token ones


def test_learning_rates_are_tuned_on_validation_per_method(tmp_path_factory, tmp_path):
    tiny_checkpoint = make_tiny_checkpoint(tmp_path_factory.getbasetemp() / "tiny_rnn_lm")
    argv = ["--clm_checkpoint", str(tiny_checkpoint), "--quick", "--num_labels_list", "2", "--output_dir",
            str(tmp_path / "results"), "--work_dir", str(tmp_path / "work"), "--learning_rates", "1e-4", "1e-2",
            "--tune_num_labels", "25"]  # fmt: skip
    label_efficiency.main(argv)

    records = [json.loads(line) for line in (tmp_path / "work" / "results.jsonl").read_text().splitlines()]
    tuning = [r for r in records if r["num_labels"] == "25"]
    assert sorted((r["method"], r["settings"]["learning_rate"]) for r in tuning) == [
        ("clm", 1e-4), ("clm", 1e-2), ("scratch", 1e-4), ("scratch", 1e-2)
    ]  # fmt: skip
    assert all(r["num_validation"] > 0 and r["best_validation_accuracy"] is not None for r in tuning)
    report = (tmp_path / "results" / "label_efficiency.md").read_text()
    learning_rates = report.split("## Learning rates")[1].split("**Quick mode**")[0]
    assert learning_rates.count("**") == 4  # one bold cell per LSTM
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


def test_tuning_needs_a_validation_split(tmp_path_factory, capsys):
    checkpoint = make_tiny_checkpoint(tmp_path_factory.getbasetemp() / "tiny_rnn_lm")
    with pytest.raises(SystemExit) as exit_info:
        label_efficiency.main(
            ["--clm_checkpoint", str(checkpoint), "--learning_rates", "1e-3", "--tune_num_labels", "10"]
        )
    assert exit_info.value.code == 2
    assert "leaves no validation split to tune on" in capsys.readouterr().err


def test_label_savings_compares_with_scratch_at_the_most_labels():
    table = {("scratch", "10"): (0.3, 0, 3), ("scratch", "100"): (0.7, 0, 3), ("clm", "10"): (0.72, 0, 3),
             ("clm", "100"): (0.9, 0, 3), ("mlm", "10"): (0.5, 0, 3), ("mlm", "100"): (0.69, 0, 3)}  # fmt: skip
    clm, mlm = label_efficiency.label_savings(table, ["10", "100", "all"], ["tfidf", "scratch", "clm", "mlm"])
    assert clm.startswith("- pretrained causal LM: 10 labels per class (72.0%) reach") and "10x fewer" in clm
    assert "does not reach the LSTM from scratch with 100 labels per class (70.0%)" in mlm


def test_table_cells_say_how_many_seeds_they_hold():
    table = {
        ("tfidf", "5"): (0.9, 0.01, 3),
        ("tfidf", "all"): (0.98, 0.0, 1),
        ("tfidf", "10"): (0.93, 0.02, 2),
    }
    text = label_efficiency.markdown_table(
        table, ["5", "10", "all"], ["tfidf"], all_per_class=300.0, num_seeds=3
    )
    assert (
        "| 5 | 90.0 ± 1.0 |" in text
        and "| 10 | 93.0 ± 2.0 (n=2) |" in text
        and "| all (≈300) | 98.0 (n=1) |" in text
    )


def test_scratch_checkpoint_sets_the_baseline_config(tmp_path_factory, tmp_path, monkeypatch, capsys):
    clm = make_tiny_checkpoint(tmp_path_factory.getbasetemp() / "tiny_rnn_lm")
    other = tmp_path / "other_config"
    shutil.copytree(clm, other)
    calls = []
    real_finetune = label_efficiency.finetune.main
    monkeypatch.setattr(
        label_efficiency.finetune, "main", lambda argv: calls.append(argv) or real_finetune(argv)
    )
    argv = ["--clm_checkpoint", str(clm), "--scratch_checkpoint", str(other), "--quick", "--num_labels_list", "2",
            "--output_dir", str(tmp_path / "results"), "--work_dir", str(tmp_path / "work")]  # fmt: skip
    label_efficiency.main(argv)
    records = [json.loads(line) for line in (tmp_path / "work" / "results.jsonl").read_text().splitlines()]
    checkpoint_of = {r["method"]: r["settings"].get("checkpoint") for r in records}
    assert checkpoint_of == {"tfidf": None, "scratch": str(other), "clm": str(clm)}
    (scratch_call,) = [call for call in calls if "--from_scratch" in call]
    assert scratch_call[scratch_call.index("--model_name_or_path") + 1] == str(other)

    (other / "split.json").write_text(json.dumps({"test_size": 0.3, "validation_size": 0.1, "seed": 0}))
    with pytest.raises(SystemExit) as exit_info:
        label_efficiency.main([*argv, "--report_only"])
    assert exit_info.value.code == 2
    assert "error: the checkpoints were pretrained on different document splits" in capsys.readouterr().err
