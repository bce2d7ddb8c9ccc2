"""The AWD-LSTM regularizers (Merity et al., 2018), each a small module, as fastai writes them."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


class LockedDropout(nn.Module):
    """Variational dropout: one mask per sequence and feature, shared by every time step."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:  # (B, T, C)
        if not self.training or self.p == 0.0:
            return hidden_states
        mask = hidden_states.new_empty(hidden_states.size(0), 1, hidden_states.size(2)).bernoulli_(1 - self.p)
        return hidden_states * mask / (1 - self.p)  # (B, T, C)

    def mask(self, batch_size: int, width: int, like: torch.Tensor) -> torch.Tensor | None:
        """One scaled `(B, C)` mask for a sequence run step by step (None when nothing is dropped)."""
        if not self.training or self.p == 0.0:
            return None
        return like.new_empty(batch_size, width).bernoulli_(1 - self.p) / (1 - self.p)


class EmbeddingDropout(nn.Module):
    """Word dropout: drops whole rows of the embedding matrix, so a word type vanishes from the whole batch."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(
        self, embedding: nn.Embedding, input_ids: torch.LongTensor
    ) -> torch.Tensor:  # (B, T) -> (B, T, E)
        if not self.training or self.p == 0.0:
            return embedding(input_ids)
        row_mask = embedding.weight.new_empty(embedding.weight.size(0), 1).bernoulli_(1 - self.p)  # (V, 1)
        return F.embedding(input_ids, embedding.weight * row_mask / (1 - self.p), embedding.padding_idx)


class WeightDropout(nn.Module):
    """DropConnect on the hidden-to-hidden matrices of a fused `nn.LSTM`/`nn.GRU`, keeping the fused kernel.

    The parameters stay registered on the recurrent module under their usual names; during training a dropped
    copy of each `weight_hh_*` stands in for them for one call, through `torch.func.functional_call`.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def drop(self, weight: torch.Tensor) -> torch.Tensor:
        """`weight` with DropConnect applied in training (the same matrix otherwise)."""
        return F.dropout(weight, self.p, training=True) if self.training and self.p > 0.0 else weight

    def forward(self, rnn: nn.RNNBase, *args):
        if not self.training or self.p == 0.0:
            return rnn(*args)
        dropped = {
            name: self.drop(weight) for name, weight in rnn.named_parameters() if name.startswith("weight_hh")
        }
        return functional_call(rnn, dropped, args)
