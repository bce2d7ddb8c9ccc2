import torch
from torch import nn

from rnn_hf.regularization import EmbeddingDropout, LockedDropout, WeightDropout


def test_locked_dropout_shares_one_mask_across_time():
    dropout = LockedDropout(0.5).train()
    out = dropout(torch.ones(8, 20, 16))
    zeros = out == 0
    assert zeros.any() and not zeros.all()
    assert torch.equal(zeros, zeros[:, :1].expand_as(zeros))  # the same features dropped at every step
    assert torch.allclose(out[~zeros], torch.tensor(2.0))  # survivors scaled by 1 / (1 - p)
    assert torch.equal(dropout.eval()(torch.ones(2, 3, 4)), torch.ones(2, 3, 4))


def test_embedding_dropout_drops_whole_word_types():
    torch.manual_seed(0)
    embedding = nn.Embedding(50, 8)
    dropout = EmbeddingDropout(0.5).train()
    input_ids = torch.arange(50).repeat(2, 1)  # every word twice, in two rows
    out = dropout(embedding, input_ids)
    dropped = (out == 0).all(-1)
    assert dropped.any() and not dropped.all()
    assert torch.equal(dropped[0], dropped[1])  # a dropped word is dropped everywhere it occurs
    assert torch.equal(dropout.eval()(embedding, input_ids), embedding(input_ids))


def test_weight_dropout_drops_hidden_to_hidden_weights_only_in_training():
    torch.manual_seed(0)
    lstm = nn.LSTM(4, 6, batch_first=True)
    dropout = WeightDropout(0.5)
    x = torch.randn(2, 5, 4)
    plain, _ = lstm(x)
    dropout.train()
    dropped, _ = dropout(lstm, x)
    assert not torch.allclose(dropped, plain)
    dropped.sum().backward()
    grad = lstm.weight_hh_l0.grad
    assert (grad == 0).float().mean() > 0.2  # dropped connections get no gradient
    assert lstm.weight_ih_l0.grad is not None
    dropout.eval()
    assert torch.equal(dropout(lstm, x)[0], plain)
