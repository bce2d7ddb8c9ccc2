"""rnn_hf.training.pretraining through scripts/pretrain.py in real subprocesses: both objectives, exact resume,
`accelerate launch` on 2 processes, held-out evaluation of every token, one error on every process."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rnn_hf.configuration_rnn import BACKBONE_DROPOUT_ARGUMENTS
from rnn_hf.data import DocumentSplit, load_bbc_news, train_tokenizer
from rnn_hf.training.batching import BlockBatches, HeldOutBlocks, HeldOutStream, StreamBatches, pad_blocks

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
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:  # say where it stopped, not only that it did
        # SIGTERM, not `subprocess.run`'s SIGKILL: torchrun passes it on to its workers (each in its own session,
        # out of reach of a process-group kill), so none is left running beside the rest of the suite
        process.terminate()
        stdout, stderr = process.communicate(timeout=120)
        pytest.fail(
            f"pretrain.py ran past {timeout} s\nstdout: ...{stdout[-3000:]}\nstderr: ...{stderr[-3000:]}"
        )
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def free_port() -> int:
    """A TCP port nothing listens on now: two launches (or another job on the machine) never share a rendezvous."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def two_process_launcher() -> list[str]:
    # `accelerate launch --num_processes 2 --cpu` starts ONE process in accelerate 1.x (its simple launcher; see
    # huggingface/accelerate#2741). Two CPU processes come from the torchrun launcher with ACCELERATE_USE_CPU.
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(free_port())]  # fmt: skip


def weights(directory: Path) -> dict:
    return load_file(directory / "model.safetensors")


@pytest.mark.parametrize(
    "objective_args",
    [["--objective", "clm", "--tbptt", "--embedding_dropout", "0.1", "--weight_dropout", "0.3"],
     ["--objective", "mlm", "--input_dropout", "0.2"],
     ["--objective", "seq_autoencoder", "--reverse_target", "--hidden_dropout", "0.1"],
     ["--objective", "bag_of_words", "--document_window", "random"]],
    ids=["clm-tbptt", "mlm", "seq_autoencoder", "bag_of_words-random-window"],
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
    if "seq_autoencoder" in objective_args:
        assert 0.0 <= results["eval_token_accuracy"] <= 1.0 and "encoder-decoder" in card
    if "bag_of_words" in objective_args:  # the most likely word of a document is one of its words, mostly
        assert 0.5 <= results["eval_top_word_in_document"] <= 1.0 and "document encoder" in card
        assert re.search(r"tokens per training document: median \d+; \d+% read whole in 16", full.stdout)
        config = json.loads((tmp_path / "full" / "config.json").read_text())
        assert config["architectures"] == ["RnnForSequenceClassification"] and len(config["id2label"]) == 400


def test_accelerate_launch_on_two_processes(corpus, tmp_path, monkeypatch):
    monkeypatch.setitem(ENV, "ACCELERATE_USE_CPU", "1")
    args = ["--train_file", str(corpus / "train.txt"), "--tokenizer_name", str(corpus / "tokenizer"), "--objective",
            "clm", "--tbptt", "--max_train_steps", "6", "--checkpointing_steps", "3", "--output_dir",
            str(tmp_path / "ddp"), "--ddp_timeout", "120", *TINY]  # fmt: skip
    result = run_pretrain(args, launcher=two_process_launcher(), timeout=400)
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
    result = run_pretrain([*args, "--no_eval_each_epoch"])
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    rows = (tmp_path / "out" / "metrics.csv").read_text().splitlines()
    evaluated = {(row.split(",")[1], row.split(",")[2]) for row in rows if ",eval," in row}
    assert evaluated == {(str(results["steps"]), "2")}  # the third epoch's end only
    assert "epoch 0:" not in result.stdout and "epoch 2:" in result.stdout
    assert results["eval_perplexity"] > 1
    # AWD-LSTM's dropouts are off unless asked for (every documented run turned them off)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert all(config[name] == 0 for name in BACKBONE_DROPOUT_ARGUMENTS)


def test_small_validation_file_is_evaluated_whole_at_the_users_batch_size(corpus, tmp_path):
    # 5 short held-out documents, fewer blocks than one batch of the old fixed eval batch size (32)
    texts = (corpus / "train.txt").read_text().split("\n\n")
    (tmp_path / "valid.txt").write_text("\n\n".join(text[:200] for text in texts[:5]))
    (tmp_path / "train.txt").write_text("\n\n".join(texts[5:]))
    args = ["--train_file", str(tmp_path / "train.txt"), "--validation_file", str(tmp_path / "valid.txt"),
            "--tokenizer_name", str(corpus / "tokenizer"), "--per_device_train_batch_size", "4", "--block_size", "16",
            "--embedding_size", "16", "--hidden_size", "24", "--max_train_steps", "3", "--output_dir",
            str(tmp_path / "out")]  # fmt: skip
    result = run_pretrain(args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "out" / "results.json").read_text())["eval_perplexity"] > 1
    # No test documents were held out: split.json says so, and lists every document pretraining trained on.
    split = DocumentSplit.load(tmp_path / "out")
    assert not split.holds_out_test_documents and len(split.trained_on) == len(texts) - 5
    assert "no test documents were held out" in (tmp_path / "out" / "README.md").read_text()


@pytest.mark.parametrize("overlap", [0, 1])
@pytest.mark.parametrize("num_tokens", [1, 7, 33, 64])
def test_held_out_blocks_cover_every_token_once(num_tokens, overlap):
    stream = torch.arange(num_tokens)
    if num_tokens <= overlap:
        with pytest.raises(ValueError, match="too few"):
            HeldOutBlocks(stream, block_size=8, batch_size=3, overlap=overlap)
        return
    scored = []
    for process in range(2):
        shard = HeldOutBlocks(stream, block_size=8, batch_size=3, num_processes=2, process_index=process,
                              overlap=overlap)  # fmt: skip
        for index in range(len(shard)):
            ids, present = pad_blocks(shard.batch(index), pad_id=-1)
            assert len(ids) <= 3 and (ids[present] >= 0).all() and (ids[~present] == -1).all()
            scored += ids[:, overlap:][present[:, overlap:]].tolist()  # a causal LM's targets skip the first
    assert sorted(scored) == list(range(overlap, num_tokens))


@pytest.mark.parametrize("num_tokens", [2, 9, 50, 203])
def test_held_out_stream_scores_every_token_but_each_rows_first(num_tokens):
    stream = torch.arange(num_tokens)
    targets, first_inputs = [], []
    for process in range(2):
        shard = HeldOutStream(stream, batch_size=4, bptt=5, pad_id=-1, num_processes=2, process_index=process)
        for index in range(len(shard)):
            inputs, labels = shard.batch(index)
            assert inputs.shape == labels.shape and inputs.shape[1] <= 5
            if index == 0:
                first_inputs += inputs[:, 0].tolist()
            targets += labels[labels != -100].tolist()
    assert sorted(targets + first_inputs) == list(range(num_tokens))


NAN_ON_PROCESS_1 = """
import sys
from rnn_hf.training import CausalLanguageModeling, PretrainingArguments, exit_on_user_error, pretrain, register_objective

@register_objective("clm_nan_on_process_1")
class NanOnProcess1(CausalLanguageModeling):
    def training_loss(self, model, epoch, index, carried=None):
        loss, carried = super().training_loss(model, epoch, index, carried)
        return (loss * float("nan") if self.accelerator.process_index == 1 and index == 2 else loss), carried

exit_on_user_error(pretrain)(PretrainingArguments(
    output_dir=sys.argv[1], objective="clm_nan_on_process_1", train_file=sys.argv[2], tokenizer_name=sys.argv[3],
    embedding_size=16, hidden_size=24, block_size=16, per_device_train_batch_size=4, max_train_steps=6,
    ddp_timeout=120))
"""


def test_a_non_finite_loss_on_one_process_stops_every_process(corpus, tmp_path, monkeypatch):
    monkeypatch.setitem(ENV, "ACCELERATE_USE_CPU", "1")
    script = tmp_path / "nan_on_process_1.py"
    script.write_text(NAN_ON_PROCESS_1)
    command = [*two_process_launcher(), str(script), str(tmp_path / "out"), str(corpus / "train.txt"),
               str(corpus / "tokenizer")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=300, cwd=ROOT)
    assert result.returncode != 0
    message = "error: the training loss became non-finite at step 2 (process 1 of 2)"
    assert result.stderr.count(message) == 2, result.stderr[-3000:]  # the same clear line from both processes


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


def test_continued_pretraining_starts_from_the_checkpoint(corpus, tiny_checkpoint, tmp_path):
    """ULMFiT's second stage: `--model_name_or_path` continues a pretrained LM (its config and tokenizer, not the
    model flags) on new text, with discriminative rates and slanted triangular learning rates; split.json counts
    what the first stage trained on as seen too."""
    output = tmp_path / "out"
    args = ["--model_name_or_path", str(tiny_checkpoint), "--train_file", str(corpus / "train.txt"), "--max_train_samples",
            "6", "--max_train_steps", "3", "--output_dir", str(output), *TINY, "--learning_rate", "1e-4",
            "--discriminative_lr_decay", "2.6", "--lr_scheduler_type", "slanted_triangular"]  # fmt: skip
    result = run_pretrain(args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"continuing from {tiny_checkpoint}" in result.stdout
    before, after = weights(tiny_checkpoint), weights(output)
    assert before.keys() == after.keys()  # the checkpoint's shapes (hidden 32), not --hidden_size 24
    differences = [float((before[name] - after[name]).abs().max()) for name in before]
    assert 0 < max(differences) < 0.05  # a few small steps away from the pretrained weights
    assert json.loads((output / "config.json").read_text())["hidden_size"] == 32
    first, second = DocumentSplit.load(tiny_checkpoint), DocumentSplit.load(output)
    assert set(first.trained_on) < set(second.trained_on) and str(tiny_checkpoint) in second.source
    assert f"`{tiny_checkpoint}`" in (output / "README.md").read_text()
    refused = run_pretrain([*args[:2], "--objective", "mlm", "--output_dir", str(tmp_path / "mlm"), *TINY])
    assert refused.returncode == 2 and "needs a bidirectional model" in refused.stderr


def test_discriminative_rates_per_layer_group():
    from rnn_hf import RnnConfig, RnnForCausalLM
    from rnn_hf.training import PretrainingArguments
    from rnn_hf.training.pretraining import optimizer_groups

    model = RnnForCausalLM(RnnConfig(vocab_size=50, embedding_size=8, hidden_size=12, num_layers=2))
    args = PretrainingArguments(output_dir="unused", learning_rate=1e-2, discriminative_lr_decay=2.0)
    groups = optimizer_groups(model, args)
    rates = sorted({group["lr"] for group in groups}, reverse=True)
    assert rates == [1e-2, 5e-3, 2.5e-3, 1.25e-3]  # head, top layer, bottom layer, embeddings
    (embedding_group,) = [g for g in groups if any(p is model.rnn.embeddings.weight for p in g["params"])]
    assert embedding_group["lr"] == 1.25e-3 and embedding_group["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    from rnn_hf.training.cli import UserError

    with pytest.raises(UserError, match="brings its own tokenizer and config: drop --tokenizer_name"):
        PretrainingArguments(output_dir="unused", model_name_or_path="runs/lm", tokenizer_name="runs/tok")


def test_bag_of_words_targets_weigh_a_documents_words_by_tfidf(corpus, tmp_path):
    """Each document's target: sublinear TF-IDF over the vocabulary (special tokens never), summing to one; a
    held-out set with no words is refused before training starts."""
    from accelerate import Accelerator
    from datasets import Dataset
    from transformers import AutoTokenizer

    from rnn_hf.training import PretrainingArguments
    from rnn_hf.training.pretraining import OBJECTIVES

    tokenizer = AutoTokenizer.from_pretrained(corpus / "tokenizer")
    eos, a, b, c = tokenizer.eos_token_id, 10, 11, 12
    args = PretrainingArguments(
        output_dir=str(tmp_path), objective="bag_of_words", per_device_train_batch_size=2
    )
    objective = OBJECTIVES["bag_of_words"](args, tokenizer, Accelerator(cpu=True))
    train = Dataset.from_dict({"input_ids": [[a, a, a, a, b, eos], [a, c, eos], [eos]]})
    objective.prepare(train, Dataset.from_dict({"input_ids": [[b, c, eos]]}))
    assert len(objective.train_docs) == 2  # the document with no words is left out
    # idf as scikit-learn smooths it: ln((1 + n) / (1 + df)) + 1, over the 2 documents with words
    assert objective.idf[a].item() == pytest.approx(1.0) and objective.idf[b].item() == pytest.approx(
        torch.log(torch.tensor(1.5)).item() + 1
    )
    target = objective.targets([objective.train_docs[0]])[0]
    weight_a, weight_b = (
        1 + torch.log(torch.tensor(4.0)).item(),
        objective.idf[b].item(),
    )  # sublinear tf x idf
    assert target[a].item() == pytest.approx(weight_a / (weight_a + weight_b))
    assert target.sum().item() == pytest.approx(1.0) and target[eos] == 0 and (target > 0).sum() == 2
    with pytest.raises(ValueError, match="no words"):
        objective.prepare(train, Dataset.from_dict({"input_ids": [[eos]]}))


def test_bag_of_words_reads_first_or_random_windows(corpus, tmp_path):
    """`document_window`: the first `block_size` tokens, or a training window drawn from (seed, epoch, batch):
    the same draw again for the same batch (what an exact resume needs), other windows in other epochs, every one
    a contiguous stretch of its document; a shorter document is read whole; held-out documents always from their
    start. Other objectives refuse the flag."""
    from accelerate import Accelerator
    from transformers import AutoTokenizer

    from rnn_hf.training import PretrainingArguments
    from rnn_hf.training.cli import UserError
    from rnn_hf.training.pretraining import OBJECTIVES

    tokenizer = AutoTokenizer.from_pretrained(corpus / "tokenizer")
    long, short = torch.arange(10, 20), torch.tensor([30, 31])

    def objective(window: str):
        args = PretrainingArguments(output_dir=str(tmp_path), objective="bag_of_words", block_size=3,
                                    document_window=window)  # fmt: skip
        return OBJECTIVES["bag_of_words"](args, tokenizer, Accelerator(cpu=True))

    assert [w.tolist() for w in objective("first").windows([long, short], 0, 0)] == [[10, 11, 12], [30, 31]]
    random = objective("random")
    starts = set()
    for epoch in range(20):
        window, whole = random.windows([long, short], epoch, 1)
        assert torch.equal(whole, short) and len(window) == 3
        assert window.tolist() == list(range(int(window[0]), int(window[0]) + 3))
        assert torch.equal(window, random.windows([long, short], epoch, 1)[0])
        starts.add(int(window[0]))
    assert len(starts) >= 4 and starts <= set(range(10, 18))
    # held-out documents (no epoch and batch) are always read from their first token
    assert [w.tolist() for w in random.windows([long, short])] == [[10, 11, 12], [30, 31]]
    with pytest.raises(UserError, match="--document_window is for --objective bag_of_words"):
        PretrainingArguments(output_dir="unused", objective="clm", document_window="random")
