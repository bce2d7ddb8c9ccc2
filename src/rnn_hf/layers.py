"""Building blocks more than one model family shares: sequence pooling, ULMFiT's classification head, attention over
encoder outputs, and the bridge from an encoder's final state to a decoder's initial state."""

import torch
from torch import nn

from .recurrent import PresentTokens, RnnCache

POOLING_TYPES = ("last", "mean", "max", "concat")


def pool_sequence(
    hidden_states: torch.Tensor,  # (B, T, D*H)
    attention_mask: torch.Tensor | None,  # (B, T): 1 present, 0 absent
    pooling: str,
    bidirectional: bool,
) -> torch.Tensor:
    """Pool over present positions only: `last` (for a bidirectional model, the backward half at the first present
    position), `mean`, `max` or `concat` (ULMFiT: last, max and mean side by side)."""
    batch_size, seq_len, width = hidden_states.shape
    rows = torch.arange(batch_size, device=hidden_states.device)
    layout = PresentTokens.from_mask(attention_mask, seq_len)
    if layout is None:
        first = torch.zeros(batch_size, dtype=torch.long, device=hidden_states.device)
        last = torch.full_like(first, seq_len - 1)
        lengths = torch.full_like(first, seq_len)
        mask = torch.ones(batch_size, seq_len, 1, dtype=torch.bool, device=hidden_states.device)
    else:
        first, last, lengths = layout.first, layout.last, layout.lengths
        mask = layout.mask[:, :, None]  # (B, T, 1)
    last_pool = hidden_states[rows, last]  # (B, D*H)
    if bidirectional:  # the backward direction has read the whole row at its first present position
        last_pool = torch.cat([last_pool[:, : width // 2], hidden_states[rows, first, width // 2 :]], dim=-1)
    if pooling == "last":
        return last_pool
    mean_pool = (hidden_states * mask).sum(1) / lengths[:, None].to(hidden_states.dtype)  # (B, D*H)
    if pooling == "mean":
        return mean_pool
    max_pool = hidden_states.masked_fill(~mask, torch.finfo(hidden_states.dtype).min).amax(1)  # (B, D*H)
    if pooling == "max":
        return max_pool
    return torch.cat([last_pool, max_pool, mean_pool], dim=-1)  # (B, 3*D*H)


class DecodingLinear(nn.Linear):
    """`nn.Linear` that, in inference on a CPU without autograd, multiplies by a transposed, row-major copy of its
    weight: for the few rows of a decoding step, reading an `(in, out)` matrix is ~3x faster than `nn.Linear`'s
    `(out, in)` one (an 8000-word output layer: `benchmarks/bench_decode_layout.py`). The copy is rebuilt whenever the weight
    changes (a tied embedding's optimizer step included) and dropped when the module trains again. The parameters
    and their names are `nn.Linear`'s, so weights load and tie as usual."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self._transposed: tuple | None = None  # (key, weight.T contiguous); not saved

    def train(self, mode: bool = True) -> "DecodingLinear":
        self._transposed = None
        return super().train(mode)

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        if self.training or torch.is_grad_enabled() or input.device.type != "cpu":
            return super().forward(input)
        key = (self.weight.data_ptr(), self.weight._version)
        if self._transposed is None or self._transposed[0] != key:
            self._transposed = (key, self.weight.detach().t().contiguous())  # (in, out)
        rows = input.reshape(-1, self.in_features)
        if self.bias is None:
            output = rows @ self._transposed[1]
        else:
            output = torch.addmm(self.bias, rows, self._transposed[1])
        return output.view(*input.shape[:-1], self.out_features)


class BatchNormOrRunning(nn.BatchNorm1d):
    """`BatchNorm1d` that normalizes a training batch of one row with its running statistics instead of failing
    (a batch of one has no spread to measure): the last batch of an epoch may hold a single document."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # (B, C)
        if self.training and input.size(0) == 1:
            return nn.functional.batch_norm(
                input, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(input)


class RnnClassificationHead(nn.Module):
    """ULMFiT's classifier on pooled features: norm -> dropout -> linear -> ReLU -> norm -> dropout -> linear.

    The normalization puts the pooled features on one scale, so that a few labeled examples train the head quickly.
    `norm="batch"` is ULMFiT's: per feature, which matters for concat pooling, whose last, max and mean parts differ
    in scale feature by feature. `norm="layer"` normalizes each example on its own: the same in training and
    inference, but the scales stay unequal.
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_labels: int, dropout: float, norm: str = "layer"
    ):
        super().__init__()
        norm_class = BatchNormOrRunning if norm == "batch" else nn.LayerNorm
        self.input_norm = norm_class(input_size)
        self.dense = nn.Linear(input_size, hidden_size)
        self.hidden_norm = norm_class(hidden_size)
        self.out_proj = nn.Linear(hidden_size, num_labels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:  # (B, P) -> (B, num_labels)
        hidden = nn.functional.relu(self.dense(self.dropout(self.input_norm(pooled))))  # (B, hidden_size)
        return self.out_proj(self.dropout(self.hidden_norm(hidden)))


class RnnAttention(nn.Module):
    """Attention of decoder states over encoder outputs: Luong's `"dot"` and `"general"` scores or Bahdanau's
    `"additive"` one, a softmax over the present source positions, and the weighted sum of the encoder outputs.

    Args:
        query_size (`int`): Width of the decoder states.
        key_size (`int`): Width of the encoder outputs.
        attention_type (`str`): `"dot"`, `"general"` or `"additive"`.
        attention_size (`int`, *optional*): Width of the additive score's hidden layer.
    """

    def __init__(
        self, query_size: int, key_size: int, attention_type: str, attention_size: int | None = None
    ):
        super().__init__()
        self.attention_type = attention_type
        if attention_type == "dot":
            if query_size != key_size:
                raise ValueError(f"Dot attention needs equal widths, got {query_size} and {key_size}.")
        elif attention_type == "general":
            self.query_projection = nn.Linear(query_size, key_size, bias=False)
        elif attention_type == "additive":
            attention_size = attention_size or query_size
            self.query_projection = nn.Linear(query_size, attention_size, bias=False)
            self.key_projection = nn.Linear(key_size, attention_size)
            self.score = nn.Linear(attention_size, 1, bias=False)
        else:
            raise ValueError(
                f"`attention_type` must be 'dot', 'general' or 'additive', got {attention_type!r}."
            )

    def prepare_keys(self, keys: torch.Tensor) -> torch.Tensor | None:
        """What every decoding step reuses: the additive score's projection of the encoder outputs (B, S, A)."""
        return self.key_projection(keys) if self.attention_type == "additive" else None

    def forward(
        self,
        queries: torch.Tensor,  # (B, T, Q)
        keys: torch.Tensor,  # (B, S, K)
        mask: torch.Tensor | None,  # (B, S) bool: True where the source position is present
        prepared_keys: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the contexts (B, T, K) and the attention weights (B, T, S)."""
        if self.attention_type == "additive":
            prepared_keys = prepared_keys if prepared_keys is not None else self.prepare_keys(keys)
            hidden = torch.tanh(
                self.query_projection(queries)[:, :, None] + prepared_keys[:, None]
            )  # (B, T, S, A)
            scores = self.score(hidden).squeeze(-1)  # (B, T, S)
        else:
            projected = (
                queries if self.attention_type == "dot" else self.query_projection(queries)
            )  # (B, T, K)
            scores = projected @ keys.transpose(1, 2)  # (B, T, S)
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, :], torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)  # (B, T, S)
        return weights @ keys, weights


class StateBridge(nn.Module):
    """An encoder's final state -> a decoder's initial state (OpenNMT's bridge).

    Decoder layer `i` starts from encoder layer `i` (the encoder's top layer when the decoder is deeper); each state
    tensor's directions go side by side through a linear map to the decoder's width, with tanh for h (the cell state
    of an LSTM is unbounded). A GRU encoder's h also starts an LSTM decoder's cell state.

    Args:
        encoder_size (`int`): The encoder's `num_directions * hidden_size`.
        decoder_hidden_size (`int`): The decoder's `hidden_size`.
        decoder_states_per_layer (`int`): 2 for an LSTM decoder, 1 for a GRU.
    """

    def __init__(self, encoder_size: int, decoder_hidden_size: int, decoder_states_per_layer: int):
        super().__init__()
        self.projections = nn.ModuleList(
            nn.Linear(encoder_size, decoder_hidden_size) for _ in range(decoder_states_per_layer)
        )

    def forward(self, encoder_cache: RnnCache, decoder_num_layers: int) -> RnnCache:
        encoder_states = encoder_cache.layer_states
        if any(state is None for state in encoder_states):
            raise ValueError("`StateBridge` needs an encoder cache that holds a state for every layer.")
        decoder_cache = RnnCache(decoder_num_layers, len(self.projections))
        for layer_idx in range(decoder_num_layers):
            source = encoder_states[min(layer_idx, len(encoder_states) - 1)]
            state = []
            for state_idx, projection in enumerate(self.projections):
                tensor = source[min(state_idx, len(source) - 1)]  # (B, D, H)
                tensor = projection(tensor.reshape(tensor.size(0), -1))  # (B, decoder_hidden_size)
                state.append((torch.tanh(tensor) if state_idx == 0 else tensor)[:, None])  # (B, 1, H)
            decoder_cache.update_layer_state(layer_idx, tuple(state))
        return decoder_cache


__all__ = [
    "BatchNormOrRunning",
    "RnnAttention",
    "DecodingLinear",
    "POOLING_TYPES",
    "RnnClassificationHead",
    "StateBridge",
    "pool_sequence",
]
