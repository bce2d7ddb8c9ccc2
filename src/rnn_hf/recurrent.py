"""The recurrent core shared by every rnn_hf head: a stack of fused LSTM/GRU layers and its state, the cache.

Every layer is one `nn.LSTM`/`nn.GRU` call (cuDNN on a GPU, oneDNN on a CPU), never a Python loop over time.
Padding is handled here, once: a batch whose rows are left- or right-padded is re-aligned to start at column 0
and run as a packed sequence, so each row's outputs and final state are those of the row alone.
"""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .configuration_rnn import RnnConfig
from .regularization import LockedDropout, WeightDropout

LayerState = tuple[torch.Tensor, ...]  # LSTM: (h, c); GRU: (h,); each (num_directions, B, H)


class RnnCache:
    """The recurrent state of every layer after the tokens seen so far: the generation cache of rnn_hf models.

    Unlike an attention cache it does not grow: each layer holds `(h, c)` (LSTM) or `(h,)` (GRU), tensors of
    shape `(num_directions, batch_size, hidden_size)`. One forward pass consumes the cache it is given and returns
    a new one, so a long stream can be fed chunk by chunk (detach it between chunks for truncated BPTT).
    """

    is_compileable = False
    is_croppable = False

    def __init__(self, layer_states: list[LayerState], seen_tokens: int = 0):
        self.layer_states = list(layer_states)
        self.seen_tokens = seen_tokens

    @property
    def is_linear(self) -> list[bool]:
        # transformers' generate asks this of every cache: a recurrent state is a "linear" (constant-size) layer.
        return [True] * len(self.layer_states)

    def __len__(self) -> int:
        return len(self.layer_states)

    @property
    def batch_size(self) -> int:
        return self.layer_states[0][0].size(1)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Number of positions (padding included) consumed so far."""
        return self.seen_tokens

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Select (and repeat) batch rows in place: beam search calls this after every step."""
        self.layer_states = [
            tuple(state.index_select(1, beam_idx.to(state.device)) for state in layer)
            for layer in self.layer_states
        ]

    def detach(self) -> "RnnCache":
        """The same state cut from the autograd graph: truncated back-propagation through time."""
        return RnnCache([tuple(s.detach() for s in layer) for layer in self.layer_states], self.seen_tokens)

    def to(self, *args, **kwargs) -> "RnnCache":
        self.layer_states = [tuple(s.to(*args, **kwargs) for s in layer) for layer in self.layer_states]
        return self

    def __repr__(self) -> str:
        shapes = [tuple(s.shape) for s in self.layer_states[0]] if self.layer_states else []
        return (
            f"RnnCache(num_layers={len(self)}, seen_tokens={self.seen_tokens}, layer_state_shapes={shapes})"
        )


def padding_layout(
    attention_mask: torch.Tensor | None, seq_len: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """`(starts, lengths)` of each row's run of real tokens, or None when nothing is padded.

    Raises a `ValueError` for a row with no token or with holes (only left or right padding is supported).
    """
    if attention_mask is None:
        return None
    mask = attention_mask.bool()  # (B, T)
    if bool(mask.all()):
        return None
    lengths = mask.sum(dim=1)  # (B,)
    if bool((lengths == 0).any()):
        row = int((lengths == 0).nonzero()[0])
        raise ValueError(f"`attention_mask` row {row} has no token: every sequence needs at least one.")
    starts = mask.int().argmax(dim=1)  # (B,) first real position
    positions = torch.arange(seq_len, device=mask.device)[None, :]  # (1, T)
    contiguous = (positions >= starts[:, None]) & (positions < (starts + lengths)[:, None])
    if not bool((contiguous == mask).all()):
        raise ValueError(
            "`attention_mask` must mark one contiguous run of tokens per row (left or right padding); "
            "got a row with padding in the middle."
        )
    return starts, lengths


def shift_rows(hidden_states: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Row b becomes `hidden_states[b, t + offsets[b]]` (clamped): moves each row left (offset > 0) or right."""
    seq_len = hidden_states.size(1)
    index = (torch.arange(seq_len, device=hidden_states.device)[None, :] + offsets[:, None]).clamp(
        0, seq_len - 1
    )
    return hidden_states.gather(1, index[:, :, None].expand(-1, -1, hidden_states.size(2)))  # (B, T, C)


def reverse_rows(hidden_states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each right-padded row's first `lengths[b]` positions in place; padding stays at the end."""
    positions = torch.arange(hidden_states.size(1), device=hidden_states.device)[None, :]  # (1, T)
    lengths = lengths.to(hidden_states.device)[:, None]  # (B, 1)
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)  # (B, T)
    return hidden_states.gather(1, index[:, :, None].expand(-1, -1, hidden_states.size(2)))


class RecurrentStack(nn.Module):
    """`num_layers` fused LSTM/GRU layers with locked dropout between them and DropConnect on their weights."""

    def __init__(self, config: RnnConfig):
        super().__init__()
        self.cell_type = config.cell_type
        rnn_class = nn.LSTM if config.cell_type == "lstm" else nn.GRU
        input_sizes = [config.embedding_size] + [config.output_size] * (config.num_layers - 1)
        self.layers = nn.ModuleList(
            rnn_class(size, config.hidden_size, batch_first=True, bidirectional=config.bidirectional)
            for size in input_sizes
        )
        self.hidden_dropout = LockedDropout(config.hidden_dropout)
        self.weight_dropout = WeightDropout(config.weight_dropout)

    def forward(
        self,
        inputs: torch.Tensor,  # (B, T, E)
        attention_mask: torch.Tensor | None = None,  # (B, T)
        cache: RnnCache | None = None,
        output_hidden_states: bool = False,
        need_final_state: bool = True,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, RnnCache | None]:
        """Returns the last layer's outputs (B, T, D*H), every layer's outputs if asked, and the new cache.

        Outputs at padded positions are zeros; the new state of each row is its state after its last real token.
        With `need_final_state=False` a padded batch skips packing (see `run_padded`) and no cache is returned.
        """
        batch_size, seq_len = inputs.shape[:2]
        layout = padding_layout(attention_mask, seq_len)
        lengths = None
        if layout is not None:
            starts, lengths = layout
            inputs = shift_rows(inputs, starts)  # left-padded rows now start at column 0
            lengths = lengths.cpu()

        hidden_states = inputs
        all_hidden_states = []
        new_states = []
        for index, layer in enumerate(self.layers):
            if index > 0:
                hidden_states = self.hidden_dropout(hidden_states)
            initial_state = None
            if cache is not None:
                initial_state = cache.layer_states[index]
                initial_state = initial_state if self.cell_type == "lstm" else initial_state[0]
            if lengths is None and seq_len == 1 and not self.training and not layer.bidirectional:
                hidden_states, final_state = self.step(layer, hidden_states, initial_state)
            elif lengths is None:
                hidden_states, final_state = self.weight_dropout(layer, hidden_states, initial_state)
            elif not need_final_state:
                hidden_states, final_state = (
                    self.run_padded(layer, hidden_states, initial_state, lengths),
                    None,
                )
            else:
                packed = pack_padded_sequence(hidden_states, lengths, batch_first=True, enforce_sorted=False)
                packed, final_state = self.weight_dropout(layer, packed, initial_state)
                hidden_states, _ = pad_packed_sequence(packed, batch_first=True, total_length=seq_len)
            if final_state is not None:
                new_states.append(final_state if self.cell_type == "lstm" else (final_state,))
            all_hidden_states.append(hidden_states)

        if layout is not None:  # back to the caller's layout, zeros at padded positions
            mask = attention_mask[:, :, None].to(hidden_states.dtype)  # (B, T, 1)
            all_hidden_states = [shift_rows(h, -starts) * mask for h in all_hidden_states]
        seen_tokens = (cache.seen_tokens if cache is not None else 0) + seq_len
        return (
            all_hidden_states[-1],
            tuple(all_hidden_states) if output_hidden_states else None,
            RnnCache(new_states, seen_tokens) if new_states else None,
        )

    def run_padded(
        self, layer: nn.RNNBase, inputs: torch.Tensor, state, lengths: torch.Tensor
    ) -> torch.Tensor:
        """One layer over a right-padded batch with the fused kernel and no packing, when no final state is needed.

        Padding follows each row's tokens, so the forward direction is exact at every real position; the backward
        direction runs over each row's tokens reversed in place. Packed sequences give the same numbers, but on a
        CPU they leave the fused oneDNN kernel and train 5-10x slower.
        """
        kernel = torch.lstm if self.cell_type == "lstm" else torch.gru
        directions = ["_l0", "_l0_reverse"] if layer.bidirectional else ["_l0"]
        zeros = inputs.new_zeros(1, inputs.size(0), layer.hidden_size)
        outputs = []
        for suffix in directions:
            weight_hh = self.weight_dropout.drop(getattr(layer, f"weight_hh{suffix}"))
            weights = [getattr(layer, f"weight_ih{suffix}"), weight_hh]
            weights += [getattr(layer, f"bias_ih{suffix}"), getattr(layer, f"bias_hh{suffix}")]
            reverse = suffix.endswith("reverse")
            if state is None or reverse:
                hx = (zeros, zeros) if self.cell_type == "lstm" else zeros
            else:
                hx = state
            x = reverse_rows(inputs, lengths) if reverse else inputs  # (B, T, C)
            # arguments: input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first
            out = kernel(x, hx, weights, True, 1, 0.0, self.training, False, True)[0]  # (B, T, H)
            outputs.append(reverse_rows(out, lengths) if reverse else out)
        return torch.cat(outputs, dim=-1)  # (B, T, D*H)

    def step(
        self, layer: nn.RNNBase, inputs: torch.Tensor, state
    ) -> tuple[torch.Tensor, LayerState | torch.Tensor]:
        """One time step of one unidirectional layer with the same weights: the decoding path of `generate`.

        The fused sequence kernel (oneDNN on a CPU) costs several times more than the cell for a single step.
        """
        inputs = inputs[:, 0]  # (B, C)
        zeros = inputs.new_zeros(1, inputs.size(0), layer.hidden_size)
        weights = (layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0)
        if self.cell_type == "lstm":
            hidden, cell = state if state is not None else (zeros, zeros)
            hidden, cell = torch.lstm_cell(inputs, (hidden[0], cell[0]), *weights)  # (B, H) each
            return hidden[:, None], (hidden[None], cell[None])
        hidden = torch.gru_cell(inputs, (state if state is not None else zeros)[0], *weights)  # (B, H)
        return hidden[:, None], hidden[None]

    def initial_cache(self, batch_size: int, device=None, dtype=None) -> RnnCache:
        """An all-zeros state for `batch_size` sequences."""
        layer = self.layers[0]
        device = device if device is not None else layer.weight_hh_l0.device
        dtype = dtype if dtype is not None else layer.weight_hh_l0.dtype
        shape = (2 if layer.bidirectional else 1, batch_size, layer.hidden_size)
        count = 2 if self.cell_type == "lstm" else 1
        return RnnCache(
            [tuple(torch.zeros(shape, device=device, dtype=dtype) for _ in range(count)) for _ in self.layers]
        )
