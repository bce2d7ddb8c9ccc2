"""scripts/ are thin: flag parsing and printing over the library, no script imports another, no dated numbers in
code (they belong in docs/results/ and the CHANGELOG), and no script writes the committed results by default."""

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_each_script_is_thin_and_imports_no_other_script(script):
    text = script.read_text()
    assert len(text.splitlines()) <= 200, f"{script.name} has {len(text.splitlines())} lines"
    assert "sys.path" not in text
    for other in SCRIPTS:
        assert not re.search(rf"^\s*(from|import) {other.stem}\b", text, re.MULTILINE), (
            f"imports {other.name}"
        )


EXPERIMENT_NUMBER = re.compile(r"\d+\.\d+ ?%|\b20\d\d-\d\d-\d\d\b|perplexity \d{3,}")


@pytest.mark.parametrize(
    "path", [*SCRIPTS, *sorted((ROOT / "src").rglob("*.py"))], ids=lambda path: path.name
)
def test_no_experiment_numbers_in_code(path):
    """A measured figure in a docstring, a help text or a constant goes stale silently: docs/results/ and the
    CHANGELOG hold them, dated and with the command that reproduces them."""
    found = EXPERIMENT_NUMBER.findall(path.read_text())
    assert not found, f"{path.relative_to(ROOT)}: {found}"


def test_label_efficiency_writes_its_report_outside_the_committed_results_by_default():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "label_efficiency.py"), "--help"],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "300"})  # fmt: skip
    assert result.returncode == 0
    default = re.search(
        r"--output_dir OUTPUT_DIR\s+where the \.md and \.png go \(default: (\S+)\)", result.stdout
    )
    assert default and default.group(1) == "runs/label_efficiency", result.stdout


GENERAL_WORDS = (
    "the a river town king letter sea old new said went came and of to in was with his her".split()
)


def random_documents(path: Path, vocabularies: list[list[str]], count: int, length: int = 120) -> Path:
    """`count` JSON lines of random words, each document from one of `vocabularies` in turn (its index the
    "label" when there are several)."""
    rng = random.Random(0)
    with path.open("w") as f:
        for i in range(count):
            label = i % len(vocabularies)
            text = " ".join(rng.choice(vocabularies[label]) for _ in range(length))
            f.write(json.dumps({"text": text, **({"label": label} if len(vocabularies) > 1 else {})}) + "\n")
    return path


@pytest.mark.slow  # ~2 minutes on 2 cores: three tiny pretraining runs, then two studies on BBC News
def test_gpu_three_stages_script_plans_its_steps_and_writes_every_report(tmp_path):
    """scripts/gpu_three_stages.sh with SMOKE=1 (tiny sizes, on the CPU): the calibration run's rate plans the
    general LM's steps, the domain LM continues it, and both studies write their tables."""
    general = random_documents(tmp_path / "general.jsonl", [GENERAL_WORDS], 150)
    runs, report = tmp_path / "runs", tmp_path / "report"
    env = {**os.environ, "SMOKE": "1", "PY": sys.executable, "RUNS": str(runs), "REPORT": str(report),
           "GENERAL_FILE": str(general), "FINETUNE_SECONDS": "600",
           "FINETUNE_ARGS": "--per_device_train_batch_size 4"}  # fmt: skip
    result = subprocess.run(["bash", "scripts/gpu_three_stages.sh"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=1200)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    stages = [s.strip() for s in re.findall(r"^== \S+ ([^:(,]+)", result.stdout, re.MULTILINE)]
    assert stages == ["calibration", "general LM", "domain LM", "fixed-features study", "fine-tuning study",
                      "done"], stages  # fmt: skip
    calibration = json.loads((runs / "calibration" / "results.json").read_text())
    planned = int(re.search(r"general LM: (\d+) steps planned for 170s", result.stdout).group(1))
    assert planned == max(1, int(calibration["steps"] / calibration["train_seconds"] * 170))
    assert json.loads((runs / "general_lm" / "results.json").read_text())["steps"] == planned
    assert "continued from" in json.loads((runs / "bbc_lm" / "split.json").read_text())["source"]
    assert "# general_lm" in (report / "general_lm.md").read_text()
    features = (report / "fixed_features" / "label_efficiency.md").read_text()
    assert (
        "| pretrained causal LM, fixed features + logistic regression |" in features and "| 2 |" in features
    )
    finetuned = (report / "finetuned" / "label_efficiency.md").read_text()
    assert "| TF-IDF + logistic regression | RNN from scratch | pretrained causal LM |" in finetuned
    assert "| 2 |" in finetuned
    records = [
        json.loads(line) for line in (runs / "le_finetuned" / "results.jsonl").read_text().splitlines()
    ]
    assert {r["settings"].get("per_device_train_batch_size") for r in records if r["method"] != "tfidf"} == {
        4
    }


@pytest.mark.slow  # ~1 minute on 2 cores: three tiny pretraining runs, one study
def test_gpu_three_stages_script_takes_another_domain_and_more_study_flags(tmp_path):
    """DOMAIN_FILE: the domain LM continues on that file's documents, its epochs planned from their token count, and
    the fixed-features study runs on its labels, with FEATURES_ARGS's flags and, SELF_TRAINING empty, without
    self-training."""
    general = random_documents(tmp_path / "general.jsonl", [GENERAL_WORDS], 150)
    domain = random_documents(tmp_path / "reviews.jsonl", [GENERAL_WORDS[:10] + ["good", "great"],
                                                           GENERAL_WORDS[:10] + ["bad", "awful"]], 80, 60)  # fmt: skip
    runs, report = tmp_path / "runs", tmp_path / "report"
    env = {**os.environ, "SMOKE": "1", "PY": sys.executable, "RUNS": str(runs), "REPORT": str(report),
           "GENERAL_FILE": str(general), "GENERAL_SECONDS": "5", "DOMAIN_FILE": str(domain),
           "DOMAIN_NAME": "reviews", "FEATURES_ARGS": "--with_tfidf cv --linear_model cv",
           "SELF_TRAINING": ""}  # fmt: skip
    result = subprocess.run(["bash", "scripts/gpu_three_stages.sh"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=1200)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    stages = [s.strip() for s in re.findall(r"^== \S+ ([^:(,\n]+)", result.stdout, re.MULTILINE)]
    assert stages == ["calibration", "general LM", "domain LM", "fixed-features study", "done"], stages
    from transformers import AutoTokenizer

    texts = [json.loads(line)["text"] for line in domain.read_text().splitlines()]
    tokens = sum(map(len, AutoTokenizer.from_pretrained(runs / "calibration")(texts)["input_ids"]))
    planned = int(re.search(r"training documents \((\d+) steps each\)", result.stdout).group(1))
    assert planned == max(1, round(0.7 * tokens / (128 * 8)))  # SMOKE's batch of 8 blocks of 128 tokens
    split = json.loads((runs / "reviews_lm" / "split.json").read_text())
    assert "continued from" in split["source"] and str(domain) in split["source"], split["source"]
    assert (report / "reviews_lm.md").is_file() and not (runs / "bbc_lm").exists()
    features = (report / "fixed_features" / "label_efficiency.md").read_text()
    assert "pretrained causal LM, fixed features beside TF-IDF (weights cross-validated)" in features
    assert str(domain) in features and "| 2 |" in features and "self-trained" not in features
