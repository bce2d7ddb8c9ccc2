"""Tests for scripts/label_efficiency.py: the --quick study on a tiny fabricated checkpoint, and its resumption."""

import json
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


def test_other_settings_need_another_work_dir(quick_study, capsys):
    _, argv = quick_study
    with pytest.raises(SystemExit) as exit_info:
        label_efficiency.main([*argv, "--max_seq_length", "32"])
    assert exit_info.value.code == 2
    assert "holds runs made with other settings" in capsys.readouterr().err
