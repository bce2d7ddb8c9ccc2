"""`make demo`'s script end to end, on a tiny budget: every step runs and the table is printed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    ):
        assert needle in out, needle
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert (tmp_path / "clf_pretrained" / "metrics.json").exists() and (
        tmp_path / "lm" / "README.md"
    ).exists()
