"""The recurrent core on its own: built from explicit sizes (no RnnConfig), on continuous inputs."""

import copy

import pytest
import torch
from torch.func import functional_call
from transformers.cache_utils import Cache

from rnn_hf.recurrent import PresentTokens, RecurrentStack, RnnCache

CELLS = ["lstm", "gru"]


def stack(cell_type="lstm", bidirectional=False, seed=0, **kwargs) -> RecurrentStack:
    torch.manual_seed(seed)
    # a forecaster's input: a value, two lags and two covariates per step, not token embeddings
    return RecurrentStack(
        input_size=5, hidden_size=8, num_layers=2, cell_type=cell_type, bidirectional=bidirectional, **kwargs
    ).eval()


def values(batch_size=3, seq_len=6, seed=1) -> torch.Tensor:
    return torch.randn(batch_size, seq_len, 5, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell_type", CELLS)
def test_stack_from_explicit_sizes_runs_on_continuous_inputs(cell_type, bidirectional):
    model = stack(cell_type, bidirectional)
    outputs, layer_outputs, cache = model(values(), output_hidden_states=True)
    width = 8 * (2 if bidirectional else 1)
    assert outputs.shape == (3, 6, width) and len(layer_outputs) == 2
    assert isinstance(cache, Cache) and isinstance(cache, RnnCache) and all(cache.is_linear)
    assert cache.get_seq_length() == 6
    assert all(len(state) == (2 if cell_type == "lstm" else 1) for state in cache.layer_states)
    assert cache.layer_states[0][0].shape == (3, 2 if bidirectional else 1, 8)  # (B, D, H)


def test_stack_rejects_bad_sizes_and_inputs():
    with pytest.raises(ValueError, match=r"`hidden_size` must be a positive integer"):
        RecurrentStack(input_size=4, hidden_size=0)
    with pytest.raises(ValueError, match=r"`cell_type` must be one of"):
        RecurrentStack(input_size=4, hidden_size=4, cell_type="rnn")
    with pytest.raises(ValueError, match=r"expects inputs of shape \(batch_size, sequence_length, 5\)"):
        stack()(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"`step` expects inputs of shape \(batch_size, 5\)"):
        stack().step(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match=r"`step` runs a unidirectional stack"):
        stack(bidirectional=True).step(torch.randn(2, 5))


@pytest.mark.parametrize("cell_type", CELLS)
def test_steps_equal_the_fused_sequence(cell_type):
    model = stack(cell_type)
    inputs = values()
    with torch.no_grad():
        expected, _, expected_cache = model(inputs)
        cache, outputs = None, []
        for t in range(inputs.size(1)):
            output, cache = model.step(inputs[:, t], cache)
            outputs.append(output)
    torch.testing.assert_close(torch.stack(outputs, dim=1), expected, atol=1e-6, rtol=1e-5)
    for got, want in zip(cache.layer_states, expected_cache.layer_states, strict=True):
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert cache.get_seq_length() == inputs.size(1)


@pytest.mark.parametrize("cell_type", CELLS)
def test_training_steps_draw_dropconnect_once_per_sequence(cell_type):
    """In training, every step of a sequence uses the same dropped weights (the plan), and gradients reach them."""
    model = stack(cell_type, weight_dropout=0.5).train()
    inputs = values()
    torch.manual_seed(3)
    plan = model.step_plan(inputs.size(0))
    dropped = plan.weights[0][1]
    assert float((dropped == 0).float().mean()) > 0.3  # DropConnect drew a mask
    cache, outputs = None, []
    for t in range(inputs.size(1)):
        output, cache = model.step(inputs[:, t], cache, plan)
        outputs.append(output)
    stepped = torch.stack(outputs, dim=1)
    # the fused kernel with the plan's dropped matrices, without dropout, gives the same outputs
    model.eval()
    weights = {f"layers.{i}.weight_hh_l0": plan.weights[i][1] for i in range(model.num_layers)}
    fused, _, _ = functional_call(model, weights, (inputs,))
    torch.testing.assert_close(stepped, fused, atol=1e-5, rtol=1e-5)
    stepped.sum().backward()
    assert model.layers[0].weight_hh_l0.grad is not None
    assert (
        float((model.layers[0].weight_hh_l0.grad == 0).float().mean()) > 0.3
    )  # dropped entries get no gradient


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell_type", CELLS)
def test_absent_positions_are_skipped_in_both_directions(cell_type, bidirectional):
    """A row with holes gives exactly the outputs and final state of the same row with the absent steps removed."""
    model = stack(cell_type, bidirectional)
    inputs = values(batch_size=2, seq_len=7)
    mask = torch.tensor([[1, 0, 1, 1, 0, 0, 1], [0, 1, 1, 0, 1, 1, 1]])
    with torch.no_grad():
        outputs, _, cache = model(inputs, attention_mask=mask)
        for row in range(2):
            present = mask[row].bool()
            alone, _, alone_cache = model(inputs[row, present][None])
            torch.testing.assert_close(outputs[row, present], alone[0], atol=1e-6, rtol=1e-5)
            assert torch.all(outputs[row, ~present] == 0)
            for got, want in zip(cache.layer_states[-1], alone_cache.layer_states[-1], strict=True):
                torch.testing.assert_close(got[row], want[0], atol=1e-6, rtol=1e-5)
        # without a final state to return, the unpacked path gives the same outputs
        unpacked, _, none = model(inputs, attention_mask=mask, need_final_state=False)
    assert none is None
    torch.testing.assert_close(unpacked, outputs, atol=1e-6, rtol=1e-5)


def test_a_cache_continues_through_holes():
    """The state passes over absent positions: a chunk whose first positions are absent continues the state."""
    model = stack("lstm")
    inputs = values(batch_size=1, seq_len=6)
    with torch.no_grad():
        full, _, _ = model(inputs)
        _, _, cache = model(inputs[:, :3])
        holes = torch.cat([torch.zeros(1, 2, 5), inputs[:, 3:]], dim=1)  # two absent steps, then the rest
        rest, _, _ = model(holes, attention_mask=torch.tensor([[0, 0, 1, 1, 1]]), cache=cache)
    torch.testing.assert_close(rest[:, 2:], full[:, 3:], atol=1e-6, rtol=1e-5)


def test_present_tokens_layout_and_errors():
    mask = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0]])
    layout = PresentTokens.from_mask(mask, 4)
    assert layout.lengths.tolist() == [3, 1]
    assert layout.first.tolist() == [0, 2] and layout.last.tolist() == [3, 2]
    hidden = torch.arange(8.0).view(2, 4, 1)
    assert layout.compact(hidden)[0, :3, 0].tolist() == [0.0, 2.0, 3.0]
    torch.testing.assert_close(layout.restore(layout.compact(hidden)), hidden * mask[:, :, None])
    assert PresentTokens.from_mask(torch.ones(2, 4), 4) is None
    with pytest.raises(ValueError, match=r"row 1 has no token"):
        PresentTokens.from_mask(torch.tensor([[1, 1], [0, 0]]), 2)
    with pytest.raises(ValueError, match=r"`attention_mask` must have shape \(batch_size, 3\)"):
        PresentTokens.from_mask(torch.ones(2, 1, 3), 3)


def test_cache_reorders_repeats_selects_and_detaches():
    model = stack("lstm")
    _, _, cache = model(values(batch_size=3).requires_grad_())
    h = cache.layer_states[1][0]
    detached = cache.detach()
    assert h.requires_grad and not detached.layer_states[1][0].requires_grad
    assert detached.get_seq_length() == cache.get_seq_length() == 6
    cache, h = detached, h.detach()
    reordered = copy.deepcopy(cache)
    reordered.reorder_cache(torch.tensor([2, 2, 0]))
    assert torch.equal(reordered.layer_states[1][0], h[[2, 2, 0]])
    repeated = copy.deepcopy(cache)
    repeated.batch_repeat_interleave(2)
    assert repeated.batch_size == 6 and torch.equal(
        repeated.layer_states[0][1][1], cache.layer_states[0][1][0]
    )
    selected = copy.deepcopy(cache)
    selected.batch_select_indices(torch.tensor([1]))
    assert selected.batch_size == 1
    assert not cache.is_croppable
    assert RnnCache(2, 1).detach().is_empty and RnnCache(2, 1).batch_size == -1  # nothing seen yet
    with pytest.raises(ValueError, match=r"holds 2 state tensor\(s\), got 1"):
        cache.update_layer_state(0, (h,))


def test_truncated_bptt_through_the_cache():
    """The state a chunk hands on stays in the graph until detached: the second chunk's loss reaches the first."""
    model = stack("gru").train()
    inputs = values(seq_len=8).requires_grad_()
    _, _, cache = model(inputs[:, :4])
    second, _, _ = model(inputs[:, 4:], cache=cache)
    second.sum().backward()
    assert inputs.grad[:, :4].abs().sum() > 0  # gradient flowed back through the carried state
    inputs.grad = None
    _, _, cache = model(inputs[:, :4])
    second, _, _ = model(inputs[:, 4:], cache=cache.detach())
    second.sum().backward()
    assert inputs.grad[:, :4].abs().sum() == 0


@pytest.mark.parametrize("batch_size", [1, 3])  # the two layouts of the copy
def test_inference_steps_follow_weight_changes(batch_size):
    """Steps without autograd run on a fused copy of the LSTM weights; it must follow every change of the weights."""
    model = stack("lstm")
    inputs = values(batch_size=batch_size, seq_len=1)
    with torch.no_grad():
        for change in (None, "in_place", "train_then_eval"):
            if change == "in_place":
                model.layers[1].weight_hh_l0.mul_(0.5)  # as an optimizer step or load_state_dict does
            elif change == "train_then_eval":
                model.train()
                assert not model._fused_weights  # training frees the copy
                model.eval()
            stepped, _ = model.step(inputs[:, 0])
            assert len(model._fused_weights) == 2  # one copy per layer
            sequence, _, _ = model(torch.cat([inputs, inputs], dim=1))  # the fused kernel, no copy involved
            torch.testing.assert_close(stepped, sequence[:, 0], atol=1e-6, rtol=1e-5)
