"""LSTM/GRU text models: the backbone and its causal-LM, masked-LM, sequence- and token-classification heads.

Read top to bottom: outputs, input checks, `RnnPreTrainedModel`, `RnnModel` (embeddings + the shared recurrent
core of `recurrent.py`), then one thin class per head. The recurrent state is the generation cache (`RnnCache`):
`generate` feeds one new token and the carried state at each step.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import MaskedLMOutput, SequenceClassifierOutput, TokenClassifierOutput
from transformers.utils import ModelOutput

try:  # transformers >= 5.2x names the cache `cache`; 5.17 carried recurrent states as `cache_params`.
    from transformers.generation.utils import ALL_CACHE_NAMES
except ImportError:  # pragma: no cover
    ALL_CACHE_NAMES = ["cache"]

from .configuration_rnn import RnnConfig
from .layers import DecodingLinear, RnnClassificationHead, pool_sequence
from .recurrent import PresentTokens, RecurrentStack, RnnCache
from .regularization import EmbeddingDropout, LockedDropout

GENERATE_CACHE_NAME = "cache" if "cache" in ALL_CACHE_NAMES else "cache_params"
LOSS_KWARGS = ("num_items_in_batch",)  # what `Trainer` passes on to the loss


@dataclass
class RnnModelOutput(ModelOutput):
    r"""
    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, num_directions * hidden_size)`):
        Output of the last recurrent layer (zeros at padded positions).
    cache (`RnnCache`):
        The recurrent state of every layer after each row's last real token. Pass it back as `cache` with the
        next tokens to continue the sequences.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
        The embeddings and the output of every layer, each `(batch_size, sequence_length, width)`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    cache: RnnCache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class RnnCausalLMOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `(1,)`, *optional*, returned when `labels` is provided):
        Next-token cross-entropy (labels are shifted inside the model).
    logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, vocab_size)`):
        Next-token scores.
    cache (`RnnCache`):
        The recurrent state after the last token, to continue generation or the next chunk of a stream.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
        The embeddings and the output of every layer.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    cache: RnnCache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


# ----------------------------------------------------------------------------------------------------------------
# Input checks: bad input gets a ValueError that names the argument, never an index error deep inside torch.


def check_integer_ids(ids: torch.Tensor, name: str, what: str) -> None:
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise ValueError(f"`{name}` must hold integer {what} (torch.long), got {ids.dtype}.")


def check_input_ids(input_ids: torch.Tensor, vocab_size: int, name: str = "input_ids") -> None:
    if input_ids.dim() != 2:
        raise ValueError(
            f"`{name}` must have shape (batch_size, sequence_length), got {tuple(input_ids.shape)}."
        )
    check_integer_ids(input_ids, name, "token ids")
    if input_ids.numel() == 0:
        raise ValueError(f"`{name}` is empty (shape {tuple(input_ids.shape)}): give at least one token.")
    low, high = torch.aminmax(input_ids)
    if bool((low < 0) | (high >= vocab_size)):  # one synchronization per call: it runs at every decoding step
        bad = int(low) if low < 0 else int(high)
        raise ValueError(f"`{name}` contains id {bad}, outside the vocabulary range [0, {vocab_size}).")


def check_same_shape(name: str, tensor: torch.Tensor | None, reference: torch.Size) -> None:
    if tensor is not None and tuple(tensor.shape) != tuple(reference):
        raise ValueError(
            f"`{name}` has shape {tuple(tensor.shape)} but `input_ids` has shape {tuple(reference)}: they must match."
        )


def check_class_labels(labels: torch.Tensor, num_labels: int, allow_ignore: bool) -> None:
    check_integer_ids(labels, "labels", "class ids")
    valid = (labels >= 0) & (labels < num_labels)
    if allow_ignore:
        valid |= labels == -100
    if not bool(valid.all()):
        bad = int(labels[~valid][0])
        allowed = f"[0, {num_labels})" + (" or -100" if allow_ignore else "")
        raise ValueError(
            f"`labels` contains {bad}, outside the allowed range {allowed} (num_labels={num_labels})."
        )


def check_token_labels(labels: torch.Tensor, vocab_size: int) -> None:
    check_integer_ids(labels, "labels", "token ids")
    valid = ((labels >= 0) & (labels < vocab_size)) | (labels == -100)
    if not bool(valid.all()):
        bad = int(labels[~valid][0])
        raise ValueError(f"`labels` contains {bad}, outside [0, {vocab_size}) and not the ignore index -100.")


def sequence_labels(labels: torch.Tensor, logits: torch.Tensor, config: PreTrainedConfig) -> torch.Tensor:
    """`labels` for a whole-sequence head (logits `(batch_size, num_labels)`), checked against what the loss of
    `config.problem_type` takes; integer regression targets come back as floats. An unset `problem_type` is inferred
    as transformers does (one label: regression; integer labels: single-label; else multi-label) and set on
    `config` once the labels pass."""
    batch_size, num_labels = logits.shape
    if labels.size(0) != batch_size:
        raise ValueError(f"`labels` has {labels.size(0)} rows but the batch has {batch_size}.")
    problem_type = config.problem_type
    if problem_type is None:
        integer = labels.dtype in (torch.long, torch.int)
        problem_type = ("regression" if num_labels == 1 else "single_label_classification" if integer
                        else "multi_label_classification")  # fmt: skip
    shape = tuple(labels.shape)
    if problem_type == "single_label_classification":
        if labels.dim() != 1:
            raise ValueError(
                f"single-label classification takes one class id per row, `labels` of shape (batch_size,), got "
                f"{shape}; for several labels per row set problem_type='multi_label_classification' and give "
                "float multi-hot labels."
            )
        check_class_labels(labels, num_labels, allow_ignore=False)
    elif problem_type == "multi_label_classification":
        if shape != (batch_size, num_labels) or not labels.is_floating_point():
            raise ValueError(
                f"multi-label classification takes float multi-hot `labels` of shape (batch_size, num_labels) = "
                f"{(batch_size, num_labels)}, got {labels.dtype} of shape {shape}; for one class per row give "
                "integer class ids of shape (batch_size,) and problem_type='single_label_classification'."
            )
    elif problem_type == "regression":
        expected = [(batch_size,), (batch_size, 1)] if num_labels == 1 else [(batch_size, num_labels)]
        if shape not in expected or labels.dtype == torch.bool or labels.is_complex():
            raise ValueError(
                f"regression with num_labels={num_labels} takes real-valued `labels` of shape "
                f"{' or '.join(map(str, expected))}, got {labels.dtype} of shape {shape}."
            )
        if not labels.is_floating_point():
            labels = labels.to(logits.dtype)
    config.problem_type = problem_type
    return labels


def check_position_ids(position_ids: torch.Tensor, shape: torch.Size) -> None:
    """Without an attention mask, ids that do not count up by one mark packed sequences: refuse them."""
    check_same_shape("position_ids", position_ids, shape)
    steps = position_ids[:, 1:] - position_ids[:, :-1]  # (B, T - 1)
    if bool((steps != 1).any()):
        row = int((steps != 1).any(1).nonzero()[0])
        raise ValueError(
            f"`position_ids` row {row} does not count up by one: rnn_hf reads one sequence per row, so packed "
            "sequences (ids that restart) must be given as separate rows, or their gaps marked in `attention_mask`."
        )


def check_keyword_arguments(model: nn.Module, kwargs: dict, allowed: tuple[str, ...] = ()) -> None:
    """Refuse a keyword argument no part of the model reads, instead of swallowing it: an encoder-decoder wrapper
    that passes `encoder_hidden_states` to a model that ignores it must not pass silently."""
    for name, value in kwargs.items():
        if name == "output_attentions":
            if value:
                raise ValueError(
                    f"{type(model).__name__} has no attention weights: it cannot `output_attentions`."
                )
        elif name not in allowed:
            raise TypeError(f"{type(model).__name__}.forward() got an unexpected keyword argument {name!r}.")


def cache_argument(cache: RnnCache | None, kwargs: dict) -> RnnCache | None:
    """`cache`, or `cache_params` as transformers 5.17's `generate` names it; a clear error for any other type."""
    legacy = kwargs.pop("cache_params", None)
    cache = cache if cache is not None else legacy
    if cache is not None and not isinstance(cache, RnnCache):
        raise TypeError(
            f"`cache` must be an RnnCache (as returned by a previous call), got {type(cache).__name__}: an "
            "attention cache cannot hold a recurrent state."
        )
    return cache


def split_backbone_outputs(outputs: tuple) -> tuple[torch.Tensor, RnnCache | None, tuple | None]:
    """`RnnModel(..., return_dict=False)`'s tuple, whose Nones are left out, as
    `(last_hidden_state, cache, hidden_states)`."""
    cache = next((value for value in outputs[1:] if isinstance(value, RnnCache)), None)
    hidden_states = next((value for value in outputs[1:] if isinstance(value, tuple)), None)
    return outputs[0], cache, hidden_states


# ----------------------------------------------------------------------------------------------------------------


def init_module_weights(module: nn.Module, config) -> None:
    """Uniform embeddings, normal linears, unit norms; the recurrent stack initializes itself (orthogonal blocks,
    AWD-LSTM). Shared by every rnn_hf model family (`config` has `initializer_range` and `embedding_init_range`)."""
    if isinstance(module, (nn.LayerNorm, nn.BatchNorm1d)):
        init.ones_(module.weight)
        init.zeros_(module.bias)
        if isinstance(module, nn.BatchNorm1d):
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)
    elif isinstance(module, nn.Embedding):
        init.uniform_(module.weight, -config.embedding_init_range, config.embedding_init_range)
    elif isinstance(module, nn.Linear):
        init.normal_(module.weight, mean=0.0, std=config.initializer_range)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, RecurrentStack):
        module.init_weights()


class RnnPreTrainedModel(PreTrainedModel):
    config: RnnConfig
    config_class = RnnConfig
    base_model_prefix = "rnn"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    _no_split_modules = ["RecurrentStack"]

    def _init_weights(self, module):
        init_module_weights(module, self.config)

    def _get_resized_lm_head(self, old_lm_head, new_num_tokens=None, transposed=False, mean_resizing=True):
        """transformers' `resize_token_embeddings` builds a plain `nn.Linear` output layer; an untied rnn_hf one stays
        a `DecodingLinear` (its decoding fast path), holding the resized parameters."""
        new_lm_head = super()._get_resized_lm_head(old_lm_head, new_num_tokens, transposed, mean_resizing)
        if isinstance(old_lm_head, DecodingLinear) and type(new_lm_head) is nn.Linear:
            # the same module as a DecodingLinear: its parameters and transformers' flags on it (initialized) kept
            new_lm_head.__class__ = DecodingLinear
            new_lm_head._transposed = None
        return new_lm_head


class RnnModel(RnnPreTrainedModel):
    """Embeddings and the recurrent stack: returns per-position outputs and the final recurrent state."""

    def __init__(self, config: RnnConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=None)
        self.embedding_dropout = EmbeddingDropout(config.embedding_dropout)
        self.input_dropout = LockedDropout(config.input_dropout)
        self.recurrent = RecurrentStack(
            input_size=config.embedding_size,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            cell_type=config.cell_type,
            bidirectional=config.bidirectional,
            hidden_dropout=config.hidden_dropout,
            weight_dropout=config.weight_dropout,
            recurrent_initializer=config.recurrent_initializer,
            forget_gate_bias=config.forget_gate_bias,
        )
        self.output_dropout = LockedDropout(config.output_dropout)
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings

    def set_input_embeddings(self, new_embeddings):
        self.embeddings = new_embeddings

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        cache: RnnCache | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        position_ids: torch.LongTensor | None = None,
        **kwargs,
    ) -> tuple | RnnModelOutput:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
            Token ids in `[0, vocab_size)`.
        attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
            1 for present tokens, 0 for absent ones (padding anywhere, dropped tokens): the state passes over an
            absent position unchanged, in both directions, and its outputs are zeros. Every row needs one token.
            With a `cache`, the mask may also cover the positions the cache has seen, as transformers' masks do: its
            last `sequence_length` columns are used.
        cache (`RnnCache`, *optional*):
            State to start from, as returned by a previous call (unidirectional models only); it is updated.
        position_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            A recurrent network's positions are its order and the attention mask says which are present, so these
            are only checked when no mask is given: ids that restart within a row (sequences packed by
            `DataCollatorWithFlattening`) are refused, since the state would run from one sequence into the next.
        """
        cache = cache_argument(cache, kwargs)
        check_keyword_arguments(self, kwargs)
        # In training the state is only wanted when asked for (truncated BPTT passes use_cache=True).
        use_cache = use_cache if use_cache is not None else (self.config.use_cache and not self.training)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict

        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Give exactly one of `input_ids` or `inputs_embeds`.")
        if input_ids is not None:
            check_input_ids(input_ids, self.config.vocab_size)
            inputs_embeds = self.embedding_dropout(self.embeddings, input_ids)  # (B, T, E)
        elif inputs_embeds.dim() != 3 or inputs_embeds.size(1) == 0:
            raise ValueError(
                "`inputs_embeds` must have shape (batch_size, sequence_length >= 1, embedding_size), "
                f"got {tuple(inputs_embeds.shape)}."
            )
        seq_len = inputs_embeds.size(1)
        if cache is not None and attention_mask is not None and attention_mask.dim() == 2:
            # a mask spanning the positions the cache has seen too: only the new positions' columns count
            attention_mask = attention_mask[:, -seq_len:]
        check_same_shape("attention_mask", attention_mask, inputs_embeds.shape[:2])
        if position_ids is not None and attention_mask is None:
            check_position_ids(position_ids, inputs_embeds.shape[:2])
        if cache is not None:
            if self.config.bidirectional:
                raise ValueError(
                    "`cache` cannot continue a bidirectional model: its backward pass needs the future."
                )
            if not cache.is_empty and cache.batch_size != inputs_embeds.size(0):
                raise ValueError(
                    f"`cache` holds {cache.batch_size} sequences but the input has {inputs_embeds.size(0)} rows."
                )

        hidden_states = self.input_dropout(inputs_embeds)
        last_hidden_state, layer_outputs, new_cache = self.recurrent(
            hidden_states, attention_mask, cache, output_hidden_states, need_final_state=use_cache
        )
        last_hidden_state = self.output_dropout(last_hidden_state)  # (B, T, D*H)
        all_hidden_states = (inputs_embeds,) + layer_outputs if output_hidden_states else None
        new_cache = new_cache if use_cache else None
        if not return_dict:
            return tuple(v for v in (last_hidden_state, new_cache, all_hidden_states) if v is not None)
        return RnnModelOutput(
            last_hidden_state=last_hidden_state, cache=new_cache, hidden_states=all_hidden_states
        )


class RnnLMHead(nn.Module):
    """Recurrent output -> vocabulary scores, through a projection to the embedding width when weights are tied.
    Both are `DecodingLinear`s: `nn.Linear` with a faster path for decoding steps on a CPU."""

    def __init__(self, config: RnnConfig):
        super().__init__()
        decoder_in = config.output_size
        self.projection = None
        if config.tie_word_embeddings and config.output_size != config.embedding_size:
            self.projection = DecodingLinear(config.output_size, config.embedding_size, bias=False)
            decoder_in = config.embedding_size
        self.decoder = DecodingLinear(decoder_in, config.vocab_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:  # (B, T, D*H) -> (B, T, V)
        if self.projection is not None:
            hidden_states = self.projection(hidden_states)  # (B, T, E)
        return self.decoder(hidden_states)


class RnnGenerationMixin(GenerationMixin):
    """`generate` for a model whose forward makes and returns its `RnnCache` (the causal LM, the seq2seq decoder)."""

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # forward makes the RnnCache: an attention DynamicCache cannot hold a recurrent state

    def _update_model_kwargs_for_generation(self, outputs, model_kwargs, *args, **kwargs):
        model_kwargs = super()._update_model_kwargs_for_generation(outputs, model_kwargs, *args, **kwargs)
        if outputs.cache is not None:  # transformers 5.17 looks for `cache_params` only in Mamba-named models
            model_kwargs[GENERATE_CACHE_NAME] = outputs.cache
        return model_kwargs


class RnnForCausalLM(RnnPreTrainedModel, RnnGenerationMixin):
    """Next-token language model. `generate` carries the recurrent state: O(1) work per new token."""

    _tied_weights_keys = {"lm_head.decoder.weight": "rnn.embeddings.weight"}
    _is_stateful = True

    def __init__(self, config: RnnConfig):
        if config.bidirectional:
            raise ValueError(
                "`bidirectional=True` cannot be used by RnnForCausalLM: a causal language model must not see the "
                "tokens it predicts. Use RnnForMaskedLM for a bidirectional encoder."
            )
        super().__init__(config)
        self.rnn = RnnModel(config)
        self.lm_head = RnnLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head.decoder

    def set_output_embeddings(self, new_embeddings):
        self.lm_head.decoder = new_embeddings

    def prepare_inputs_for_generation(
        self,
        input_ids: torch.LongTensor,
        next_sequence_length: int | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        is_first_iteration: bool | None = False,
        **kwargs,
    ) -> dict:
        """The inputs of one `generate` step: only what the state has not seen, and every other keyword unchanged.

        transformers' own version does the same for attention models, plus work a recurrent state does not need
        (mask conversion, device moves, a signature inspection per step for out-of-tree models: ~0.4 ms per
        token). After the prompt, one new token per step; the state already holds the rest, so the attention mask
        and position ids are dropped. A prompt that continues a non-empty cache is cut to the positions it has not
        seen.
        """
        cache = kwargs.get("cache") if kwargs.get("cache") is not None else kwargs.get("cache_params")
        has_state = (
            isinstance(cache, RnnCache) and not cache.is_empty and kwargs.get("use_cache") is not False
        )
        embeds_first = inputs_embeds is not None and is_first_iteration
        if has_state and is_first_iteration:  # transformers >= 5.25 computes the unseen length itself
            name, prompt = ("inputs_embeds", inputs_embeds) if embeds_first else ("input_ids", input_ids)
            if next_sequence_length is None:
                next_sequence_length = prompt.size(1) - cache.get_seq_length()
            if next_sequence_length < 1:
                raise ValueError(
                    f"The cache has seen {cache.get_seq_length()} positions but `{name}` has only "
                    f"{prompt.size(1)}: pass the whole sequence (seen and new positions) to continue it."
                )
        if embeds_first:
            embeds = (
                inputs_embeds if next_sequence_length is None else inputs_embeds[:, -next_sequence_length:]
            )
            model_inputs = {"input_ids": None, "inputs_embeds": embeds}
        else:
            ids = input_ids if next_sequence_length is None else input_ids[:, -next_sequence_length:]
            model_inputs = {"input_ids": ids}
        if attention_mask is not None and not has_state:
            model_inputs["attention_mask"] = attention_mask
        for key, value in kwargs.items():
            if key != "labels" and key not in model_inputs and not (has_state and key == "position_ids"):
                model_inputs[key] = value
        return model_inputs

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        cache: RnnCache | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int = 0,
        position_ids: torch.LongTensor | None = None,
        **kwargs,
    ) -> tuple | RnnCausalLMOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Token ids (usually `input_ids` themselves; shifted inside the model) or -100 to ignore a position.
            For truncated BPTT over a stream, pass already-shifted targets as `shift_labels` instead.
        logits_to_keep (`int`, *optional*, defaults to 0):
            Compute logits for the last `logits_to_keep` positions only (0: all positions).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        cache = cache_argument(cache, kwargs)
        shift_labels = kwargs.pop("shift_labels", None)
        check_keyword_arguments(self, kwargs, LOSS_KWARGS)
        if input_ids is not None:
            check_same_shape("labels", labels, input_ids.shape)
            check_same_shape("shift_labels", shift_labels, input_ids.shape)
        outputs = self.rnn(
            input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            return_dict=False,  # a tuple: no output object to build at every decoding step
        )
        hidden_states, new_cache, all_hidden_states = split_backbone_outputs(outputs)
        if logits_to_keep:
            hidden_states = hidden_states[:, -logits_to_keep:]
        logits = self.lm_head(hidden_states)  # (B, T, V)

        loss = None
        if labels is not None or shift_labels is not None:
            if shift_labels is not None:
                shift_labels = shift_labels.contiguous()
            check_token_labels(labels if labels is not None else shift_labels, self.config.vocab_size)
            loss = self.loss_function(
                logits, labels, vocab_size=self.config.vocab_size, shift_labels=shift_labels, **kwargs
            )

        if not return_dict:
            output = tuple(v for v in (logits, new_cache, all_hidden_states) if v is not None)
            return ((loss,) + output) if loss is not None else output
        return RnnCausalLMOutput(loss=loss, logits=logits, cache=new_cache, hidden_states=all_hidden_states)


class RnnForMaskedLM(RnnPreTrainedModel):
    """Masked language model on a bidirectional encoder (works with `DataCollatorForLanguageModeling`)."""

    _tied_weights_keys = {"lm_head.decoder.weight": "rnn.embeddings.weight"}

    def __init__(self, config: RnnConfig):
        if not config.bidirectional:
            raise ValueError(
                "RnnForMaskedLM needs `bidirectional=True`: a unidirectional model cannot see the right context of "
                "a masked token. Use RnnForCausalLM for a unidirectional language model."
            )
        super().__init__(config)
        self.rnn = RnnModel(config)
        self.lm_head = RnnLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head.decoder

    def set_output_embeddings(self, new_embeddings):
        self.lm_head.decoder = new_embeddings

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        position_ids: torch.LongTensor | None = None,
        **kwargs,
    ) -> tuple | MaskedLMOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            The original ids at masked positions, -100 elsewhere.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        check_keyword_arguments(self, kwargs, LOSS_KWARGS)
        if input_ids is not None:
            check_same_shape("labels", labels, input_ids.shape)
        outputs = self.rnn(
            input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            position_ids=position_ids,
            use_cache=False,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.lm_head(outputs.last_hidden_state)  # (B, T, V)
        loss = None
        if labels is not None:
            check_token_labels(labels, self.config.vocab_size)
            loss = self.loss_function(logits, labels, vocab_size=self.config.vocab_size, **kwargs)
        if not return_dict:
            output = tuple(v for v in (logits, outputs.hidden_states) if v is not None)
            return ((loss,) + output) if loss is not None else output
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


class RnnForSequenceClassification(RnnPreTrainedModel):
    """Pooled recurrent features -> dropout -> linear (or ULMFiT's head with `classifier_hidden_size`): single-label,
    multi-label or regression (`problem_type`)."""

    def __init__(self, config: RnnConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.rnn = RnnModel(config)
        pooled_size = config.output_size * (3 if config.classifier_pooling == "concat" else 1)
        if config.classifier_hidden_size is None:
            self.dropout = nn.Dropout(config.classifier_dropout)
            self.classifier = nn.Linear(pooled_size, config.num_labels)
        else:
            self.dropout = nn.Identity()  # the head drops out before each of its layers
            self.classifier = RnnClassificationHead(
                pooled_size,
                config.classifier_hidden_size,
                config.num_labels,
                config.classifier_dropout,
                config.classifier_norm,
            )
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        position_ids: torch.LongTensor | None = None,
        **kwargs,
    ) -> tuple | SequenceClassifierOutput:
        r"""
        labels (`torch.Tensor`, *optional*):
            Class ids in `[0, num_labels)` of shape `(batch_size,)`; floats of shape `(batch_size, num_labels)` for
            `problem_type="multi_label_classification"` or `(batch_size,)` for regression.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        check_keyword_arguments(self, kwargs, LOSS_KWARGS)
        length = (input_ids if input_ids is not None else inputs_embeds).size(1)
        if self.config.classifier_bptt is not None and length > self.config.classifier_bptt:
            if output_hidden_states:
                raise ValueError(
                    "`output_hidden_states` is not available when `classifier_bptt` reads the input in chunks."
                )
            outputs = self.read_in_chunks(input_ids, attention_mask, inputs_embeds)
            attention_mask = outputs.attention_mask
        else:
            outputs = self.rnn(
                input_ids,
                attention_mask=attention_mask,
                inputs_embeds=inputs_embeds,
                position_ids=position_ids,
                use_cache=False,
                output_hidden_states=output_hidden_states,
                return_dict=True,
            )
        pooled = pool_sequence(
            outputs.last_hidden_state,
            attention_mask,
            self.config.classifier_pooling,
            self.config.bidirectional,
        )
        logits = self.classifier(self.dropout(pooled))  # (B, num_labels)

        loss = None
        if labels is not None:
            labels = sequence_labels(labels, logits, self.config)
            loss = self.loss_function(labels, logits, self.config, **kwargs)

        if not return_dict:
            output = tuple(v for v in (logits, outputs.hidden_states) if v is not None)
            return ((loss,) + output) if loss is not None else output
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)

    def read_in_chunks(
        self,
        input_ids: torch.LongTensor | None,
        attention_mask: torch.Tensor | None,
        inputs_embeds: torch.FloatTensor | None,
    ) -> "ChunkedOutput":
        """ULMFiT's BPT3C: the backbone reads `classifier_bptt` tokens at a time, the state carried; a chunk that
        holds none of any row's last `classifier_grad_length` tokens runs without a graph. Returns every position's
        output and the mask they are pooled under: each row's present tokens are moved to its front first (pooling
        does not see the order), so a row whose tokens are all read gets a placeholder token, whose output is left
        out."""
        inputs = input_ids if input_ids is not None else inputs_embeds
        batch_size, length = inputs.shape[:2]
        layout = PresentTokens.from_mask(attention_mask, length)
        if layout is not None:  # each row's present tokens to its front, padding after them
            index = layout.order if inputs.dim() == 2 else layout.order[:, :, None].expand_as(inputs)
            inputs = inputs.gather(1, index)
            positions = torch.arange(length, device=inputs.device)[None, :]
            attention_mask = (positions < layout.lengths[:, None]).long()  # (B, T)
            shortest = int(layout.lengths.min())
        else:
            attention_mask = torch.ones(batch_size, length, dtype=torch.long, device=inputs.device)
            shortest = length
        bptt, grad_length = self.config.classifier_bptt, self.config.classifier_grad_length
        # every row's last `grad_length` tokens lie at or after the shortest row's
        grad_from = 0 if grad_length is None else max(0, shortest - grad_length)
        cache, chunks = None, []
        for start in range(0, length, bptt):
            chunk_mask = attention_mask[:, start : start + bptt]
            # rows whose tokens are all read: a placeholder keeps them going
            done = chunk_mask[:, 0] == 0  # (B,)
            if bool(done.any()):
                chunk_mask = chunk_mask.clone()
                chunk_mask[done, 0] = 1
            chunk = inputs[:, start : start + bptt]
            with torch.set_grad_enabled(torch.is_grad_enabled() and start + chunk.size(1) > grad_from):
                outputs = self.rnn(
                    chunk if input_ids is not None else None,
                    attention_mask=None if bool(chunk_mask.all()) else chunk_mask,
                    inputs_embeds=chunk if input_ids is None else None,
                    cache=cache,
                    use_cache=True,
                    return_dict=True,
                )
            cache = outputs.cache
            chunks.append(outputs.last_hidden_state)
        return ChunkedOutput(last_hidden_state=torch.cat(chunks, dim=1), attention_mask=attention_mask)


@dataclass
class ChunkedOutput(ModelOutput):
    """`RnnForSequenceClassification.read_in_chunks`: the outputs `(B, T, H)` and the mask that says which count
    (no `hidden_states`: chunked reading does not collect them)."""

    last_hidden_state: torch.FloatTensor | None = None
    attention_mask: torch.Tensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class RnnForTokenClassification(RnnPreTrainedModel):
    """Per-token labels (tagging) from the recurrent outputs; -100 marks positions to ignore."""

    def __init__(self, config: RnnConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.rnn = RnnModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.output_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        position_ids: torch.LongTensor | None = None,
        **kwargs,
    ) -> tuple | TokenClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Class ids in `[0, num_labels)`, -100 for positions to ignore (padding, sub-word continuations).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        check_keyword_arguments(self, kwargs, LOSS_KWARGS)
        if input_ids is not None:
            check_same_shape("labels", labels, input_ids.shape)
        outputs = self.rnn(
            input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            position_ids=position_ids,
            use_cache=False,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.classifier(self.dropout(outputs.last_hidden_state))  # (B, T, num_labels)
        loss = None
        if labels is not None:
            check_class_labels(labels, self.num_labels, allow_ignore=True)
            loss = self.loss_function(logits, labels, self.config, **kwargs)
        if not return_dict:
            output = tuple(v for v in (logits, outputs.hidden_states) if v is not None)
            return ((loss,) + output) if loss is not None else output
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = [
    "RnnCache",
    "RnnCausalLMOutput",
    "RnnForCausalLM",
    "RnnForMaskedLM",
    "RnnForSequenceClassification",
    "RnnForTokenClassification",
    "RnnModel",
    "RnnModelOutput",
    "RnnPreTrainedModel",
]
