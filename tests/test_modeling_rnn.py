"""Checks every rnn_hf model class the same way: cache, generation, padding, save/load, remote code, bad input."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)
from transformers.cache_utils import Cache, DynamicCache

from rnn_hf import (
    RnnCache,
    RnnConfig,
    RnnForCausalLM,
    RnnForMaskedLM,
    RnnForSequenceClassification,
    RnnForTokenClassification,
    RnnModel,
)
from rnn_hf.layers import DecodingLinear

CELLS = ["lstm", "gru"]


class RnnModelTester:
    """Tiny configs and inputs, as transformers' `*ModelTester` classes build them."""

    batch_size = 4
    seq_length = 7
    vocab_size = 99
    num_labels = 3

    def get_config(self, **overrides) -> RnnConfig:
        kwargs = dict(
            vocab_size=self.vocab_size,
            embedding_size=16,
            hidden_size=24,
            num_layers=2,
            num_labels=self.num_labels,
            eos_token_id=None,
        )
        kwargs.update(overrides)
        return RnnConfig(**kwargs)

    def input_ids(self, batch_size=None, seq_length=None, seed=0) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        shape = (batch_size or self.batch_size, seq_length or self.seq_length)
        return torch.randint(5, self.vocab_size, shape, generator=generator)

    def model(self, model_class, seed=0, **overrides):
        torch.manual_seed(seed)
        return model_class(self.get_config(**overrides)).eval()


tester = RnnModelTester()

# (class, bidirectional settings it accepts)
HEADS = [
    (RnnModel, [False, True]),
    (RnnForCausalLM, [False]),
    (RnnForMaskedLM, [True]),
    (RnnForSequenceClassification, [False, True]),
    (RnnForTokenClassification, [False, True]),
]
HEAD_CASES = [(cls, bi) for cls, bis in HEADS for bi in bis]


def head_id(case):
    cls, bi = case
    return f"{cls.__name__}-{'bi' if bi else 'uni'}"


def main_output(model, **inputs) -> torch.Tensor:
    out = model(**inputs)
    return out.last_hidden_state if isinstance(model, RnnModel) else out.logits


# ---------------------------------------------------------------- 1. cache equivalence


@pytest.mark.parametrize("cell_type", CELLS)
@pytest.mark.parametrize("model_class", [RnnModel, RnnForCausalLM])
def test_full_forward_equals_prefix_plus_cached_steps(cell_type, model_class):
    model = tester.model(model_class, cell_type=cell_type)
    input_ids = tester.input_ids()
    with torch.no_grad():
        full = main_output(model, input_ids=input_ids)
        out = model(input_ids=input_ids[:, :3])
        pieces, cache = [main_output(model, input_ids=input_ids[:, :3])], out.cache
        for t in range(3, tester.seq_length):
            out = model(input_ids=input_ids[:, t : t + 1], cache=cache)
            pieces.append(out.last_hidden_state if model_class is RnnModel else out.logits)
            cache = out.cache
    assert isinstance(cache, RnnCache) and cache.get_seq_length() == tester.seq_length
    assert (torch.cat(pieces, dim=1) - full).abs().max().item() <= 1e-5


def test_cache_carries_chunks_and_detaches():
    model = tester.model(RnnForCausalLM)
    input_ids = tester.input_ids(seq_length=12)
    with torch.no_grad():
        full = model(input_ids).logits
        first = model(input_ids[:, :5])
        second = model(input_ids[:, 5:], cache=first.cache.detach())
    assert torch.allclose(torch.cat([first.logits, second.logits], 1), full, atol=1e-5)


# ---------------------------------------------------------------- 2. generation


@pytest.mark.parametrize("cell_type", CELLS)
def test_generate_with_cache_equals_recomputing_the_prefix(cell_type):
    model = tester.model(RnnForCausalLM, cell_type=cell_type)
    prompt = tester.input_ids(seq_length=4)
    cached = model.generate(prompt, max_new_tokens=10, do_sample=False)
    recomputed = model.generate(prompt, max_new_tokens=10, do_sample=False, use_cache=False)
    assert cached.shape == (tester.batch_size, 14)
    assert torch.equal(cached, recomputed)


def test_generate_feeds_one_token_per_step():
    model = tester.model(RnnForCausalLM)
    lengths = []
    model.rnn.register_forward_pre_hook(
        lambda module, args, kwargs: lengths.append(args[0].shape[1]), with_kwargs=True
    )
    model.generate(tester.input_ids(seq_length=6), max_new_tokens=5, do_sample=False)
    assert lengths == [6, 1, 1, 1, 1]


@pytest.mark.parametrize("cell_type", CELLS)
def test_beam_search_with_cache_equals_without(cell_type):
    model = tester.model(RnnForCausalLM, cell_type=cell_type)
    prompt = tester.input_ids(batch_size=2, seq_length=4)
    kwargs = dict(max_new_tokens=6, num_beams=3, num_return_sequences=2, do_sample=False)
    with_cache = model.generate(prompt, **kwargs)
    without = model.generate(prompt, use_cache=False, **kwargs)
    assert with_cache.shape == (4, 10)
    assert torch.equal(with_cache, without)


def test_sampling_and_num_return_sequences_run():
    model = tester.model(RnnForCausalLM)
    torch.manual_seed(0)
    out = model.generate(tester.input_ids(batch_size=2, seq_length=3), do_sample=True, top_k=20,
                         max_new_tokens=5, num_return_sequences=3)  # fmt: skip
    assert out.shape == (6, 8)
    assert int(out.max()) < tester.vocab_size


@pytest.mark.parametrize("cell_type", CELLS)
def test_left_padded_batch_generation_equals_each_prompt_alone(cell_type):
    model = tester.model(RnnForCausalLM, cell_type=cell_type)
    prompts = [tester.input_ids(1, length, seed=length)[0] for length in (6, 3, 5)]
    width = max(len(p) for p in prompts)
    batch = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros_like(batch)
    for row, prompt in enumerate(prompts):
        batch[row, width - len(prompt) :] = prompt
        mask[row, width - len(prompt) :] = 1
    generated = model.generate(batch, attention_mask=mask, max_new_tokens=7, do_sample=False)
    for row, prompt in enumerate(prompts):
        alone = model.generate(prompt[None], max_new_tokens=7, do_sample=False)
        assert torch.equal(generated[row, width:], alone[0, len(prompt) :])


@pytest.mark.parametrize("cell_type", CELLS)
def test_forward_returns_a_transformers_cache_that_feeds_generate(cell_type):
    model = tester.model(RnnForCausalLM, cell_type=cell_type)
    prompt = tester.input_ids(seq_length=6)
    with torch.no_grad():
        cache = model(prompt[:, :-1], use_cache=True).cache  # every token but the last, as generate leaves it
    assert isinstance(cache, Cache) and all(cache.is_linear) and cache.get_seq_length() == 5
    continued = model.generate(prompt, cache=cache, max_new_tokens=5, do_sample=False)
    fresh = model.generate(prompt, max_new_tokens=5, do_sample=False)
    assert torch.equal(continued, fresh)
    with pytest.raises(ValueError, match=r"The cache has seen 10 positions but `input_ids` has only 6"):
        model.generate(prompt, cache=cache, max_new_tokens=2)


def test_generate_returns_hidden_states_per_step_and_layer():
    model = tester.model(RnnForCausalLM, num_layers=3)
    prompt = tester.input_ids(seq_length=5)
    out = model.generate(prompt, max_new_tokens=3, do_sample=False, output_hidden_states=True,
                         return_dict_in_generate=True)  # fmt: skip
    assert len(out.hidden_states) == 3  # one entry per generated token
    for step, hidden_states in enumerate(out.hidden_states):
        assert isinstance(hidden_states, tuple) and len(hidden_states) == 3 + 1  # embeddings + each layer
        length = 5 if step == 0 else 1
        widths = [h.shape[2] for h in hidden_states]
        assert all(h.shape[:2] == (tester.batch_size, length) for h in hidden_states)
        assert widths == [16, 24, 24, 24]


@pytest.mark.parametrize("cell_type", CELLS)
def test_generate_from_inputs_embeds_without_input_ids(cell_type):
    model = tester.model(RnnForCausalLM, cell_type=cell_type)
    prompt = tester.input_ids(seq_length=5)
    from_ids = model.generate(prompt, max_new_tokens=4, do_sample=False)
    with torch.no_grad():
        embeds = model.get_input_embeddings()(prompt)
    from_embeds = model.generate(inputs_embeds=embeds, max_new_tokens=4, do_sample=False)
    assert torch.equal(from_embeds, from_ids[:, 5:])  # generate returns the new tokens only


def test_prepare_inputs_for_generation_forwards_other_keywords():
    model = tester.model(RnnForCausalLM)
    inputs = model.prepare_inputs_for_generation(tester.input_ids(), use_cache=True, my_extra_input=3)
    assert inputs["my_extra_input"] == 3 and inputs["use_cache"] is True


@pytest.mark.parametrize("case", HEAD_CASES, ids=head_id)
def test_unknown_keyword_arguments_raise(case):
    model_class, bidirectional = case
    model = tester.model(model_class, bidirectional=bidirectional)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'encoder_hidden_states'"):
        model(tester.input_ids(), encoder_hidden_states=torch.zeros(tester.batch_size, 7, 24))
    with pytest.raises(ValueError, match=r"has no attention weights"):
        model(tester.input_ids(), output_attentions=True)
    model(tester.input_ids(), output_attentions=False)  # what generic code passes by default is accepted


def test_an_attention_cache_is_refused():
    model = tester.model(RnnForCausalLM)
    with pytest.raises(TypeError, match=r"`cache` must be an RnnCache .* got DynamicCache"):
        model(tester.input_ids(), cache=DynamicCache())


@pytest.mark.parametrize("cell_type", CELLS)
def test_decoding_fast_paths_equal_autograd_paths_after_weights_change(cell_type):
    """Decoding steps without autograd read cached copies of the weights (fused LSTM gates, a transposed decoder);
    after an in-place change of the weights (a tied embedding included), they must still give the same logits."""
    model = tester.model(RnnForCausalLM, cell_type=cell_type)
    prompt = tester.input_ids(seq_length=4)
    for change in (None, "embedding", "recurrent"):
        with torch.no_grad():
            if change == "embedding":
                model.rnn.embeddings.weight.add_(0.5)  # tied to the decoder
            elif change == "recurrent":
                model.rnn.recurrent.layers[1].weight_hh_l0.mul_(-1.0)
            cache = model(prompt, use_cache=True).cache
            fast = model(prompt[:, -1:], cache=cache).logits
        cache = model(prompt, use_cache=True).cache
        slow = model(prompt[:, -1:], cache=cache).logits  # autograd on: nn.Linear and lstm_cell
        torch.testing.assert_close(fast, slow.detach(), atol=1e-5, rtol=1e-5)


def test_resized_untied_output_layer_keeps_its_decoding_path():
    """transformers' `resize_token_embeddings` builds a plain `nn.Linear` output layer; an untied rnn_hf model keeps
    a `DecodingLinear` holding the resized parameters, so decoding steps stay on the fast path and match autograd."""
    model = tester.model(RnnForCausalLM, tie_word_embeddings=False)
    old = model.lm_head.decoder.weight.detach().clone()
    model.resize_token_embeddings(tester.vocab_size + 5)
    head = model.lm_head.decoder
    assert (
        type(head) is DecodingLinear
        and head.weight.shape[0] == tester.vocab_size + 5
        and head.bias is not None
    )
    assert torch.equal(head.weight[: tester.vocab_size], old)
    assert {name for name, p in model.named_parameters() if p is head.weight} == {"lm_head.decoder.weight"}
    prompt = torch.tensor([[3, 7, tester.vocab_size + 4]])
    with torch.no_grad():
        fast = model(prompt[:, -1:], cache=model(prompt[:, :-1], use_cache=True).cache).logits
    slow = model(prompt[:, -1:], cache=model(prompt[:, :-1], use_cache=True).cache).logits
    torch.testing.assert_close(fast, slow.detach(), atol=1e-5, rtol=1e-5)
    assert fast.shape[-1] == tester.vocab_size + 5


# ---------------------------------------------------------------- 3. padding invariance


def padded_batch(rows: list[torch.Tensor], side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows right- or left-padded, or (`side="holes"`) spread over a wider batch with absent tokens between them,
    as a collator that drops tokens or packs sequences makes them; absent positions hold other real ids."""
    width = max(len(r) for r in rows) + (3 if side == "holes" else 0)
    generator = torch.Generator().manual_seed(len(rows))
    batch = torch.randint(5, tester.vocab_size, (len(rows), width), generator=generator)
    mask = torch.zeros_like(batch)
    for index, row in enumerate(rows):
        if side == "right":
            cols = torch.arange(len(row))
        elif side == "left":
            cols = torch.arange(width - len(row), width)
        else:
            cols = torch.randperm(width, generator=generator)[: len(row)].sort().values
        batch[index, cols], mask[index, cols] = row, 1
    return batch, mask


@pytest.mark.parametrize("side", ["right", "left", "holes"])
@pytest.mark.parametrize("cell_type", CELLS)
@pytest.mark.parametrize("case", HEAD_CASES, ids=head_id)
def test_padding_never_changes_a_result(case, cell_type, side):
    """Padding, and absent tokens anywhere ("holes"), give exactly the outputs of each row with them removed."""
    model_class, bidirectional = case
    poolings = ["last", "mean", "max", "concat"] if model_class is RnnForSequenceClassification else ["last"]
    rows = [tester.input_ids(1, length, seed=length)[0] for length in (7, 2, 5)]
    batch, mask = padded_batch(rows, side)
    for pooling in poolings:
        model = tester.model(
            model_class, cell_type=cell_type, bidirectional=bidirectional, classifier_pooling=pooling
        )
        with torch.no_grad():
            batched = main_output(model, input_ids=batch, attention_mask=mask)
            for index, row in enumerate(rows):
                alone = main_output(model, input_ids=row[None])[0]
                if model_class is RnnForSequenceClassification:
                    got = batched[index]
                else:
                    got = batched[index][mask[index].bool()]
                torch.testing.assert_close(got, alone, atol=1e-5, rtol=1e-5, msg=f"{pooling} row {index}")


@pytest.mark.parametrize("cell_type", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_unpacked_padded_path_equals_packed_path(cell_type, bidirectional):
    """Without a cache to return, a padded batch runs the fused kernel unpacked; the numbers must not change."""
    model = tester.model(RnnModel, cell_type=cell_type, bidirectional=bidirectional, num_layers=3)
    rows = [tester.input_ids(1, length, seed=length)[0] for length in (7, 2, 5, 1)]
    for side in ("right", "left"):
        batch, mask = padded_batch(rows, side)
        with torch.no_grad():
            packed = model(batch, attention_mask=mask, use_cache=True)
            unpacked = model(batch, attention_mask=mask, use_cache=False)
        assert packed.cache is not None and unpacked.cache is None
        torch.testing.assert_close(unpacked.last_hidden_state, packed.last_hidden_state, atol=1e-6, rtol=1e-5)


def test_unpacked_padded_path_trains_with_weight_dropout():
    model = tester.model(RnnForSequenceClassification, bidirectional=True, weight_dropout=0.5).train()
    batch, mask = padded_batch([tester.input_ids(1, n, seed=n)[0] for n in (7, 3)], "right")
    model(batch, attention_mask=mask, labels=torch.tensor([0, 2])).loss.backward()
    for name in ("weight_hh_l0", "weight_hh_l0_reverse", "weight_ih_l0"):
        grad = getattr(model.rnn.recurrent.layers[0], name).grad
        assert grad is not None and float(grad.abs().sum()) > 0, name
    assert float((model.rnn.recurrent.layers[0].weight_hh_l0.grad == 0).float().mean()) > 0.2  # DropConnect


def test_padded_batch_returns_each_rows_final_state():
    model = tester.model(RnnModel, cell_type="lstm")
    rows = [tester.input_ids(1, length, seed=length)[0] for length in (6, 2)]
    for side in ("left", "right"):
        batch, mask = padded_batch(rows, side)
        with torch.no_grad():
            cache = model(batch, attention_mask=mask).cache
            for index, row in enumerate(rows):
                alone = model(row[None]).cache
                for got, want in zip(cache.layer_states[-1], alone.layer_states[-1], strict=True):
                    torch.testing.assert_close(got[index], want[0], atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------- 4. save / load and remote code


@pytest.mark.parametrize("case", HEAD_CASES, ids=head_id)
def test_save_and_load_give_identical_outputs(case, tmp_path):
    model_class, bidirectional = case
    model = tester.model(model_class, bidirectional=bidirectional, embedding_size=12)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = model_class.from_pretrained(tmp_path).eval()
    input_ids = tester.input_ids()
    with torch.no_grad():
        assert torch.equal(main_output(model, input_ids=input_ids), main_output(loaded, input_ids=input_ids))


AUTO_FOR = {
    RnnModel: AutoModel,
    RnnForCausalLM: AutoModelForCausalLM,
    RnnForMaskedLM: AutoModelForMaskedLM,
    RnnForSequenceClassification: AutoModelForSequenceClassification,
    RnnForTokenClassification: AutoModelForTokenClassification,
}


@pytest.mark.parametrize("case", HEAD_CASES[::2], ids=head_id)
def test_auto_classes_know_every_head(case, tmp_path):
    model_class, bidirectional = case
    model_class(tester.get_config(bidirectional=bidirectional)).save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), RnnConfig)
    assert type(AUTO_FOR[model_class].from_pretrained(tmp_path)) is model_class


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["rnn_hf"] = None  # any `import rnn_hf` now fails
    try:
        import rnn_hf
        raise SystemExit("rnn_hf is importable")
    except ImportError:
        pass
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    path = sys.argv[1]
    model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True).eval()
    assert "rnn_hf" not in type(model).__module__, type(model).__module__
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        logits = model(ids).logits
    print("LOGITS", " ".join(f"{v:.6f}" for v in logits[0, -1, :5].tolist()))
    print("GENERATED", model.generate(ids, max_new_tokens=5, do_sample=False)[0].tolist())
    classifier = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True, num_labels=3)
    print("CLASSIFIER", type(classifier).__name__)
    """
)


def test_trust_remote_code_loads_where_rnn_hf_is_not_importable(tmp_path):
    model = tester.model(RnnForCausalLM)
    model.save_pretrained(tmp_path / "ckpt")
    for name in ("configuration_rnn.py", "modeling_rnn.py", "recurrent.py", "layers.py", "regularization.py"):
        assert (tmp_path / "ckpt" / name).exists(), name
    auto_map = json.loads((tmp_path / "ckpt" / "config.json").read_text())["auto_map"]
    for (
        auto_class,
        reference,
    ) in auto_map.items():  # the family's classes only, each in a file the checkpoint carries
        module, class_name = reference.split(".")
        assert f"class {class_name}(" in (tmp_path / "ckpt" / f"{module}.py").read_text(), auto_class
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_SCRIPT, str(tmp_path / "ckpt")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        want = model(ids).logits[0, -1, :5].tolist()
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert [float(v) for v in lines["LOGITS"].split()] == pytest.approx(want, abs=1e-5)
    assert lines["GENERATED"] == str(model.generate(ids, max_new_tokens=5, do_sample=False)[0].tolist())
    assert lines["CLASSIFIER"] == "RnnForSequenceClassification"


# ---------------------------------------------------------------- weights: tying, init, fused kernels


def test_tied_decoder_goes_through_a_projection_when_widths_differ():
    model = tester.model(RnnForCausalLM, embedding_size=16, hidden_size=24)
    assert model.lm_head.projection is not None
    assert model.lm_head.decoder.weight is model.rnn.embeddings.weight
    untied = tester.model(RnnForCausalLM, tie_word_embeddings=False)
    assert untied.lm_head.projection is None
    assert untied.lm_head.decoder.weight.shape == (tester.vocab_size, 24)
    assert untied.lm_head.decoder.weight.data_ptr() != untied.rnn.embeddings.weight.data_ptr()


def test_recurrent_initialization_is_orthogonal_with_forget_bias():
    model = tester.model(RnnModel, forget_gate_bias=1.0)
    lstm = model.recurrent.layers[0]
    for block in lstm.weight_hh_l0.detach().chunk(4, dim=0):
        torch.testing.assert_close(block @ block.T, torch.eye(24), atol=1e-5, rtol=0)
    forget = (lstm.bias_ih_l0 + lstm.bias_hh_l0)[24:48]
    assert torch.allclose(forget, torch.ones(24))


def test_loading_does_not_reinitialize_weights(tmp_path):
    model = tester.model(RnnForCausalLM)
    with torch.no_grad():
        model.rnn.recurrent.layers[0].weight_hh_l0.fill_(0.125)
    model.save_pretrained(tmp_path)
    loaded = RnnForCausalLM.from_pretrained(tmp_path)
    assert torch.all(loaded.rnn.recurrent.layers[0].weight_hh_l0 == 0.125)


@pytest.mark.parametrize("cell_type", CELLS)
def test_training_runs_one_fused_call_per_layer_with_weight_dropout(cell_type):
    model = tester.model(RnnForCausalLM, cell_type=cell_type, weight_dropout=0.5, num_layers=3).train()
    calls = []
    for layer in model.rnn.recurrent.layers:
        layer.register_forward_hook(lambda module, args, output: calls.append(type(module).__name__))
    input_ids = tester.input_ids(seq_length=20)
    loss = model(input_ids, labels=input_ids).loss
    loss.backward()
    assert calls == [cell_type.upper()] * 3  # one fused nn.LSTM/nn.GRU call per layer for all 20 steps
    grad = model.rnn.recurrent.layers[0].weight_hh_l0.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    torch.manual_seed(1)
    first = model(input_ids).logits
    second = model(input_ids).logits
    assert not torch.allclose(first, second)  # a fresh DropConnect mask each pass
    model.eval()
    assert torch.equal(model(input_ids).logits, model(input_ids).logits)


def test_state_dict_keeps_plain_recurrent_names():
    keys = set(tester.model(RnnForCausalLM, weight_dropout=0.3).state_dict())
    assert "rnn.recurrent.layers.0.weight_hh_l0" in keys
    assert not any("raw" in k or "module" in k for k in keys)


# ---------------------------------------------------------------- heads: losses and problem types


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_ulmfit_classifier_head(tmp_path, norm):
    """`classifier_hidden_size` gives norm -> linear -> ReLU -> norm -> linear; it saves, loads onto a pretrained
    backbone with a freshly initialized head, ignores padding, and trains on a batch of one."""
    lm = tester.model(RnnForCausalLM)
    lm.save_pretrained(tmp_path)
    model = RnnForSequenceClassification.from_pretrained(
        tmp_path, classifier_hidden_size=10, classifier_pooling="concat", classifier_norm=norm
    ).eval()
    head = model.classifier
    assert isinstance(head.input_norm, nn.BatchNorm1d if norm == "batch" else nn.LayerNorm)
    assert (head.dense.in_features, head.dense.out_features, head.out_proj.out_features) == (72, 10, 3)
    assert torch.equal(head.input_norm.weight, torch.ones(72)) and torch.equal(
        head.hidden_norm.bias, torch.zeros(10)
    )
    assert head.dense.weight.std().item() == pytest.approx(0.02, rel=0.2)  # initialized, not left empty
    torch.testing.assert_close(
        model.rnn.recurrent.layers[0].weight_hh_l0, lm.rnn.recurrent.layers[0].weight_hh_l0
    )
    rows = [tester.input_ids(1, length, seed=length)[0] for length in (7, 2, 5)]
    batch, mask = padded_batch(rows, "right")
    with torch.no_grad():
        batched = model(input_ids=batch, attention_mask=mask).logits
        for index, row in enumerate(rows):
            torch.testing.assert_close(
                batched[index], model(input_ids=row[None]).logits[0], atol=1e-5, rtol=1e-5
            )
    if norm == "batch":  # fresh running statistics, then those of a training batch: they are saved and loaded
        assert torch.equal(head.input_norm.running_var, torch.ones(72))
        model.train()
        model(input_ids=batch, attention_mask=mask)
        model.eval()
        assert not torch.equal(head.input_norm.running_mean, torch.zeros(72))
    model.save_pretrained(tmp_path / "clf")
    loaded = RnnForSequenceClassification.from_pretrained(tmp_path / "clf").eval()
    assert isinstance(loaded.classifier, type(head)) and loaded.config.classifier_norm == norm
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=batch).logits, model(input_ids=batch).logits)
    model.train()
    running_mean = head.input_norm.running_mean.clone() if norm == "batch" else None
    loss = model(input_ids=rows[0][None], labels=torch.tensor([1])).loss
    loss.backward()
    assert torch.isfinite(loss) and head.dense.weight.grad.abs().sum() > 0
    if norm == "batch":  # one document has no spread: it is normalized by, and leaves, the running statistics
        assert torch.equal(head.input_norm.running_mean, running_mean)


@pytest.mark.parametrize("side", ["right", "left", "holes"])
@pytest.mark.parametrize("cell_type", CELLS)
def test_classifier_reading_in_chunks_equals_one_pass(cell_type, side):
    """ULMFiT's BPT3C: chunks of `classifier_bptt` tokens with the state carried give the one-pass logits, for
    every pooling, padding on either side or absent tokens anywhere, and chunk sizes that do not divide the length
    (rows end in different chunks)."""
    rows = [tester.input_ids(1, length, seed=length)[0] for length in (11, 2, 7)]
    batch, mask = padded_batch(rows, side)
    for pooling in ["last", "mean", "max", "concat"]:
        model = tester.model(RnnForSequenceClassification, cell_type=cell_type, classifier_pooling=pooling)
        with torch.no_grad():
            one_pass = model(batch, attention_mask=mask).logits
            for bptt in (1, 3, 4, batch.size(1) - 1):
                model.config.classifier_bptt = bptt
                chunked = model(batch, attention_mask=mask).logits
                torch.testing.assert_close(
                    chunked, one_pass, atol=1e-5, rtol=1e-5, msg=f"{pooling} bptt {bptt}"
                )
            model.config.classifier_bptt = None


def test_classifier_chunks_before_the_gradient_length_get_no_gradient():
    """With `classifier_grad_length`, a token read only in an early chunk gets no embedding gradient, a token in
    the last chunks does; without it every token does; a short row in a batch gets it through its own last tokens."""
    early, late = 5, 6
    input_ids = torch.tensor([[early] * 8 + [late] * 4])  # chunks of 4: [early x4] [early x4] [late x4]
    for grad_length, early_has_gradient in ((4, False), (None, True)):
        model = tester.model(
            RnnForSequenceClassification, classifier_bptt=4, classifier_grad_length=grad_length
        )
        model.train()
        model(input_ids, labels=torch.tensor([1])).loss.backward()
        gradient = model.rnn.embeddings.weight.grad
        assert gradient[late].abs().sum() > 0
        assert bool(gradient[early].abs().sum() > 0) == early_has_gradient
    # a short row beside a long one keeps the gradient through its own last tokens
    short = 7
    batch = torch.stack([input_ids[0], torch.tensor([short] * 3 + [0] * 9)])
    mask = torch.stack([torch.ones(12, dtype=torch.long), torch.tensor([1] * 3 + [0] * 9)])
    model = tester.model(RnnForSequenceClassification, classifier_bptt=4, classifier_grad_length=4).train()
    model(batch, attention_mask=mask, labels=torch.tensor([1, 2])).loss.backward()
    assert model.rnn.embeddings.weight.grad[short].abs().sum() > 0


def test_classifier_chunked_reading_is_refused_where_it_cannot_work():
    with pytest.raises(ValueError, match="bidirectional"):
        tester.get_config(bidirectional=True, classifier_bptt=8)
    with pytest.raises(ValueError, match="classifier_bptt"):
        tester.get_config(classifier_bptt=0)
    model = tester.model(RnnForSequenceClassification, classifier_bptt=3)
    with pytest.raises(ValueError, match="output_hidden_states"):
        model(tester.input_ids(), output_hidden_states=True)
    assert (
        len(model(tester.input_ids(seq_length=3), output_hidden_states=True).hidden_states) == 3
    )  # one pass


def test_sequence_classification_problem_types():
    input_ids = tester.input_ids()
    single = tester.model(RnnForSequenceClassification)
    assert single(input_ids, labels=torch.tensor([0, 1, 2, 1])).loss.item() > 0
    assert single.config.problem_type == "single_label_classification"
    multi = tester.model(RnnForSequenceClassification, problem_type="multi_label_classification")
    assert multi(input_ids, labels=torch.tensor([[1.0, 0, 1]] * 4)).loss.item() > 0
    regression = tester.model(RnnForSequenceClassification, num_labels=1)
    out = regression(input_ids, labels=torch.randn(4))
    assert out.logits.shape == (4, 1) and regression.config.problem_type == "regression"


def test_causal_lm_shift_labels_for_streams():
    model = tester.model(RnnForCausalLM)
    stream = tester.input_ids(seq_length=9)
    shifted = model(stream[:, :-1], shift_labels=stream[:, 1:]).loss
    inside = model(stream, labels=stream, logits_to_keep=0).loss
    logits = model(stream[:, :-1]).logits
    want = torch.nn.functional.cross_entropy(logits.reshape(-1, tester.vocab_size), stream[:, 1:].reshape(-1))
    torch.testing.assert_close(shifted, want)
    assert torch.isfinite(inside)


# ---------------------------------------------------------------- 6. bad input


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(input_ids=torch.tensor([[5, 99]])),
            r"`input_ids` contains id 99, outside the vocabulary range \[0, 99\)",
        ),
        (dict(input_ids=torch.tensor([[-1, 5]])), r"`input_ids` contains id -1"),
        (dict(input_ids=torch.zeros(2, 0, dtype=torch.long)), r"`input_ids` is empty"),
        (
            dict(input_ids=torch.tensor([[5.0, 6.0]])),
            r"`input_ids` must hold integer token ids .*torch.float32",
        ),
        (
            dict(input_ids=torch.tensor([5, 6])),
            r"`input_ids` must have shape \(batch_size, sequence_length\)",
        ),
        (
            dict(input_ids=torch.ones(2, 4, dtype=torch.long), attention_mask=torch.ones(2, 3)),
            r"`attention_mask` has shape \(2, 3\) but `input_ids` has shape \(2, 4\)",
        ),
        (
            dict(input_ids=torch.ones(2, 4, dtype=torch.long), labels=torch.ones(2, 5, dtype=torch.long)),
            r"`labels` has shape \(2, 5\) but `input_ids` has shape \(2, 4\)",
        ),
        (
            dict(input_ids=torch.ones(2, 4, dtype=torch.long), labels=torch.full((2, 4), 120)),
            r"`labels` contains 120, outside \[0, 99\)",
        ),
        (
            dict(
                input_ids=torch.ones(2, 3, dtype=torch.long),
                attention_mask=torch.tensor([[1, 1, 1], [0, 0, 0]]),
            ),
            r"`attention_mask` row 1 has no token",
        ),
    ],
)
def test_bad_input_to_causal_lm(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tester.model(RnnForCausalLM)(**kwargs)


@pytest.mark.parametrize(
    "labels, message",
    [
        (torch.tensor([0, 1, 3, 1]), r"`labels` contains 3, outside the allowed range \[0, 3\)"),
        (torch.tensor([0, -1, 2, 1]), r"`labels` contains -1, outside the allowed range \[0, 3\)"),
        (torch.tensor([0, 1]), r"`labels` has 2 rows but the batch has 4"),
    ],
)
def test_bad_classification_labels(labels, message):
    with pytest.raises(ValueError, match=message):
        tester.model(RnnForSequenceClassification)(tester.input_ids(), labels=labels)


@pytest.mark.parametrize(
    "problem_type, labels, message",
    [
        (None, torch.zeros(4, 3, dtype=torch.long), r"single-label classification takes one class id"),
        (None, torch.zeros(4), r"multi-hot `labels` of shape \(batch_size, num_labels\) = \(4, 3\)"),
        ("single_label_classification", torch.tensor([0.0, 1, 2, 1]), r"integer class ids .*torch.float32"),
        ("multi_label_classification", torch.zeros(4, 3, dtype=torch.long), r"torch.int64 of shape \(4, 3\)"),
        ("regression", torch.zeros(4), r"regression with num_labels=3 takes .* of shape \(4, 3\), got"),
    ],
)
def test_labels_that_do_not_fit_the_problem_type(problem_type, labels, message):
    model = tester.model(RnnForSequenceClassification, problem_type=problem_type)
    with pytest.raises(ValueError, match=message):
        model(tester.input_ids(), labels=labels)
    assert model.config.problem_type == problem_type  # a refused batch does not decide the problem type


def test_integer_regression_targets_count_as_real_values():
    model = tester.model(RnnForSequenceClassification, num_labels=1)
    targets = torch.tensor([1, 5, 3, 2])  # e.g. star ratings from an integer column
    loss = model(tester.input_ids(), labels=targets).loss
    torch.testing.assert_close(loss, model(tester.input_ids(), labels=targets.float()).loss)


@pytest.mark.parametrize("model_class, bidirectional", [(RnnForCausalLM, False), (RnnForMaskedLM, True),
                                                         (RnnForTokenClassification, False)])  # fmt: skip
def test_float_token_labels_are_refused(model_class, bidirectional):
    labels = torch.zeros(tester.batch_size, tester.seq_length)
    model = tester.model(model_class, bidirectional=bidirectional)
    with pytest.raises(ValueError, match=r"`labels` must hold integer .* got torch.float32"):
        model(tester.input_ids(), labels=labels)


def test_bad_token_classification_labels():
    labels = torch.zeros(tester.batch_size, tester.seq_length, dtype=torch.long)
    labels[0, 0] = -100  # ignored positions are fine
    tester.model(RnnForTokenClassification)(tester.input_ids(), labels=labels)
    labels[1, 2] = 7
    with pytest.raises(ValueError, match=r"`labels` contains 7, outside the allowed range \[0, 3\) or -100"):
        tester.model(RnnForTokenClassification)(tester.input_ids(), labels=labels)


def test_direction_mismatches_are_rejected():
    with pytest.raises(ValueError, match=r"`bidirectional=True` cannot be used by RnnForCausalLM"):
        RnnForCausalLM(tester.get_config(bidirectional=True))
    with pytest.raises(ValueError, match=r"RnnForMaskedLM needs `bidirectional=True`"):
        RnnForMaskedLM(tester.get_config(bidirectional=False))
    encoder = tester.model(RnnModel, bidirectional=True)
    cache = encoder(tester.input_ids()).cache
    with pytest.raises(ValueError, match=r"`cache` cannot continue a bidirectional model"):
        encoder(tester.input_ids(), cache=cache)


def test_cache_of_the_wrong_batch_size_is_rejected():
    model = tester.model(RnnForCausalLM)
    cache = model(tester.input_ids(batch_size=2)).cache
    with pytest.raises(ValueError, match=r"`cache` holds 2 sequences but the input has 4 rows"):
        model(tester.input_ids(batch_size=4), cache=cache)


def test_no_input_at_all_is_rejected():
    with pytest.raises(ValueError, match=r"exactly one of `input_ids` or `inputs_embeds`"):
        tester.model(RnnModel)()
