"""rnn_hf.training.ulmfit: layer groups, discriminative learning rates, slanted triangular schedule, gradual
unfreezing and early stopping, each on a tiny classifier or inside the real `Trainer`."""

import pytest
import torch
from transformers import TrainerControl, TrainerState, TrainingArguments

from rnn_hf import RnnConfig, RnnForSequenceClassification
from rnn_hf.training.ulmfit import (
    EarlyStoppingAfterUnfreezing,
    GradualUnfreezing,
    discriminative_param_groups,
    layer_groups,
    slanted_triangular_schedule,
)

# ----------------------------------------------------------------------------------------------------------------
# The ULMFiT pieces


def tiny_classifier(num_layers: int = 3) -> RnnForSequenceClassification:
    config = RnnConfig(vocab_size=50, embedding_size=8, hidden_size=8, num_layers=num_layers, num_labels=3)
    return RnnForSequenceClassification(config)


def test_layer_groups_cover_every_parameter_once_top_to_bottom():
    model = tiny_classifier()
    groups = layer_groups(model)
    assert [name for name, _ in groups] == ["head", "rnn_layer_2", "rnn_layer_1", "rnn_layer_0", "embeddings"]
    grouped = [id(param) for _, params in groups for param in params]
    assert sorted(grouped) == sorted(id(param) for param in model.parameters())
    assert groups[0][1] == list(model.classifier.parameters())
    assert groups[-1][1] == [model.rnn.embeddings.weight]


def test_discriminative_learning_rates_decay_by_2_6_per_group():
    groups = layer_groups(tiny_classifier())
    optimizer = torch.optim.AdamW(discriminative_param_groups(groups, lr=1e-2, decay=2.6, weight_decay=0.01))
    rates = [group["lr"] for group in optimizer.param_groups]
    assert rates == pytest.approx([1e-2, 1e-2 / 2.6, 1e-2 / 2.6**2, 1e-2 / 2.6**3, 1e-2 / 2.6**4])
    assert [group["name"] for group in optimizer.param_groups][0] == "head"
    flat = discriminative_param_groups(groups, lr=1e-2, decay=1.0, weight_decay=0.0)
    assert {group["lr"] for group in flat} == {1e-2}


def test_slanted_triangular_schedule_rises_over_the_first_tenth_then_decays():
    groups = layer_groups(tiny_classifier())
    optimizer = torch.optim.AdamW(discriminative_param_groups(groups, lr=1e-2, decay=2.6, weight_decay=0.0))
    scheduler = slanted_triangular_schedule(optimizer, num_training_steps=100)
    head_rates, embedding_rates = [], []
    for _ in range(101):
        head_rates.append(optimizer.param_groups[0]["lr"])
        embedding_rates.append(optimizer.param_groups[-1]["lr"])
        optimizer.step()
        scheduler.step()
    assert head_rates[0] == pytest.approx(1e-2 / 32) and head_rates[10] == pytest.approx(1e-2)
    assert head_rates[100] == pytest.approx(1e-2 / 32)
    assert all(a < b for a, b in zip(head_rates[:10], head_rates[1:11], strict=True))
    assert all(a > b for a, b in zip(head_rates[10:100], head_rates[11:101], strict=True))
    assert max(embedding_rates) == pytest.approx(1e-2 / 2.6**4)  # each group keeps its own peak


def test_gradual_unfreezing_thaws_one_group_per_epoch_from_the_top():
    model = tiny_classifier(num_layers=2)
    groups = layer_groups(model)
    callback = GradualUnfreezing(groups)

    def trainable_groups(epoch: float) -> list[str]:
        callback.on_epoch_begin(None, TrainerState(epoch=epoch), TrainerControl())
        return [name for name, params in groups if all(p.requires_grad for p in params)]

    assert trainable_groups(0.0) == ["head"]
    assert trainable_groups(0.9999999) == ["head", "rnn_layer_1"]  # float drift at the end of epoch 1
    assert trainable_groups(2.0) == ["head", "rnn_layer_1", "rnn_layer_0"]
    assert trainable_groups(3.0) == ["head", "rnn_layer_1", "rnn_layer_0", "embeddings"]
    assert trainable_groups(7.0) == ["head", "rnn_layer_1", "rnn_layer_0", "embeddings"]
    trainable_groups(0.0)
    callback.on_train_end(None, TrainerState(), TrainerControl())
    assert all(param.requires_grad for param in model.parameters())


def test_early_stopping_patience_starts_once_every_group_trains(tmp_path):
    args = TrainingArguments(
        output_dir=str(tmp_path),
        metric_for_best_model="selection_score",
        greater_is_better=True,
        report_to=[],
    )
    callback = EarlyStoppingAfterUnfreezing(early_stopping_patience=2, start_epoch=3)
    state, control = TrainerState(best_metric=0.9), TrainerControl()
    for epoch in (1.0, 2.0, 3.0):  # no improvement, but the network was still partly frozen until epoch 3
        state.epoch = epoch
        callback.on_evaluate(args, state, control, metrics={"eval_selection_score": 0.5})
    assert not control.should_training_stop
    state.epoch = 4.0
    callback.on_evaluate(args, state, control, metrics={"eval_selection_score": 0.5})
    assert control.should_training_stop
