"""rnn_hf.hub installed from a wheel: the model-card template ships inside the package, not beside src/."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rnn_hf.data import load_bbc_news

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
TINY = ["--embedding_size", "16", "--hidden_size", "24", "--block_size", "16", "--vocab_size", "300",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4",
        "--max_train_steps", "3"]  # fmt: skip


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def test_wheel_install_writes_model_card(tmp_path):
    # The wheel is built from a copy of its sources: setuptools' build/ (stale files included) stays out of it
    # and the checkout stays untouched. --no-build-isolation uses the venv's setuptools (no downloads).
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    dist, site = tmp_path / "dist", tmp_path / "site"
    run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist), str(source)])
    (wheel,) = dist.glob("rnn_hf-*.whl")
    run([*PIP, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)])
    assert (site / "rnn_hf" / "templates" / "model_card.md").is_file()

    # From tmp_path, src/ is not importable; PYTHONPATH puts the install before the venv's editable checkout.
    env = {**ENV, "PYTHONPATH": str(site)}
    imported = run([sys.executable, "-c", "import rnn_hf; print(rnn_hf.__file__)"], env=env, cwd=tmp_path)
    assert Path(imported.stdout.strip()).resolve().is_relative_to(site.resolve()), imported.stdout

    texts = load_bbc_news().shuffle(seed=0).select(range(40))["text"]
    (tmp_path / "train.txt").write_text("\n\n".join(text.replace("\n", " ") for text in texts))
    out = tmp_path / "out"
    data = ["--train_file", str(tmp_path / "train.txt"), "--output_dir", str(out)]
    run([sys.executable, str(ROOT / "scripts" / "pretrain.py"), *data, *TINY], env=env, cwd=tmp_path)
    results = json.loads((out / "results.json").read_text())
    assert f"{results['eval_perplexity']:.4f}" in (out / "README.md").read_text()
