#!/usr/bin/env python
"""Self-supervised pretraining of an LSTM/GRU on unlabeled text: causal LM (`--objective clm`) or masked LM (`mlm`).

A thin wrapper around `rnn_hf.training.pretrain` (flags: `rnn_hf.training.PretrainingArguments`). Runs unchanged
on one CPU, one GPU, or many processes:

    python scripts/pretrain.py --objective clm --output_dir runs/clm --max_train_steps 200
    accelerate launch --num_processes 2 scripts/pretrain.py --objective mlm --output_dir runs/mlm

With no data argument it pretrains on the training documents of BBC News (the test documents are never seen);
`split.json` in the output records which documents it trained on, and fine-tuning refuses to test on them.
"""

import shlex
import sys

from transformers import HfArgumentParser

from rnn_hf.training import PretrainingArguments, exit_on_user_error, parse_flags, pretrain


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = HfArgumentParser(PretrainingArguments, description=__doc__.splitlines()[0])
    (args,) = parse_flags(parser, argv)
    return pretrain(args, command="python scripts/pretrain.py " + shlex.join(argv))


if __name__ == "__main__":
    main()
