"""scripts/pretrain.py in real subprocesses: both objectives, exact resume, `accelerate launch` on 2 processes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rnn_hf.data import load_bbc_news, train_tokenizer
from rnn_hf.training.batching import BlockBatches, StreamBatches

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
TINY = ["--embedding_size", "16", "--hidden_size", "24", "--block_size", "16", "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "8", "--num_warmup_steps", "2", "--learning_rate", "5e-3"]  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small real corpus (60 BBC articles as a local .txt file) and a tokenizer trained on it."""
    root = tmp_path_factory.mktemp("corpus")
    texts = load_bbc_news().shuffle(seed=0).select(range(60))["text"]
    (root / "train.txt").write_text("\n\n".join(text.replace("\n", " ") for text in texts))
    train_tokenizer(texts, vocab_size=400).save_pretrained(root / "tokenizer")
    return root


def run_pretrain(args, launcher=None, timeout=300):
    command = (launcher or [sys.executable]) + [str(ROOT / "scripts" / "pretrain.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=timeout, cwd=ROOT)


def weights(directory: Path) -> dict:
    return load_file(directory / "model.safetensors")


@pytest.mark.parametrize(
    "objective_args",
    [["--objective", "clm", "--tbptt", "--embedding_dropout", "0.1", "--weight_dropout", "0.3"],
     ["--objective", "mlm", "--input_dropout", "0.2"]],
    ids=["clm-tbptt", "mlm"],
)  # fmt: skip
def test_resumed_run_equals_uninterrupted_run(corpus, tmp_path, objective_args):
    common = ["--train_file", str(corpus / "train.txt"), "--tokenizer_name", str(corpus / "tokenizer"),
              "--max_train_steps", "14", *TINY, *objective_args]  # fmt: skip
    full = run_pretrain([*common, "--output_dir", str(tmp_path / "full"), "--checkpointing_steps", "5"])
    assert full.returncode == 0, full.stderr[-3000:]
    assert (tmp_path / "full" / "checkpoints" / "step_10").is_dir()
    # "Stop" after step 5: a fresh process resumes from that checkpoint alone and runs to the same total length.
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(tmp_path / "full" / "checkpoints" / "step_5", tmp_path / "step_5")
    resumed = run_pretrain(
        [*common, "--output_dir", str(resumed_dir), "--resume_from_checkpoint", str(tmp_path / "step_5")]
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout and "at step 5" in resumed.stdout
    want, got = weights(tmp_path / "full"), weights(resumed_dir)
    assert want.keys() == got.keys()
    for name in want:
        assert torch.equal(want[name], got[name]), name
    # It learned something, and the card and logs carry the measured numbers.
    results = json.loads((tmp_path / "full" / "results.json").read_text())
    assert results["steps"] == 14 and results["eval_loss"] < 6.0  # log(400) = 5.99 at chance
    card = (tmp_path / "full" / "README.md").read_text()
    assert f"{results['eval_perplexity']:.4f}" in card and "optimizer steps | 14" in card
    assert (tmp_path / "full" / "metrics.csv").read_text().count("eval") >= 1
    if "mlm" in objective_args:
        assert 0.0 <= results["eval_masked_accuracy"] <= 1.0


def test_accelerate_launch_on_two_processes(corpus, tmp_path, monkeypatch):
    # `accelerate launch --num_processes 2 --cpu` starts ONE process in accelerate 1.x (its simple launcher; see
    # huggingface/accelerate#2741). Two CPU processes come from the torchrun launcher with ACCELERATE_USE_CPU.
    monkeypatch.setitem(ENV, "ACCELERATE_USE_CPU", "1")
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip
    args = ["--train_file", str(corpus / "train.txt"), "--tokenizer_name", str(corpus / "tokenizer"), "--objective",
            "clm", "--tbptt", "--max_train_steps", "6", "--checkpointing_steps", "3", "--output_dir",
            str(tmp_path / "ddp"), *TINY]  # fmt: skip
    result = run_pretrain(args, launcher=launcher, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = tmp_path / "ddp" / "checkpoints" / "step_3"
    assert "processes: 2 (MULTI_CPU)" in result.stdout
    for process in (0, 1):  # each process saved its RNG states and its own rows' recurrent state
        assert (checkpoint / f"carried_state_{process}.pt").exists() and (
            checkpoint / f"random_states_{process}.pkl"
        ).exists()
    results = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert results["steps"] == 6 and results["eval_loss"] > 0
    assert "tokens per step | 128" in (tmp_path / "ddp" / "README.md").read_text()  # 2 processes x 4 x 16


def test_no_eval_each_epoch_evaluates_once_at_the_end(corpus, tmp_path):
    args = ["--train_file", str(corpus / "train.txt"), "--tokenizer_name", str(corpus / "tokenizer"),
            "--max_train_samples", "3", "--num_train_epochs", "3", "--output_dir", str(tmp_path / "out"), *TINY]  # fmt: skip
    result = run_pretrain([*args, "--no-eval_each_epoch"])
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    rows = (tmp_path / "out" / "metrics.csv").read_text().splitlines()
    evaluated = {(row.split(",")[1], row.split(",")[2]) for row in rows if ",eval," in row}
    assert evaluated == {(str(results["steps"]), "2")}  # the third epoch's end only
    assert "epoch 0:" not in result.stdout and "epoch 2:" in result.stdout
    assert results["eval_perplexity"] > 1


@pytest.mark.parametrize(
    "make_args, message",
    [
        (
            lambda d: ["--train_file", str(d / "missing.txt")],
            "error: --train_file '{d}/missing.txt' does not exist",
        ),
        (lambda d: ["--train_file", str(d / "empty.txt")], "error: --train_file '{d}/empty.txt' is empty"),
        (lambda d: ["--resume_from_checkpoint", str(d)], "is not a checkpoint of this script"),
    ],
    ids=["missing", "empty", "bad-checkpoint"],
)
def test_bad_input_ends_with_one_error_line(tmp_path, make_args, message):
    (tmp_path / "empty.txt").write_text("\n\n")
    result = run_pretrain([*make_args(tmp_path), "--output_dir", str(tmp_path / "out"), *TINY])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message.format(d=tmp_path) in errors[0]


def test_block_batches_are_a_function_of_epoch_and_index():
    blocks = torch.arange(40).view(20, 2)
    a = BlockBatches(blocks, batch_size=3, seed=1, num_processes=2, process_index=0)
    b = BlockBatches(blocks, batch_size=3, seed=1, num_processes=2, process_index=1)
    assert len(a) == 3
    assert torch.equal(a.batch(0, 1), BlockBatches(blocks, 3, 1, 2, 0).batch(0, 1))  # no hidden state
    seen = torch.cat([a.batch(0, i) for i in range(3)] + [b.batch(0, i) for i in range(3)])
    assert len(set(seen[:, 0].tolist())) == 18  # the two processes never share a block
    assert not torch.equal(a.batch(0, 0), a.batch(1, 0))  # reshuffled each epoch


def test_stream_batches_continue_each_row():
    stream = torch.arange(100)
    batches = StreamBatches(stream, batch_size=2, bptt=5, num_processes=2, process_index=1)
    inputs, targets = batches.batch(0, 0)
    following, _ = batches.batch(0, 1)
    assert torch.equal(targets[:, :-1], inputs[:, 1:])
    assert torch.equal(following[:, 0], inputs[:, -1] + 1)  # row r of batch i + 1 continues row r of batch i
    assert inputs[0, 0].item() == 50  # process 1 owns rows 2 and 3 of the 4 rows of 25 tokens
