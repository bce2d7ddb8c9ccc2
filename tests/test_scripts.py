"""scripts/ are thin: flag parsing and printing over the library, no script imports another, no dated numbers in
code (they belong in docs/results/ and the CHANGELOG), and no script writes the committed results by default."""

import os
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
