"""The training library: pretraining objectives behind one Accelerate loop, ULMFiT fine-tuning on `Trainer`,
label-efficiency studies. The scripts under `scripts/` only parse flags and call these."""

from .cli import UserError, check_rnn_checkpoint, exit_on_user_error, parse_flags
from .finetuning import (
    TASKS,
    DataArguments,
    FinetuningData,
    FinetuningTask,
    ModelArguments,
    UlmfitRecipe,
    finetune,
    load_finetuning_data,
)
from .pretraining import (
    OBJECTIVES,
    CausalLanguageModeling,
    MaskedLanguageModeling,
    PretrainingArguments,
    PretrainingObjective,
    pretrain,
    register_objective,
    training_loop,
)

__all__ = [
    "TASKS",
    "DataArguments",
    "FinetuningData",
    "FinetuningTask",
    "ModelArguments",
    "UlmfitRecipe",
    "finetune",
    "load_finetuning_data",
    "OBJECTIVES",
    "CausalLanguageModeling",
    "MaskedLanguageModeling",
    "PretrainingArguments",
    "PretrainingObjective",
    "UserError",
    "check_rnn_checkpoint",
    "exit_on_user_error",
    "parse_flags",
    "pretrain",
    "register_objective",
    "training_loop",
]
