"""A text-to-text generation pipeline for `RnnForSeq2SeqLM` (and any `AutoModelForSeq2SeqLM`).

transformers 5 removed its `text2text-generation` and `translation` pipelines (it points users to chat models).
Importing rnn_hf registers this one as the task `"seq2seq-generation"`:

    from transformers import pipeline
    translate = pipeline("seq2seq-generation", model="runs/seq2seq", tokenizer="runs/seq2seq")
    translate("In the beginning God created the heaven and the earth.", num_beams=4)
    # [{'generated_text': "Au commencement, Dieu créa les cieux et la terre."}]

A model whose source and target vocabularies differ takes `target_tokenizer=` for decoding. Generation keywords
(`max_new_tokens`, `num_beams`, ...) go to `generate`.
"""

from transformers import AutoModelForSeq2SeqLM, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

TASK = "seq2seq-generation"


def check_tokenizers(config, source_tokenizer, target_tokenizer=None) -> None:
    """Raise a `ValueError` when a tokenizer's special tokens disagree with the model's config: a padding id the
    encoder would read as a token, or an end-of-sequence id generation would never stop at."""
    target_tokenizer = target_tokenizer if target_tokenizer is not None else source_tokenizer
    sides = [("source", source_tokenizer, "pad_token_id", config.pad_token_id)]
    sides += [
        ("target", target_tokenizer, name, getattr(config, name)) for name in ("pad_token_id", "eos_token_id")
    ]
    for side, tokenizer, name, expected in sides:
        got = getattr(tokenizer, name, None)
        if got is not None and expected is not None and got != expected:
            raise ValueError(
                f"The {side} tokenizer's {name} is {got} but the model's config says {expected}: they must agree "
                "(train the tokenizer with these special tokens first, or set the config's ids to the tokenizer's)."
            )
    for side, tokenizer, size in (
        ("source", source_tokenizer, config.vocab_size),
        ("target", target_tokenizer, getattr(config, "target_vocab_size", config.vocab_size)),
    ):
        if len(tokenizer) > size:
            raise ValueError(
                f"The {side} tokenizer has {len(tokenizer)} tokens but the model's {side} vocabulary only {size}."
            )


class Text2TextGenerationPipeline(Pipeline):
    """Source text in, generated text out: `[{"generated_text": ...}]` per input (one per returned sequence)."""

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def __init__(self, *args, target_tokenizer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.target_tokenizer = target_tokenizer if target_tokenizer is not None else self.tokenizer
        check_tokenizers(self.model.config, self.tokenizer, self.target_tokenizer)

    def _sanitize_parameters(self, max_source_length=None, skip_special_tokens=None, **generate_kwargs):
        preprocess = {"max_source_length": max_source_length} if max_source_length is not None else {}
        postprocess = {"skip_special_tokens": skip_special_tokens} if skip_special_tokens is not None else {}
        return preprocess, generate_kwargs, postprocess

    def preprocess(self, text, max_source_length=None):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{TASK} needs a non-empty source text, got {text!r}.")
        truncation = max_source_length is not None
        return self.tokenizer(text, return_tensors="pt", truncation=truncation, max_length=max_source_length)

    def _forward(self, model_inputs, **generate_kwargs):
        sequences = self.model.generate(
            input_ids=model_inputs["input_ids"],
            attention_mask=model_inputs["attention_mask"],
            **generate_kwargs,
        )
        return {"sequences": sequences}

    def postprocess(self, model_outputs, skip_special_tokens=True):
        texts = self.target_tokenizer.batch_decode(
            model_outputs["sequences"], skip_special_tokens=skip_special_tokens
        )
        return [{"generated_text": text.strip()} for text in texts]


PIPELINE_REGISTRY.register_pipeline(
    TASK, pipeline_class=Text2TextGenerationPipeline, pt_model=AutoModelForSeq2SeqLM, type="text"
)

__all__ = ["TASK", "Text2TextGenerationPipeline", "check_tokenizers"]
