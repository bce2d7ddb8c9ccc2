"""rnn_hf models inside the ecosystem: `Trainer`, data collators and pipelines, with a real fast tokenizer."""

import pytest
import torch
from datasets import Dataset
from transformers import (
    DataCollatorForLanguageModeling,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    pipeline,
)

from rnn_hf import (
    RnnConfig,
    RnnForCausalLM,
    RnnForMaskedLM,
    RnnForSequenceClassification,
    RnnForTokenClassification,
)


def tiny_config(**overrides) -> RnnConfig:
    kwargs = dict(vocab_size=99, embedding_size=16, hidden_size=32, num_layers=1, num_labels=2)
    kwargs.update(overrides)
    return RnnConfig(**kwargs)


def pattern_rows(n: int, seed: int = 0) -> list[list[int]]:
    """Learnable sequences: counting upwards from a random start through ten word ids (5 .. 14), cyclically."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        start, length = torch.randint(0, 10, (1,), generator=generator).item(), 6 + len(rows) % 5
        rows.append([5 + (start + i) % 10 for i in range(length)])
    return rows


def train_and_eval_loss(model, dataset, collator, steps: int = 30, lr: float = 1e-2, tmp_path=None):
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        max_steps=steps,
        learning_rate=lr,
        lr_scheduler_type="constant",
        report_to=[],
        save_strategy="no",
        logging_steps=1000,
        use_cpu=True,
        seed=0,
        data_seed=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=dataset, eval_dataset=dataset, data_collator=collator
    )
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    return before, after


def test_trainer_causal_lm(word_tokenizer, tmp_path):
    torch.manual_seed(0)
    dataset = Dataset.from_dict({"input_ids": pattern_rows(64)})
    collator = DataCollatorForLanguageModeling(word_tokenizer, mlm=False)
    before, after = train_and_eval_loss(RnnForCausalLM(tiny_config()), dataset, collator, tmp_path=tmp_path)
    assert after < 0.7 * before


def test_trainer_masked_lm(word_tokenizer, tmp_path):
    torch.manual_seed(0)
    dataset = Dataset.from_dict({"input_ids": pattern_rows(64)})
    collator = DataCollatorForLanguageModeling(word_tokenizer, mlm=True, mlm_probability=0.3, seed=0)
    model = RnnForMaskedLM(tiny_config(bidirectional=True))
    before, after = train_and_eval_loss(model, dataset, collator, steps=40, tmp_path=tmp_path)
    assert after < 0.8 * before


@pytest.mark.parametrize("pooling", ["last", "concat"])
def test_trainer_sequence_classification(word_tokenizer, pooling, tmp_path):
    torch.manual_seed(0)
    rows = pattern_rows(64)
    labels = [int(row[0] < 10) for row in rows]  # learnable from the first token
    dataset = Dataset.from_dict({"input_ids": rows, "labels": labels})
    collator = DataCollatorWithPadding(word_tokenizer)
    model = RnnForSequenceClassification(tiny_config(bidirectional=True, classifier_pooling=pooling))
    before, after = train_and_eval_loss(model, dataset, collator, tmp_path=tmp_path)
    assert after < 0.7 * before


def test_trainer_token_classification(word_tokenizer, tmp_path):
    torch.manual_seed(0)
    rows = pattern_rows(64)
    labels = [[int(token % 2 == 0) for token in row] for row in rows]  # parity of each token
    dataset = Dataset.from_dict({"input_ids": rows, "labels": labels})
    collator = DataCollatorForTokenClassification(word_tokenizer)
    before, after = train_and_eval_loss(
        RnnForTokenClassification(tiny_config()), dataset, collator, tmp_path=tmp_path
    )
    assert after < 0.7 * before


def test_text_generation_pipeline(word_tokenizer):
    torch.manual_seed(0)
    generator = pipeline("text-generation", model=RnnForCausalLM(tiny_config(eos_token_id=None)).eval(),
                         tokenizer=word_tokenizer)  # fmt: skip
    out = generator("w5 w6 w7", max_new_tokens=4, do_sample=False, return_full_text=False)
    new_ids = word_tokenizer(out[0]["generated_text"]).input_ids
    assert len(new_ids) == 4 and word_tokenizer.unk_token_id not in new_ids


def test_fill_mask_pipeline(word_tokenizer):
    torch.manual_seed(0)
    fill = pipeline(
        "fill-mask", model=RnnForMaskedLM(tiny_config(bidirectional=True)).eval(), tokenizer=word_tokenizer
    )
    out = fill("w5 <mask> w7", top_k=3)
    assert len(out) == 3 and all(item["token"] < 99 and "score" in item for item in out)
    assert sum(item["score"] for item in out) <= 1.0


def test_text_classification_pipeline(word_tokenizer):
    torch.manual_seed(0)
    config = tiny_config(id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    classify = pipeline("text-classification", model=RnnForSequenceClassification(config).eval(),
                        tokenizer=word_tokenizer)  # fmt: skip
    out = classify(["w5 w6 w7", "w9 w10"])
    assert [item["label"] in ("negative", "positive") for item in out] == [True, True]
