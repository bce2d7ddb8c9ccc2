"""`make demo`'s script end to end, on a tiny budget: every step runs and the table is printed."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rnn_hf.training.label_efficiency import study_summary_lines

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # about 70 s on 2 cores: `.ci/run` runs it after `make test`
def test_demo_quick_runs_every_step(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--quick", "--output_dir", str(tmp_path),
         "--pretrain_steps", "8", "--num_labeled_per_class", "4"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for needle in (
        "held-out perplexity",
        "pretrained LSTM",
        "LSTM from scratch",
        "TF-IDF",
        "sample ('The government said'):",
        "beyond the demo's budget:",
    ):
        assert needle in out, needle
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert (tmp_path / "clf_pretrained" / "metrics.json").exists() and (
        tmp_path / "lm" / "README.md"
    ).exists()


def test_the_demo_quotes_the_committed_studies_at_its_number_of_labels_with_their_make_targets():
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)  # definitions only: main() runs under __name__ == "__main__"
    # BBC on 2 CPU cores (6 epochs beside TF-IDF; then the document objective), on one GPU with ULMFiT's network;
    # spam; IMDB with the causal LM, where TF-IDF stays ahead, and with the document objective, where it falls behind
    assert len(demo.STUDIES) == 6
    targets = re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE)
    for study, how in demo.STUDIES.items():
        assert re.search(r"`make ([\w-]+)`", how)[1] in targets, how  # the one command that reproduces it
        lines = study_summary_lines(ROOT / study, 10)
        assert "N=10" in lines[0] and lines[-1].startswith("  reproduce: python scripts/label_efficiency.py")
        assert any(line.strip().startswith("TF-IDF + logistic regression") for line in lines)
