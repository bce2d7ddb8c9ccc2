"""The ULMFiT classifier fine-tuning recipe (Howard & Ruder, 2018) as `Trainer` pieces.

- `layer_groups`: the classifier's parameters, top to bottom: head, last recurrent layer, ..., embeddings.
- `discriminative_param_groups`: one optimizer group per layer group, group k (from the top) at lr / decay**k.
- `slanted_triangular_schedule`: a short linear warm-up then a long linear decay, as a `LambdaLR`.
- `GradualUnfreezing`: epoch 1 trains the head only, each later epoch unfreezes the next group down.
- `EarlyStoppingAfterUnfreezing`: `EarlyStoppingCallback` whose patience starts once every group trains.
- `PretrainedRateMixin` (`PretrainedRateTrainer`): a `Trainer` whose pretrained weights learn at a fraction of the
  rate, for models whose pretrained part is not layer groups (a series backbone, an LM-initialized seq2seq model).

Pass the optimizer and schedule to `Trainer(optimizers=(optimizer, scheduler))` and the callbacks to
`Trainer(callbacks=[...])`; `scripts/finetune.py` shows the whole recipe.
"""

import math

from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback

LayerGroups = list[tuple[str, list[nn.Parameter]]]


def layer_groups(model: nn.Module) -> LayerGroups:
    """`(name, parameters)` of an rnn_hf classifier, top to bottom: `head`, `rnn_layer_{L-1}`, ..., `embeddings`.

    The head is every parameter outside the backbone's embeddings and recurrent layers (the classifier linear).
    """
    backbone = model.base_model  # RnnModel: `.embeddings` and `.recurrent.layers`
    recurrent_layers = list(backbone.recurrent.layers)
    bottom_up = [("embeddings", list(backbone.embeddings.parameters()))]
    bottom_up += [
        (f"rnn_layer_{index}", list(layer.parameters())) for index, layer in enumerate(recurrent_layers)
    ]
    in_backbone_groups = {id(param) for _, params in bottom_up for param in params}
    head = [param for param in model.parameters() if id(param) not in in_backbone_groups]
    return [("head", head)] + bottom_up[::-1]


def discriminative_param_groups(
    groups: LayerGroups, lr: float, decay: float, weight_decay: float
) -> list[dict]:
    """Optimizer param groups, top to bottom: the head at `lr`, the group k below it at `lr / decay**k`.

    ULMFiT's decay is 2.6; 1.0 gives every group the same rate. The head comes first, so the learning rate that
    `Trainer` logs (the first group's) is the head's.
    """
    return [
        {"params": params, "lr": lr / decay**depth, "weight_decay": weight_decay, "name": name}
        for depth, (name, params) in enumerate(groups)
    ]


def slanted_triangular_schedule(
    optimizer: Optimizer, num_training_steps: int, cut_frac: float = 0.1, ratio: float = 32.0
) -> LambdaLR:
    """Slanted triangular learning rates: from lr/ratio up to lr over the first `cut_frac` of the steps, then
    linearly back down to lr/ratio at the last step. Each param group keeps its own (discriminative) peak."""
    cut = max(1, math.floor(num_training_steps * cut_frac))
    decay_steps = max(1, num_training_steps - cut)

    def multiplier(step: int) -> float:
        if step < cut:
            progress = step / cut
        else:
            progress = max(0.0, 1.0 - (step - cut) / decay_steps)
        return (1.0 + progress * (ratio - 1.0)) / ratio

    return LambdaLR(optimizer, multiplier)


def set_trainable_groups(groups: LayerGroups, num_trainable: int) -> None:
    """Let the top `num_trainable` groups train (`requires_grad=True`) and freeze every group below them."""
    for depth, (_, params) in enumerate(groups):
        for param in params:
            param.requires_grad_(depth < num_trainable)


class GradualUnfreezing(TrainerCallback):
    """Epoch 1 trains the top group (the head), epoch 2 the top two, ...: one more group down per epoch.

    Frozen parameters get no gradient, so AdamW leaves them (and their weight decay) alone until they thaw.
    """

    def __init__(self, groups: LayerGroups):
        self.groups = groups

    def on_epoch_begin(self, args, state, control, **kwargs):
        epochs_done = round(state.epoch or 0)  # `state.epoch` is a float: whole at an epoch's start
        set_trainable_groups(self.groups, epochs_done + 1)

    def on_train_end(self, args, state, control, **kwargs):
        set_trainable_groups(self.groups, len(self.groups))


class EarlyStoppingAfterUnfreezing(EarlyStoppingCallback):
    """`EarlyStoppingCallback` that starts counting its patience at epoch `start_epoch` (1-based).

    While gradual unfreezing still holds layers frozen, a flat validation score says little about the model
    that the unfrozen network will become; stopping then would cut fine-tuning before it has started.
    """

    def __init__(self, early_stopping_patience: int, start_epoch: int = 1):
        super().__init__(early_stopping_patience=early_stopping_patience)
        self.start_epoch = start_epoch

    def on_evaluate(self, args, state, control, metrics, **kwargs):
        metric = args.metric_for_best_model
        if f"eval_{metric.removeprefix('eval_')}" not in metrics:  # e.g. a final `evaluate(test_set, "test")`
            return
        if round(state.epoch or 0) < self.start_epoch:
            return
        super().on_evaluate(args, state, control, metrics, **kwargs)


class PretrainedRateMixin:
    """For a `Trainer` subclass: the optimizer moves the `pretrained` parameters at `pretrained_lr_ratio` times the
    learning rate (each of `Trainer`'s default groups, with and without weight decay, is split in two; `--optim`
    and the schedule apply unchanged)."""

    def __init__(self, *args, pretrained: list[nn.Parameter], pretrained_lr_ratio: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.pretrained_ids, self.pretrained_lr_ratio = {id(p) for p in pretrained}, pretrained_lr_ratio

    def create_optimizer(self, model=None):
        fresh = self.optimizer is None
        optimizer = super().create_optimizer(model)
        if fresh:
            groups, optimizer.param_groups = optimizer.param_groups, []
            for group in groups:
                for pretrained in (False, True):
                    params = [p for p in group["params"] if (id(p) in self.pretrained_ids) == pretrained]
                    if params:
                        scale = self.pretrained_lr_ratio if pretrained else 1.0
                        optimizer.add_param_group({**group, "params": params, "lr": group["lr"] * scale})
        return optimizer


class PretrainedRateTrainer(PretrainedRateMixin, Trainer):
    """`Trainer` whose `pretrained` parameters learn at `pretrained_lr_ratio` times the rate."""
