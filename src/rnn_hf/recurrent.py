"""The recurrent core every rnn_hf model builds on: a stack of fused LSTM/GRU layers and its state, the cache.

`RecurrentStack` is sized by explicit arguments (`input_size`, `hidden_size`, ...), not by a model config, so a text
backbone (input: embeddings), a decoder (input: `[embedding; attention context]`) or a forecaster (input: values,
lags and covariates) all use it unchanged. Each layer is one `nn.LSTM`/`nn.GRU` call over a sequence (cuDNN on a
GPU, oneDNN on a CPU), never a Python loop over time; `step` advances one position at a time for the models that
need a loop (input feeding, autoregressive sampling), in training too.

Attention masks: a 0 marks an *absent* position. The state passes over it unchanged, in both directions, and its
outputs are zeros. Each row's present positions are gathered to the left (`PresentTokens`), run as one right-padded
(packed) batch and scattered back: exact, and the fused kernels stay. Left and right padding are the common cases.
"""

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import initialization as init
from transformers.cache_utils import Cache, LinearAttentionCacheLayerMixin

from .regularization import LockedDropout, WeightDropout

CELL_TYPES = ("lstm", "gru")
RECURRENT_INITIALIZERS = ("orthogonal", "xavier_uniform", "pytorch")
LayerState = tuple[torch.Tensor, ...]  # LSTM: (h, c); GRU: (h,); each (B, num_directions, H)


# ----------------------------------------------------------------------------------------------------------------
# The state: a transformers `Cache` whose layers are recurrent (constant-size, "linear") states.


class RnnLayerState(LinearAttentionCacheLayerMixin):
    """One recurrent layer's state: `recurrent_states[0]` is h, `recurrent_states[1]` is c (LSTM only).

    Each is `(batch_size, num_directions, hidden_size)`, batch first, as transformers' linear-attention layers keep
    theirs (so `reorder_cache` selects beams on dim 0). A new state is assigned, not copied in place: it stays in the
    autograd graph, so truncated BPTT back-propagates into the chunk that made it until `RnnCache.detach`.
    """

    is_croppable = False  # a recurrent state cannot be rolled back to an earlier position
    is_compileable = False  # assigned anew each step, so no static address for CUDA graphs

    def lazy_initialization(self, conv_states=None, recurrent_states=None, state_idx: int = 0) -> None:
        if recurrent_states is not None and self.device is None:
            self.dtype, self.device = recurrent_states.dtype, recurrent_states.device

    def update_conv_state(self, conv_states: torch.Tensor, state_idx: int = 0, **kwargs) -> torch.Tensor:
        raise NotImplementedError("An LSTM/GRU layer has no convolution state.")

    def update_recurrent_state(
        self, recurrent_states: torch.Tensor, state_idx: int = 0, **kwargs
    ) -> torch.Tensor:
        self.lazy_initialization(recurrent_states=recurrent_states, state_idx=state_idx)
        self.recurrent_states[state_idx] = recurrent_states
        self.is_recurrent_states_initialized[state_idx] = True
        self.has_previous_state[state_idx] = True
        return recurrent_states

    @property
    def state(self) -> LayerState | None:
        """`(h, c)` or `(h,)`, or None before the first update."""
        if not all(self.has_previous_state.values()):
            return None
        return tuple(self.recurrent_states[i] for i in range(self.number_of_states))

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("A recurrent state cannot be cropped: it does not keep past positions.")

    def batch_repeat_interleave(self, repeats: int) -> None:
        for i in range(self.number_of_states):
            if self.is_recurrent_states_initialized[i]:
                self.recurrent_states[i] = self.recurrent_states[i].repeat_interleave(repeats, dim=0)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        for i in range(self.number_of_states):
            if self.is_recurrent_states_initialized[i]:
                self.recurrent_states[i] = self.recurrent_states[i][indices, ...]


class RnnCache(Cache):
    """The recurrent state of every layer after the positions seen so far: the generation cache of rnn_hf models.

    A `transformers.cache_utils.Cache` of `RnnLayerState` layers. Unlike an attention cache it does not grow: each
    layer holds `(h, c)` (LSTM) or `(h,)` (GRU), tensors of shape `(batch_size, num_directions, hidden_size)`. A
    forward pass given a cache updates it and returns it; `generate` carries it between steps and reorders it for
    beam search. For truncated BPTT over a long stream, pass `cache.detach()` to the next chunk.

    Args:
        num_layers (`int`): Number of recurrent layers.
        states_per_layer (`int` or `list[int]`, *optional*, defaults to 2): 2 for an LSTM (h and c), 1 for a GRU;
            a list gives each layer its own count (a decoder keeps its input-feeding vector as one more layer).
    """

    def __init__(self, num_layers: int, states_per_layer: int | list[int] = 2):
        counts = (
            [states_per_layer] * num_layers if isinstance(states_per_layer, int) else list(states_per_layer)
        )
        if len(counts) != num_layers:
            raise ValueError(f"`states_per_layer` lists {len(counts)} layers, `num_layers` is {num_layers}.")
        super().__init__(layers=[RnnLayerState(number_of_states=count) for count in counts])
        self.seen_tokens = 0

    @classmethod
    def from_layer_states(cls, layer_states: list[LayerState], seen_tokens: int = 0) -> "RnnCache":
        """A cache holding the given per-layer states (each tensor `(batch_size, num_directions, hidden_size)`)."""
        cache = cls(len(layer_states), [len(state) for state in layer_states])
        for index, state in enumerate(layer_states):
            cache.update_layer_state(index, state)
        cache.seen_tokens = seen_tokens
        return cache

    @property
    def layer_states(self) -> list[LayerState | None]:
        """Every layer's state, `(h, c)` or `(h,)`, or None for a layer that has seen nothing yet."""
        return [layer.state for layer in self.layers]

    def layer_state(self, layer_idx: int) -> LayerState | None:
        return self.layers[layer_idx].state

    def update_layer_state(self, layer_idx: int, state: LayerState) -> None:
        layer = self.layers[layer_idx]
        if len(state) != layer.number_of_states:
            raise ValueError(
                f"Layer {layer_idx} of this cache holds {layer.number_of_states} state tensor(s), got {len(state)}: "
                "an LSTM state is (h, c), a GRU state is (h,)."
            )
        for index, tensor in enumerate(state):
            layer.update_recurrent_state(tensor, index)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Number of positions (absent ones included) consumed so far."""
        return self.seen_tokens

    @property
    def is_empty(self) -> bool:
        return not any(layer.is_recurrent_states_initialized[0] for layer in self.layers)

    @property
    def batch_size(self) -> int:
        """Rows of the state (-1 while the cache is empty)."""
        for layer in self.layers:
            if layer.is_recurrent_states_initialized[0]:
                return layer.recurrent_states[0].size(0)
        return -1

    def detach(self) -> "RnnCache":
        """The same state cut from the autograd graph: truncated back-propagation through time."""
        cache = RnnCache(len(self.layers), [layer.number_of_states for layer in self.layers])
        for index, state in enumerate(self.layer_states):
            if state is not None:
                cache.update_layer_state(index, tuple(t.detach() for t in state))
        cache.seen_tokens = self.seen_tokens
        return cache

    def __repr__(self) -> str:
        state = self.layer_states[0] if self.layers else None
        shapes = [tuple(t.shape) for t in state] if state is not None else None
        return (
            f"RnnCache(num_layers={len(self)}, seen_tokens={self.seen_tokens}, layer_state_shapes={shapes})"
        )


# ----------------------------------------------------------------------------------------------------------------
# Attention masks: which positions are present.


@dataclass
class PresentTokens:
    """Where each row's present positions are: the layout that compacts them to the left and back.

    order (`(B, T)`): positions with each row's present ones first, in their order; lengths (`(B,)`): how many are
    present; mask (`(B, T)` bool): the attention mask.
    """

    order: torch.Tensor
    lengths: torch.Tensor
    mask: torch.Tensor

    @classmethod
    def from_mask(cls, attention_mask: torch.Tensor | None, seq_len: int) -> "PresentTokens | None":
        """None when every position is present; raises a `ValueError` for a row with no present position."""
        if attention_mask is None:
            return None
        if attention_mask.dim() != 2 or attention_mask.size(1) != seq_len:
            raise ValueError(
                f"`attention_mask` must have shape (batch_size, {seq_len}), got {tuple(attention_mask.shape)}."
            )
        mask = attention_mask.bool()  # (B, T)
        if bool(mask.all()):
            return None
        lengths = mask.sum(dim=1)  # (B,)
        if bool((lengths == 0).any()):
            row = int((lengths == 0).nonzero()[0])
            raise ValueError(f"`attention_mask` row {row} has no token: every sequence needs at least one.")
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)  # (B, T) present positions first
        return cls(order=order, lengths=lengths, mask=mask)

    @property
    def first(self) -> torch.Tensor:  # (B,) position of each row's first present token
        return self.order[:, 0]

    @property
    def last(self) -> torch.Tensor:  # (B,) position of each row's last present token
        return self.order.gather(1, (self.lengths - 1)[:, None])[:, 0]

    def compact(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, T, C) with each row's present positions first: a right-padded batch."""
        index = self.order[:, :, None].expand(-1, -1, hidden_states.size(2))
        return hidden_states.gather(1, index)

    @cached_property
    def inverse_order(self) -> torch.Tensor:  # (B, T) where each position went in `compact`
        return self.order.argsort(dim=1)

    def restore(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Inverse of `compact`, with zeros at absent positions."""
        index = self.inverse_order[:, :, None].expand(-1, -1, hidden_states.size(2))
        restored = hidden_states.gather(1, index)
        return restored * self.mask[:, :, None].to(hidden_states.dtype)  # (B, T, C)


def reverse_rows(hidden_states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each right-padded row's first `lengths[b]` positions in place; padding stays at the end."""
    positions = torch.arange(hidden_states.size(1), device=hidden_states.device)[None, :]  # (1, T)
    lengths = lengths.to(hidden_states.device)[:, None]  # (B, 1)
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)  # (B, T)
    return hidden_states.gather(1, index[:, :, None].expand(-1, -1, hidden_states.size(2)))


# ----------------------------------------------------------------------------------------------------------------


@dataclass
class StepPlan:
    """What `RecurrentStack.step` reuses at every step of one sequence: in training, the DropConnect weights and the
    locked-dropout masks are drawn once per sequence, as the fused path draws them once per call."""

    weights: list[tuple[torch.Tensor, ...]]  # per layer: weight_ih, weight_hh (dropped), bias_ih, bias_hh
    masks: list[torch.Tensor | None]  # per layer above the first: (B, C) locked-dropout mask or None


class RecurrentStack(nn.Module):
    """`num_layers` fused LSTM/GRU layers with locked dropout between them and DropConnect on their weights.

    Args:
        input_size (`int`): Width of the inputs of the first layer.
        hidden_size (`int`): Width of each layer's state (per direction).
        num_layers (`int`, *optional*, defaults to 1): Number of stacked layers.
        cell_type (`str`, *optional*, defaults to `"lstm"`): `"lstm"` or `"gru"`.
        bidirectional (`bool`, *optional*, defaults to `False`): Run every layer in both directions.
        hidden_dropout (`float`, *optional*, defaults to 0.0): Locked dropout between layers.
        weight_dropout (`float`, *optional*, defaults to 0.0): DropConnect on the hidden-to-hidden matrices.
        recurrent_initializer (`str`, *optional*, defaults to `"orthogonal"`): Initialization of the
            hidden-to-hidden matrices: `"orthogonal"` (each gate's block), `"xavier_uniform"` or `"pytorch"`.
        forget_gate_bias (`float`, *optional*, defaults to 0.0): Initial LSTM forget-gate bias.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        cell_type: str = "lstm",
        bidirectional: bool = False,
        hidden_dropout: float = 0.0,
        weight_dropout: float = 0.0,
        recurrent_initializer: str = "orthogonal",
        forget_gate_bias: float = 0.0,
    ):
        super().__init__()
        if cell_type not in CELL_TYPES:
            raise ValueError(f"`cell_type` must be one of {CELL_TYPES}, got {cell_type!r}.")
        if recurrent_initializer not in RECURRENT_INITIALIZERS:
            raise ValueError(
                f"`recurrent_initializer` must be one of {RECURRENT_INITIALIZERS}, got {recurrent_initializer!r}."
            )
        for name, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.cell_type, self.bidirectional = cell_type, bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.num_directions
        self.recurrent_initializer, self.forget_gate_bias = recurrent_initializer, forget_gate_bias
        rnn_class = nn.LSTM if cell_type == "lstm" else nn.GRU
        input_sizes = [input_size] + [self.output_size] * (num_layers - 1)
        self.layers = nn.ModuleList(
            rnn_class(size, hidden_size, batch_first=True, bidirectional=bidirectional)
            for size in input_sizes
        )
        self.hidden_dropout = LockedDropout(hidden_dropout)
        self.weight_dropout = WeightDropout(weight_dropout)
        # see `fused_step_weights`: copies for inference steps, not saved, rebuilt when stale
        self._fused_weights: dict[tuple, tuple] = {}
        self.init_weights()

    def train(self, mode: bool = True) -> "RecurrentStack":
        self._fused_weights.clear()  # only inference uses them: free the copy
        return super().train(mode)

    @property
    def states_per_layer(self) -> int:
        return 2 if self.cell_type == "lstm" else 1

    def init_weights(self) -> None:
        """Xavier input weights, orthogonal (per gate) or other recurrent weights, zero biases but the forget gate.

        Uses transformers' `initialization` functions, which leave weights loaded by `from_pretrained` alone.
        """
        num_gates = 4 if self.cell_type == "lstm" else 3
        bound = self.hidden_size**-0.5
        for name, param in self.layers.named_parameters():
            if ".weight_ih" in name:
                init.xavier_uniform_(param)
            elif ".weight_hh" in name:
                if self.recurrent_initializer == "pytorch":
                    init.uniform_(param, -bound, bound)
                elif self.recurrent_initializer == "xavier_uniform":
                    init.xavier_uniform_(param)
                else:  # one orthogonal block per gate (gates are stacked along dim 0), in float32 for the QR
                    weight = torch.empty_like(param, dtype=torch.float32)
                    for block in weight.chunk(num_gates, dim=0):
                        nn.init.orthogonal_(block)
                    init.copy_(param, weight)
            elif ".bias" in name:
                bias = torch.zeros_like(param)
                if self.cell_type == "lstm":  # gate order i, f, g, o; the two biases add up
                    bias[self.hidden_size : 2 * self.hidden_size] = self.forget_gate_bias / 2
                init.copy_(param, bias)

    def new_cache(self) -> RnnCache:
        """An empty cache for this stack (zeros are used until a forward pass fills it)."""
        return RnnCache(self.num_layers, self.states_per_layer)

    def forward(
        self,
        inputs: torch.Tensor,  # (B, T, C)
        attention_mask: torch.Tensor | None = None,  # (B, T): 1 present, 0 absent
        cache: RnnCache | None = None,
        output_hidden_states: bool = False,
        need_final_state: bool = True,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, RnnCache | None]:
        """Returns the last layer's outputs (B, T, D*H), every layer's outputs if asked, and the cache.

        Outputs at absent positions are zeros; the new state of each row is its state after its last present
        position. The given `cache` is updated and returned (a new one is made if None). With
        `need_final_state=False`, a masked batch skips packing (see `run_padded`) and no cache is returned.
        """
        if inputs.dim() != 3 or inputs.size(2) != self.input_size:
            raise ValueError(
                f"RecurrentStack expects inputs of shape (batch_size, sequence_length, {self.input_size}), "
                f"got {tuple(inputs.shape)}."
            )
        seq_len = inputs.size(1)
        layout = PresentTokens.from_mask(attention_mask, seq_len)
        lengths = None
        if layout is not None:
            inputs = layout.compact(inputs)  # each row's present positions first: right-padded
            lengths = layout.lengths.cpu()

        hidden_states = inputs
        all_hidden_states, new_states = [], []
        for index, layer in enumerate(self.layers):
            if index > 0:
                hidden_states = self.hidden_dropout(hidden_states)
            cached_state = cache.layer_state(index) if cache is not None else None
            if lengths is None and seq_len == 1 and not self.training and not self.bidirectional:
                output, new_state = self.cell(layer, hidden_states[:, 0], cached_state, index=index)
                hidden_states = output[:, None]  # (B, 1, H)
            else:
                initial_state = self.kernel_state(cached_state)
                if lengths is None:
                    hidden_states, final_state = self.weight_dropout(layer, hidden_states, initial_state)
                elif not need_final_state:
                    hidden_states = self.run_padded(layer, hidden_states, initial_state, lengths)
                    final_state = None
                else:
                    packed = pack_padded_sequence(
                        hidden_states, lengths, batch_first=True, enforce_sorted=False
                    )
                    packed, final_state = self.weight_dropout(layer, packed, initial_state)
                    hidden_states, _ = pad_packed_sequence(packed, batch_first=True, total_length=seq_len)
                new_state = self.cache_state(final_state) if final_state is not None else None
            if new_state is not None:
                new_states.append(new_state)
            all_hidden_states.append(hidden_states)

        if layout is not None:  # back to the caller's positions, zeros where absent
            all_hidden_states = [layout.restore(h) for h in all_hidden_states]
        if new_states:
            cache = cache if cache is not None else self.new_cache()
            for index, state in enumerate(new_states):
                cache.update_layer_state(index, state)
            cache.seen_tokens += seq_len
        else:
            cache = None
        return all_hidden_states[-1], tuple(all_hidden_states) if output_hidden_states else None, cache

    def kernel_state(self, state: LayerState | None) -> torch.Tensor | LayerState | None:
        """A cached `(B, D, H)` state as the `(D, B, H)` initial state `nn.LSTM` / `nn.GRU` take."""
        if state is None:
            return None
        state = tuple(t.transpose(0, 1).contiguous() for t in state)
        return state if self.cell_type == "lstm" else state[0]

    def cache_state(self, final_state: torch.Tensor | LayerState) -> LayerState:
        """The kernel's `(D, B, H)` final state as the cache's `(B, D, H)` tensors."""
        final_state = final_state if self.cell_type == "lstm" else (final_state,)
        return tuple(t.transpose(0, 1) for t in final_state)

    def cell(
        self,
        layer: nn.RNNBase,
        inputs: torch.Tensor,
        state: LayerState | None,
        weights: tuple[torch.Tensor, ...] | None = None,
        index: int | None = None,
    ) -> tuple[torch.Tensor, LayerState]:
        """One time step of one unidirectional layer: `(B, C)` inputs -> `(B, H)` output and the new state, the
        state in the cache's layout (`(B, 1, H)` tensors; None for zeros).

        The fused sequence kernel (oneDNN on a CPU) costs several times more than the cell for a single step. In
        inference on a CPU without autograd, an LSTM layer (`index` given) runs on its `fused_step_weights`.
        """
        if state is None:
            zeros = inputs.new_zeros(inputs.size(0), self.hidden_size)
            state = (zeros,) * self.states_per_layer
        else:
            state = tuple(t[:, 0] for t in state)  # (B, H) each
        fused = weights is None and index is not None and self.uses_fused_steps(inputs)
        if weights is None and not fused:
            weights = (layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0)
        if self.cell_type == "gru":
            hidden = torch.gru_cell(inputs, state[0], *weights)  # (B, H)
            return hidden, (hidden[:, None],)
        hidden, cell = state
        if fused:
            weight, bias = self.fused_step_weights(index, row_major_inputs=inputs.size(0) <= 2)
            gates = torch.addmm(bias, torch.cat([inputs, hidden], dim=1), weight)  # (B, 4H)
            input_gate, forget_gate, candidate, output_gate = gates.chunk(4, dim=1)  # PyTorch's order
            cell = torch.sigmoid(forget_gate) * cell + torch.sigmoid(input_gate) * torch.tanh(candidate)
            hidden = torch.sigmoid(output_gate) * torch.tanh(cell)  # (B, H)
        else:
            hidden, cell = torch.lstm_cell(inputs, (hidden, cell), *weights)  # (B, H) each
        return hidden, (hidden[:, None], cell[:, None])

    def uses_fused_steps(self, inputs: torch.Tensor) -> bool:
        """Whether single steps run on `fused_step_weights`: LSTM inference on a CPU, without autograd."""
        return (
            self.cell_type == "lstm"
            and not self.training
            and not torch.is_grad_enabled()
            and inputs.device.type == "cpu"
        )

    def fused_step_weights(self, index: int, row_major_inputs: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """`[weight_ih | weight_hh]` as a `(C + H, 4H)` matrix to multiply `[x; h]` by, and `bias_ih + bias_hh`, of
        LSTM layer `index`, for inference steps on a CPU.

        Decoding a few rows is bound by reading the weights. One product with this matrix reads them once, in one
        pass, where `torch.lstm_cell` makes two products. `row_major_inputs=True` (for 1 or 2 rows) makes it a
        contiguous `(C + H, 4H)` copy, which streams fastest for one or two rows; otherwise it is the transpose of a
        contiguous `(4H, C + H)` copy, faster from three or four rows on (`benchmarks/bench_decode_layout.py`). The copy is kept until
        the stack trains again and rebuilt whenever a weight changes. Call it without autograd (it is detached).
        """
        layer = self.layers[index]
        params = (layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0)
        key = tuple((p.data_ptr(), p._version) for p in params)  # a new tensor or an in-place change
        cached = self._fused_weights.get((index, row_major_inputs))
        if cached is None or cached[0] != key:
            weight = torch.cat(params[:2], dim=1).detach()  # (4H, C + H)
            weight = weight.t().contiguous() if row_major_inputs else weight.t()  # (C + H, 4H)
            cached = (key, weight, (params[2] + params[3]).detach())
            self._fused_weights[(index, row_major_inputs)] = cached
        return cached[1], cached[2]

    def step_plan(self, batch_size: int) -> StepPlan:
        """Draw what every `step` of one sequence shares (call once per sequence; nothing is random in eval)."""
        weights = [
            (
                layer.weight_ih_l0,
                self.weight_dropout.drop(layer.weight_hh_l0),
                layer.bias_ih_l0,
                layer.bias_hh_l0,
            )
            for layer in self.layers
        ]
        masks = [None]
        for _ in self.layers[1:]:
            masks.append(self.hidden_dropout.mask(batch_size, self.hidden_size, self.layers[0].weight_hh_l0))
        return StepPlan(weights=weights, masks=masks)

    def step(
        self, inputs: torch.Tensor, cache: RnnCache | None = None, plan: StepPlan | None = None
    ) -> tuple[torch.Tensor, RnnCache]:
        """One position through every layer, in training or inference: `(B, C)` -> `(B, H)` and the updated cache.

        For loops over time that a sequence kernel cannot run (input feeding, autoregressive sampling). In
        training, draw a `plan = stack.step_plan(batch_size)` once per sequence and pass it to every step, so that
        DropConnect and locked dropout use one mask per sequence. Unidirectional stacks only.
        """
        if self.bidirectional:
            raise ValueError(
                "`step` runs a unidirectional stack: a backward direction needs the whole sequence."
            )
        if inputs.dim() != 2 or inputs.size(1) != self.input_size:
            raise ValueError(
                f"`step` expects inputs of shape (batch_size, {self.input_size}), got {tuple(inputs.shape)}."
            )
        plan = plan if plan is not None else self.step_plan(inputs.size(0))
        cache = cache if cache is not None else self.new_cache()
        hidden = inputs
        for index, layer in enumerate(self.layers):
            if plan.masks[index] is not None:
                hidden = hidden * plan.masks[index]
            weights = plan.weights[index] if self.training else None  # in inference: the fused weights
            hidden, new_state = self.cell(layer, hidden, cache.layer_state(index), weights, index=index)
            cache.update_layer_state(index, new_state)
        cache.seen_tokens += 1
        return hidden, cache

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
        for direction, suffix in enumerate(directions):
            weight_hh = self.weight_dropout.drop(getattr(layer, f"weight_hh{suffix}"))
            weights = [getattr(layer, f"weight_ih{suffix}"), weight_hh]
            weights += [getattr(layer, f"bias_ih{suffix}"), getattr(layer, f"bias_hh{suffix}")]
            reverse = suffix.endswith("reverse")
            if state is None:
                hx = (zeros, zeros) if self.cell_type == "lstm" else zeros
            elif self.cell_type == "lstm":
                hx = tuple(t[direction : direction + 1] for t in state)
            else:
                hx = state[direction : direction + 1]
            x = reverse_rows(inputs, lengths) if reverse else inputs  # (B, T, C)
            # arguments: input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first
            out = kernel(x, hx, weights, True, 1, 0.0, self.training, False, True)[0]  # (B, T, H)
            outputs.append(reverse_rows(out, lengths) if reverse else out)
        return torch.cat(outputs, dim=-1)  # (B, T, D*H)


__all__ = ["PresentTokens", "RecurrentStack", "RnnCache", "RnnLayerState", "StepPlan"]
