"""Shared building blocks: pooling over present positions, the state bridge from an encoder to a decoder."""

import pytest
import torch

from rnn_hf.layers import DecodingLinear, StateBridge, pool_sequence
from rnn_hf.recurrent import RecurrentStack, RnnCache


def test_pooling_reads_present_positions_only():
    hidden = torch.arange(2 * 5 * 4, dtype=torch.float).view(2, 5, 4)  # (B, T, D*H), D = 2
    mask = torch.tensor([[1, 0, 1, 1, 0], [0, 1, 0, 0, 1]])
    present = hidden * mask[:, :, None]
    last = pool_sequence(present, mask, "last", bidirectional=True)
    assert (
        last[0].tolist() == hidden[0, 3, :2].tolist() + hidden[0, 0, 2:].tolist()
    )  # forward last, backward first
    assert last[1].tolist() == hidden[1, 4, :2].tolist() + hidden[1, 1, 2:].tolist()
    torch.testing.assert_close(
        pool_sequence(present, mask, "mean", False)[1], (hidden[1, 1] + hidden[1, 4]) / 2
    )
    torch.testing.assert_close(pool_sequence(present, mask, "max", False)[0], hidden[0, 3])
    assert pool_sequence(present, mask, "concat", False).shape == (2, 12)


@pytest.mark.parametrize("encoder_cell, decoder_cell", [("gru", "lstm"), ("lstm", "lstm"), ("lstm", "gru")])
def test_state_bridge_starts_a_decoder_from_a_bidirectional_encoder(encoder_cell, decoder_cell):
    torch.manual_seed(0)
    encoder = RecurrentStack(
        input_size=6, hidden_size=5, num_layers=2, cell_type=encoder_cell, bidirectional=True
    )
    decoder = RecurrentStack(input_size=3, hidden_size=7, num_layers=3, cell_type=decoder_cell)
    bridge = StateBridge(encoder.output_size, decoder.hidden_size, decoder.states_per_layer)
    _, _, encoder_cache = encoder(torch.randn(4, 9, 6))
    decoder_cache = bridge(encoder_cache, decoder.num_layers)
    assert isinstance(decoder_cache, RnnCache) and len(decoder_cache) == 3
    for state in decoder_cache.layer_states:
        assert len(state) == decoder.states_per_layer and state[0].shape == (4, 1, 7)
        assert float(state[0].detach().abs().max()) <= 1.0  # h through tanh
    # the decoder runs from the bridged state, and the bridge learns through it
    outputs, _, _ = decoder(torch.randn(4, 2, 3), cache=decoder_cache)
    outputs.sum().backward()
    assert bridge.projections[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"needs an encoder cache that holds a state for every layer"):
        bridge(RnnCache(2, 1), 3)


def test_decoding_linear_equals_linear_and_follows_its_weight():
    torch.manual_seed(0)
    linear = DecodingLinear(6, 40).eval()
    reference = torch.nn.Linear(6, 40).eval()
    reference.load_state_dict(linear.state_dict())  # the same parameter names as nn.Linear
    inputs = torch.randn(3, 2, 6)
    with torch.no_grad():
        torch.testing.assert_close(linear(inputs), reference(inputs))
        assert linear._transposed is not None  # the decoding path ran
        linear.weight.mul_(2.0)  # an optimizer step or a tied embedding's update, in place
        reference.weight.mul_(2.0)
        torch.testing.assert_close(linear(inputs), reference(inputs))
    assert linear(inputs).requires_grad  # with autograd: nn.Linear's own path, gradients flow
    linear.train()
    assert linear._transposed is None
    no_bias = DecodingLinear(6, 5, bias=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(no_bias(inputs), inputs @ no_bias.weight.T)
