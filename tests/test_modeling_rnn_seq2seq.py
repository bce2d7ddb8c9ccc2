"""RnnForSeq2SeqLM: cached decoding, padding, beam search, save/load, remote code, pretrained init, Trainer, pipeline."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from datasets import Dataset
from transformers import (
    AutoConfig,
    AutoModelForSeq2SeqLM,
    DataCollatorForSeq2Seq,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    pipeline,
)

from rnn_hf import RnnCache, RnnConfig, RnnForCausalLM, RnnForMaskedLM, RnnForSeq2SeqLM, RnnSeq2SeqConfig
from rnn_hf.pipelines import TASK, check_tokenizers

SOURCE_VOCAB, TARGET_VOCAB = 40, 50
VARIANTS = [  # (cell, attention, input feeding, bridge)
    ("lstm", "general", True, True),
    ("lstm", "additive", False, True),
    ("gru", "dot", True, False),
    ("gru", "general", False, True),
    ("lstm", "none", False, True),  # the sequence autoencoder: the bridge alone carries the source
]


def tiny_config(cell="lstm", attention="general", feed=True, bridge=True, **overrides) -> RnnSeq2SeqConfig:
    settings = dict(
        cell_type=cell,
        vocab_size=SOURCE_VOCAB,
        target_vocab_size=TARGET_VOCAB,
        embedding_size=8,
        hidden_size=12,
        num_layers=2,
        attention_type=attention,
        input_feeding=feed,
        bridge=bridge,
        dropout=0.0,
    )
    settings.update(overrides)
    return RnnSeq2SeqConfig(**settings)


def tiny_model(*variant, seed=0, **overrides) -> RnnForSeq2SeqLM:
    torch.manual_seed(seed)
    return RnnForSeq2SeqLM(tiny_config(*variant, **overrides)).eval()


def source_ids(batch=3, length=6, seed=0):
    return torch.randint(5, SOURCE_VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- decoding with the cache


@pytest.mark.parametrize("variant", VARIANTS, ids=["-".join(map(str, v)) for v in VARIANTS])
def test_cached_steps_equal_one_full_decoder_pass(variant):
    model = tiny_model(*variant)
    source = source_ids()
    target = torch.randint(5, TARGET_VOCAB, (3, 5), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(input_ids=source, decoder_input_ids=target).logits
        encoder_outputs = model.get_encoder()(source, return_dict=True)
        cache, steps = None, []
        for position in range(target.size(1)):
            out = model(
                encoder_outputs=encoder_outputs,
                decoder_input_ids=target[:, position : position + 1],
                cache=cache,
            )
            cache = out.cache
            steps.append(out.logits)
    assert isinstance(cache, RnnCache) and cache.get_seq_length() == 5
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS[:2], ids=["-".join(map(str, v)) for v in VARIANTS[:2]])
def test_generate_with_the_cache_equals_redecoding_everything(variant):
    model = tiny_model(*variant, eos_token_id=None)
    source = source_ids()
    for settings in (
        {"do_sample": False},
        {"num_beams": 3, "num_return_sequences": 2, "length_penalty": 0.5},
    ):
        cached = model.generate(source, max_new_tokens=7, **settings)
        recomputed = model.generate(source, max_new_tokens=7, use_cache=False, **settings)
        assert cached.shape[1] == 8
        assert torch.equal(cached, recomputed), settings
    greedy = model.generate(source, max_new_tokens=7, do_sample=False)
    assert torch.equal(model.generate(source, max_new_tokens=7, num_beams=1, do_sample=False), greedy)
    # greedy is the argmax of a full decoder pass over its own output
    with torch.no_grad():
        logits = model(input_ids=source, decoder_input_ids=greedy[:, :-1]).logits
    assert torch.equal(logits.argmax(-1), greedy[:, 1:])


def test_beam_search_options_and_sampling_run():
    model = tiny_model(eos_token_id=None)
    source = source_ids(batch=2)
    beams = model.generate(
        source, max_new_tokens=8, num_beams=4, num_return_sequences=3, no_repeat_ngram_size=2
    )
    assert beams.shape == (6, 9)
    for row in beams[:, 1:].tolist():  # no bigram repeats
        bigrams = list(zip(row[:-1], row[1:], strict=True))
        assert len(bigrams) == len(set(bigrams))
    torch.manual_seed(0)
    sampled = model.generate(source, max_new_tokens=8, do_sample=True, top_k=5, num_return_sequences=2)
    assert sampled.shape == (4, 9)
    out = model.generate(
        source,
        max_new_tokens=4,
        output_hidden_states=True,
        output_attentions=True,
        return_dict_in_generate=True,
    )
    assert (
        len(out.decoder_hidden_states) == 4 and len(out.decoder_hidden_states[0]) == 3
    )  # embeddings + 2 layers
    assert out.cross_attentions[0][0].shape == (2, 1, 1, 6)
    torch.testing.assert_close(out.cross_attentions[1][0].sum(-1), torch.ones(2, 1, 1))


@pytest.mark.parametrize("variant", VARIANTS[:3], ids=["-".join(map(str, v)) for v in VARIANTS[:3]])
def test_source_padding_never_changes_an_output(variant):
    model = tiny_model(*variant, eos_token_id=None)
    rows = [source_ids(1, 6, seed=2), source_ids(1, 3, seed=3)]
    alone = [model.generate(row, max_new_tokens=6, num_beams=2) for row in rows]
    with torch.no_grad():
        alone_logits = [
            model(input_ids=row, decoder_input_ids=torch.tensor([[1, 7, 8]])).logits for row in rows
        ]
    for side in ("right", "left"):
        batch = torch.zeros(2, 6, dtype=torch.long)
        mask = torch.zeros(2, 6, dtype=torch.long)
        for index, row in enumerate(rows):
            span = slice(0, row.size(1)) if side == "right" else slice(6 - row.size(1), 6)
            batch[index, span], mask[index, span] = row[0], 1
        together = model.generate(batch, attention_mask=mask, max_new_tokens=6, num_beams=2)
        for index in range(2):
            assert torch.equal(together[index], alone[index][0]), side
        with torch.no_grad():
            logits = model(
                input_ids=batch, attention_mask=mask, decoder_input_ids=torch.tensor([[1, 7, 8]] * 2)
            ).logits
        for index in range(2):
            torch.testing.assert_close(logits[index], alone_logits[index][0], atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- training


def test_labels_with_ignored_positions_train_and_the_loss_ignores_them():
    model = tiny_model()
    source = source_ids()
    labels = torch.randint(5, TARGET_VOCAB, (3, 5), generator=torch.Generator().manual_seed(4))
    padded = labels.clone()
    padded[0, 3:] = -100
    with torch.no_grad():
        logits = model(input_ids=source, labels=padded).logits
        loss = model(input_ids=source, labels=padded).loss
    keep = padded != -100
    expected = torch.nn.functional.cross_entropy(logits[keep], padded[keep])
    torch.testing.assert_close(loss, expected)
    # decoder_input_ids made from labels: start token, then the labels shifted right, -100 as padding
    made = model.prepare_decoder_input_ids_from_labels(padded)
    assert made[:, 0].tolist() == [model.config.decoder_start_token_id] * 3
    assert made[0, 4].item() == model.config.pad_token_id and torch.equal(made[1, 1:], labels[1, :-1])


def test_auxiliary_language_model_loss_counts_in_training_only():
    plain, aux = tiny_model(), tiny_model(lm_loss_weight=0.5)
    source, labels = source_ids(), torch.randint(5, TARGET_VOCAB, (3, 5))
    with torch.no_grad():
        assert torch.equal(
            plain(input_ids=source, labels=labels).loss, aux(input_ids=source, labels=labels).loss
        )
        aux.train(), plain.train()
        assert aux(input_ids=source, labels=labels).loss > plain(input_ids=source, labels=labels).loss


def test_a_tiny_model_learns_twenty_pairs_exactly(one_thread):
    generator = torch.Generator().manual_seed(0)
    pairs = []
    for _ in range(20):
        source = torch.randint(
            5, SOURCE_VOCAB, (int(torch.randint(3, 7, (1,), generator=generator)),), generator=generator
        )
        pairs.append((source, ((source * 7) % (TARGET_VOCAB - 5) + 5).flip(0)))  # a new vocabulary, reversed
    source = torch.zeros(20, 6, dtype=torch.long)
    mask = torch.zeros(20, 6, dtype=torch.long)
    labels = torch.full((20, 7), -100)
    for index, (src, tgt) in enumerate(pairs):
        source[index, : len(src)], mask[index, : len(src)] = src, 1
        labels[index, : len(tgt)] = tgt
        labels[index, len(tgt)] = 2  # eos
    torch.manual_seed(0)
    model = RnnForSeq2SeqLM(tiny_config(embedding_size=16, hidden_size=32, num_layers=1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(200):
        loss = model(input_ids=source, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    generated = model.generate(source, attention_mask=mask, max_new_tokens=8, num_beams=1, do_sample=False)
    for index, (_, tgt) in enumerate(pairs):
        assert generated[index, 1 : len(tgt) + 2].tolist() == tgt.tolist() + [2], index


def test_seq2seq_trainer_trains_and_evaluates_with_generate(tmp_path, word_tokenizer):
    words = [f"w{i}" for i in range(5, 40)]
    rows = [
        {"source": " ".join(words[i : i + 4]), "target": " ".join(reversed(words[i : i + 3]))}
        for i in range(24)
    ]

    def tokenize(batch):
        features = word_tokenizer(batch["source"])
        targets = word_tokenizer(batch["target"])["input_ids"]
        features["labels"] = [ids + [word_tokenizer.eos_token_id] for ids in targets]
        return features

    data = Dataset.from_list(rows).map(tokenize, batched=True, remove_columns=["source", "target"])
    model = RnnForSeq2SeqLM(tiny_config(vocab_size=99, target_vocab_size=99))
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        max_steps=4,
        learning_rate=1e-2,
        predict_with_generate=True,
        generation_max_length=6,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
    )

    def exact_match(prediction):
        predictions = word_tokenizer.batch_decode(prediction.predictions, skip_special_tokens=True)
        labels = prediction.label_ids.clip(min=0)
        references = word_tokenizer.batch_decode(labels, skip_special_tokens=True)
        return {
            "exact_match": sum(p == r for p, r in zip(predictions, references, strict=True)) / len(references)
        }

    trainer = Seq2SeqTrainer(
        model=model,
        args=args,
        train_dataset=data,
        eval_dataset=data.select(range(8)),
        data_collator=DataCollatorForSeq2Seq(word_tokenizer, model=model),
        compute_metrics=exact_match,
    )
    result = trainer.train()
    assert result.global_step == 4 and result.training_loss == pytest.approx(result.training_loss)  # finite
    metrics = trainer.evaluate()
    assert torch.isfinite(torch.tensor(metrics["eval_loss"])) and 0.0 <= metrics["eval_exact_match"] <= 1.0
    predictions = trainer.predict(data.select(range(8)))
    generated = torch.as_tensor(predictions.predictions)
    assert generated.shape[0] == 8 and bool(((generated != word_tokenizer.pad_token_id).sum(1) <= 6).all())


# ---------------------------------------------------------------- initialization from pretrained language models


def test_from_encoder_decoder_pretrained_starts_as_the_two_language_models(tmp_path):
    torch.manual_seed(0)
    mlm = RnnForMaskedLM(
        RnnConfig(vocab_size=SOURCE_VOCAB, embedding_size=8, hidden_size=12, bidirectional=True)
    )
    clm = RnnForCausalLM(RnnConfig(vocab_size=TARGET_VOCAB, embedding_size=10, hidden_size=16, num_layers=2))
    mlm.save_pretrained(tmp_path / "mlm")
    clm.save_pretrained(tmp_path / "clm")
    model = RnnForSeq2SeqLM.from_encoder_decoder_pretrained(
        tmp_path / "mlm", tmp_path / "clm", dropout=0.0
    ).eval()
    config = model.config
    assert (config.vocab_size, config.target_vocab_size, config.decoder_hidden_size) == (
        SOURCE_VOCAB,
        TARGET_VOCAB,
        16,
    )
    source, target = source_ids(), torch.randint(5, TARGET_VOCAB, (3, 7))
    target[:, 0] = config.decoder_start_token_id
    with torch.no_grad():
        torch.testing.assert_close(
            model.get_encoder()(source).last_hidden_state, mlm.rnn(source).last_hidden_state
        )
        torch.testing.assert_close(
            model(input_ids=source, decoder_input_ids=target).logits, clm(target).logits
        )
    assert model.lm_head.decoder.weight is model.decoder.embeddings.weight  # still tied
    # and it trains away from the language model: attention gets a gradient after one step
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(2):
        loss = model(input_ids=source, labels=target).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model.decoder.attention.query_projection.weight.grad.abs().sum() > 0


def test_from_encoder_decoder_pretrained_refuses_mismatched_checkpoints():
    mlm = RnnForMaskedLM(
        RnnConfig(vocab_size=SOURCE_VOCAB, embedding_size=8, hidden_size=12, bidirectional=True)
    )
    gru = RnnForCausalLM(
        RnnConfig(cell_type="gru", vocab_size=TARGET_VOCAB, embedding_size=8, hidden_size=12)
    )
    with pytest.raises(ValueError, match="lstm and the decoder a gru"):
        RnnForSeq2SeqLM.from_encoder_decoder_pretrained(mlm, gru)
    other_pad = RnnForCausalLM(
        RnnConfig(vocab_size=TARGET_VOCAB, embedding_size=8, hidden_size=12, pad_token_id=4)
    )
    with pytest.raises(ValueError, match="pad_token_id"):
        RnnForSeq2SeqLM.from_encoder_decoder_pretrained(mlm, other_pad)
    with pytest.raises(TypeError, match="RnnForCausalLM as the decoder"):
        RnnForSeq2SeqLM.from_encoder_decoder_pretrained(mlm, mlm)


# ---------------------------------------------------------------- saving, loading, remote code


@pytest.mark.parametrize("share, tie", [(False, True), (False, False), (True, True)])
def test_resize_token_embeddings_resizes_both_sides_of_one_vocabulary(share, tie):
    """Tokens added to a shared tokenizer: the encoder's and the decoder's embeddings and the output layer grow
    together, the configs follow, the new ids are accepted on both sides, and the ties hold."""
    model = tiny_model(vocab_size=40, target_vocab_size=40, share_embeddings=share, tie_word_embeddings=tie)
    old = model.encoder.embeddings.weight[:40].clone()
    model.resize_token_embeddings(45)
    assert (model.config.vocab_size, model.config.target_vocab_size, model.encoder.config.vocab_size) == (
        45,
        45,
        45,
    )
    for module in (model.encoder.embeddings, model.decoder.embeddings, model.lm_head.decoder):
        assert module.weight.shape[0] == 45
    assert torch.equal(model.encoder.embeddings.weight[:40], old)  # the learned rows are kept
    assert (model.decoder.embeddings.weight is model.encoder.embeddings.weight) == share
    assert (model.lm_head.decoder.weight is model.decoder.embeddings.weight) == tie
    output = model(input_ids=torch.tensor([[5, 44]]), decoder_input_ids=torch.tensor([[1, 44]]),
                   labels=torch.tensor([[44, 2]]))  # fmt: skip
    assert output.logits.shape == (1, 2, 45) and torch.isfinite(output.loss)
    assert model.generate(
        torch.tensor([[5, 44]]), max_new_tokens=3, min_new_tokens=3, do_sample=False
    ).shape == (1, 4)
    with pytest.raises(ValueError, match="resizes one vocabulary, and this model has two"):
        tiny_model().resize_token_embeddings(100)  # SOURCE_VOCAB != TARGET_VOCAB


def test_the_decoder_view_of_the_config_keeps_the_decoder_depth():
    # transformers' `get_text_config(decoder=True)` moves `decoder_num_layers` to `num_layers` and, unpatched, left
    # `decoder_num_layers` (hence `num_hidden_layers` and `layer_types`) None
    config = tiny_config(num_layers=2, decoder_num_layers=3, decoder_hidden_size=10)
    view = config.get_text_config(decoder=True)
    assert (view.num_hidden_layers, view.num_layers, view.decoder_num_layers) == (3, 3, 3)
    assert (view.hidden_size, view.decoder_hidden_size) == (10, 10)
    assert view.layer_types == ["linear_attention"] * 3
    assert (config.num_layers, config.decoder_num_layers) == (2, 3)  # the config itself unchanged


def test_the_encoder_view_of_the_config_reads_the_encoder_depth():
    # `num_hidden_layers` maps to `decoder_num_layers`: unpatched, the encoder's view read the decoder's depth
    config = tiny_config(num_layers=2, decoder_num_layers=3, hidden_size=8, decoder_hidden_size=10)
    view = config.get_text_config(encoder=True)
    assert (view.num_hidden_layers, view.num_layers) == (2, 2)
    assert view.hidden_size == 8
    assert view.layer_types == ["linear_attention"] * 2
    assert (config.num_hidden_layers, config.decoder_num_layers, config.decoder_hidden_size) == (3, 3, 10)


def test_save_and_load_through_auto_classes(tmp_path):
    model = tiny_model(share_embeddings=True, target_vocab_size=SOURCE_VOCAB)
    assert model.decoder.embeddings.weight is model.encoder.embeddings.weight
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "rnn_seq2seq"
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is RnnForSeq2SeqLM
    assert loaded.decoder.embeddings.weight is loaded.encoder.embeddings.weight
    source = source_ids()
    assert torch.equal(loaded.generate(source, max_new_tokens=5), model.generate(source, max_new_tokens=5))


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["rnn_hf"] = None  # any `import rnn_hf` now fails
    import torch
    from transformers import AutoModelForSeq2SeqLM
    model = AutoModelForSeq2SeqLM.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
    assert "rnn_hf" not in type(model).__module__, type(model).__module__
    source = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 12]])
    print("GENERATED", model.generate(source, max_new_tokens=5, num_beams=2).tolist())
    """
)


def test_trust_remote_code_loads_where_rnn_hf_is_not_importable(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path / "ckpt")
    auto_map = json.loads((tmp_path / "ckpt" / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_rnn.RnnSeq2SeqConfig",
        "AutoModelForSeq2SeqLM": "modeling_rnn_seq2seq.RnnForSeq2SeqLM",
    }
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_SCRIPT, str(tmp_path / "ckpt")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    source = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 12]])
    assert result.stdout.split("GENERATED ", 1)[1].strip() == str(
        model.generate(source, max_new_tokens=5, num_beams=2).tolist()
    )


# ---------------------------------------------------------------- pipeline


def test_pipeline_generates_text(word_tokenizer):
    model = tiny_model(vocab_size=99, target_vocab_size=99, eos_token_id=None)
    generate = pipeline(TASK, model=model, tokenizer=word_tokenizer)
    out = generate("w5 w6 w7", max_new_tokens=4)
    assert len(out) == 1 and len(out[0]["generated_text"].split()) == 4
    assert all(word.startswith("w") for word in out[0]["generated_text"].split())
    assert out == generate("w5 w6 w7", max_new_tokens=4, num_beams=1)
    many = generate(["w5 w6", "w9 w10 w11"], max_new_tokens=3, num_beams=2, num_return_sequences=2)
    assert [len(item) for item in many] == [2, 2]
    with pytest.raises(ValueError, match="non-empty source text"):
        generate("   ")


# ---------------------------------------------------------------- bad input


def test_bad_input_gets_clear_errors(word_tokenizer):
    model = tiny_model()
    source = source_ids()
    with pytest.raises(ValueError, match="Give the decoder's inputs: `labels`"):
        model(input_ids=source)
    with pytest.raises(ValueError, match="`input_ids` is empty"):
        model(input_ids=source[:, :0], decoder_input_ids=torch.ones(3, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="row 1 has no token"):
        mask = torch.ones_like(source)
        mask[1] = 0
        model(input_ids=source, attention_mask=mask, decoder_input_ids=torch.ones(3, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=f"`decoder_input_ids` contains id {TARGET_VOCAB}"):
        model(input_ids=source, decoder_input_ids=torch.full((3, 2), TARGET_VOCAB))
    with pytest.raises(ValueError, match="`labels` contains"):
        model(input_ids=source, labels=torch.full((3, 2), -5))
    with pytest.raises(ValueError, match="only mark right padding"):
        model(
            input_ids=source,
            labels=torch.ones(3, 3, dtype=torch.long),
            decoder_attention_mask=torch.tensor([[0, 1, 1]] * 3),
        )
    with pytest.raises(ValueError, match="dot.*needs `decoder_hidden_size`"):
        tiny_config(attention="dot", decoder_hidden_size=7)
    with pytest.raises(ValueError, match="share_embeddings"):
        tiny_config(share_embeddings=True)
    with pytest.raises(ValueError, match="attention_type"):
        tiny_config(attention="cosine")
    with pytest.raises(ValueError, match="through the bridge alone"):
        tiny_config(attention="none", feed=True)
    with pytest.raises(ValueError, match="no attention"):
        tiny_model("lstm", "none", False)(
            input_ids=source, labels=torch.ones(3, 2, dtype=torch.long), output_attentions=True
        )
    # tokenizers whose special tokens disagree with the config
    config = tiny_config(vocab_size=99, target_vocab_size=99)
    check_tokenizers(config, word_tokenizer)
    with pytest.raises(
        ValueError, match="target tokenizer's eos_token_id is 2 but the model's config says 4"
    ):
        check_tokenizers(tiny_config(vocab_size=99, target_vocab_size=99, eos_token_id=4), word_tokenizer)
    with pytest.raises(
        ValueError, match="source tokenizer's pad_token_id is 0 but the model's config says 3"
    ):
        pipeline(
            TASK,
            model=RnnForSeq2SeqLM(tiny_config(vocab_size=99, target_vocab_size=99, pad_token_id=3)),
            tokenizer=word_tokenizer,
        )
    with pytest.raises(
        ValueError, match="source tokenizer has 99 tokens but the model's source vocabulary only 40"
    ):
        check_tokenizers(tiny_config(), word_tokenizer)
