#!/usr/bin/env python
"""Fine-tune a pretrained rnn_hf model with few labels: ULMFiT on `Trainer` (classification, multi-label,
regression, token classification).

    python scripts/finetune.py --model_name_or_path runs/clm --num_labeled_per_class 10 --output_dir runs/clf
    python scripts/finetune.py --model_name_or_path runs/clm --from_scratch ...   # the baseline: no pretraining
    python scripts/finetune.py --model_name_or_path runs/clm --task regression --train_file docs.csv \\
        --test_file held_out.csv --label_column score --num_labeled 200 --output_dir runs/reg

A thin wrapper around `rnn_hf.training.finetune`: the flags are its dataclasses (`ModelArguments`,
`DataArguments`, `UlmfitRecipe`) and every `TrainingArguments` flag (`--report_to`, `--bf16`, `--push_to_hub`,
`--hub_model_id`, ...). `--learning_rate` and `--num_train_epochs` default to the recipe's choices. The test
documents are never trained on nor used to pick a model, and never ones pretraining saw (`split.json`).
"""

import shlex
import sys
from dataclasses import dataclass, field

import datasets
import transformers
from transformers import HfArgumentParser, TrainingArguments

from rnn_hf.training import exit_on_user_error, parse_flags
from rnn_hf.training.finetuning import (
    RECIPE_TRAINING_DEFAULTS,
    DataArguments,
    ModelArguments,
    UlmfitRecipe,
    finetune,
)


@dataclass
class ScriptArguments:
    quiet: bool = field(
        default=False, metadata={"help": "no progress bar or logs, not even the summary line"}
    )


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = HfArgumentParser((ModelArguments, DataArguments, UlmfitRecipe, TrainingArguments, ScriptArguments),
                              description=__doc__.splitlines()[0])  # fmt: skip
    parser.set_defaults(**RECIPE_TRAINING_DEFAULTS)
    model_args, data_args, recipe, training_args, script_args = parse_flags(parser, argv)
    training_args.data_seed = (
        training_args.data_seed if training_args.data_seed is not None else training_args.seed
    )
    datasets.disable_progress_bars()  # map/filter bars on a few documents are noise
    transformers.utils.logging.disable_progress_bar()
    if script_args.quiet:
        transformers.logging.set_verbosity_error()
        training_args.disable_tqdm, training_args.log_level = True, "error"
    return finetune(model_args, data_args, training_args, recipe,
                    command="python scripts/finetune.py " + shlex.join(argv))  # fmt: skip


if __name__ == "__main__":
    main()
