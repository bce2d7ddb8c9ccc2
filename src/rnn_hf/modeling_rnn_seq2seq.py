"""RnnForSeq2SeqLM: a bidirectional LSTM/GRU encoder, a decoder with attention, and generation with its state cached.

Read top to bottom: the output, `RnnAttentionDecoder` (target embeddings, the recurrent core of `recurrent.py`,
attention over the encoder outputs, input feeding, the bridge), then the model. The encoder is an `RnnModel`, the
backbone of `RnnForMaskedLM`; the decoder has the embeddings, recurrent layers and output layer of an
`RnnForCausalLM`: `from_encoder_decoder_pretrained` starts from one of each (Ramachandran et al., 2017).

The decoder's state (each layer's `(h, c)`, and the input-feeding vector as one more layer) is an `RnnCache`, a
transformers `Cache`: `generate` carries it from step to step and reorders it for beam search, and the encoder's
outputs ride along as `encoder_outputs`, as in every transformers encoder-decoder.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, PreTrainedModel
from transformers.loss.loss_utils import ForMaskedLMLoss
from transformers.utils import ModelOutput, logging

from .configuration_rnn import RnnSeq2SeqConfig
from .layers import RnnAttention, StateBridge, pool_sequence
from .modeling_rnn import (
    LOSS_KWARGS,
    RnnForCausalLM,
    RnnGenerationMixin,
    RnnLMHead,
    RnnModel,
    RnnModelOutput,
    RnnPreTrainedModel,
    cache_argument,
    check_input_ids,
    check_keyword_arguments,
    check_token_labels,
)
from .recurrent import RecurrentStack, RnnCache
from .regularization import LockedDropout


@dataclass
class RnnSeq2SeqLMOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `(1,)`, *optional*, returned when `labels` is provided):
        Cross-entropy of the target tokens (plus `lm_loss_weight` times the decoder's language-model loss while
        training).
    logits (`torch.FloatTensor` of shape `(batch_size, target_length, target_vocab_size)`):
        Next-token scores of the decoder.
    cache (`RnnCache`):
        The decoder's recurrent state after the last target position: pass it back as `cache` with the next
        decoder token (and the same `encoder_outputs`) to continue.
    decoder_hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
        The decoder's embeddings and the output of each decoder layer, each `(batch_size, target_length, width)`.
    cross_attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_attentions=True`):
        One tensor `(batch_size, 1, target_length, source_length)`: the attention weights of every target position.
    encoder_last_hidden_state (`torch.FloatTensor` of shape `(batch_size, source_length, encoder_width)`):
        The encoder's outputs (zeros at absent source positions).
    encoder_hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
        The encoder's embeddings and the output of each encoder layer.
    decoder_attentions, encoder_attentions (always `None`):
        Self-attention weights, which recurrent layers do not have; the fields exist because `generate` reads them.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    cache: RnnCache | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_last_hidden_state: torch.FloatTensor | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_attentions: tuple[torch.FloatTensor, ...] | None = None


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """Decoder inputs from labels: `decoder_start_token_id`, then the labels but the last; -100 becomes padding."""
    shifted = labels.new_full(labels.shape, pad_token_id)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


@dataclass
class DecoderOutput:
    attentional: torch.Tensor  # (B, T, H): what the output layer reads
    top: torch.Tensor  # (B, T, H): the top recurrent layer alone (the auxiliary language model reads it)
    cache: RnnCache
    attention_weights: torch.Tensor | None  # (B, T, S); None without attention
    hidden_states: tuple[torch.Tensor, ...] | None


class RnnAttentionDecoder(nn.Module):
    """Target embeddings -> recurrent layers -> attention over the encoder outputs -> attentional vectors.

    The attentional vector is `h + tanh(W [context; h])`: Luong's combination of the context and the top layer's
    state `h`, as a residual. Started with `W = 0` (as `from_encoder_decoder_pretrained` does), the decoder computes
    exactly the language model it was initialized from, and attention grows from there. With input feeding, the
    previous attentional vector joins the embedding at the first layer's input, and the decoder steps through time
    (`RecurrentStack.step`); without it, each layer reads the whole target in one fused kernel call.
    """

    def __init__(self, config: RnnSeq2SeqConfig):
        super().__init__()
        self.input_feeding = config.input_feeding
        hidden = config.decoder_hidden_size
        self.embeddings = nn.Embedding(config.target_vocab_size, config.decoder_embedding_size)
        self.embedding_dropout = LockedDropout(config.dropout)
        self.recurrent = RecurrentStack(
            input_size=config.decoder_embedding_size + (hidden if config.input_feeding else 0),
            hidden_size=hidden,
            num_layers=config.decoder_num_layers,
            cell_type=config.cell_type,
            hidden_dropout=config.dropout,
            recurrent_initializer=config.recurrent_initializer,
            forget_gate_bias=config.forget_gate_bias,
        )
        encoder_size = config.encoder_output_size
        self.attention = self.combine = None
        if config.attention_type != "none":
            self.attention = RnnAttention(hidden, encoder_size, config.attention_type, config.attention_size)
            self.combine = nn.Linear(encoder_size + hidden, hidden)
        self.bridge = (
            StateBridge(encoder_size, hidden, self.recurrent.states_per_layer) if config.bridge else None
        )

    def initial_cache(self, encoder_summary: torch.Tensor) -> RnnCache:
        """The state before the first target token: the bridge's map of the encoder summary `(B, K)` (zeros without
        a bridge), and a zero input-feeding vector."""
        stack = self.recurrent
        counts = [stack.states_per_layer] * stack.num_layers + ([1] if self.input_feeding else [])
        cache = RnnCache(len(counts), counts)
        if self.bridge is not None:
            encoder_state = RnnCache.from_layer_states([(encoder_summary[:, None],)])
            bridged = self.bridge(encoder_state, stack.num_layers)
            for index, state in enumerate(bridged.layer_states):
                cache.update_layer_state(index, state)
        else:
            zeros = encoder_summary.new_zeros(encoder_summary.size(0), 1, stack.hidden_size)
            for index in range(stack.num_layers):
                cache.update_layer_state(index, (zeros,) * stack.states_per_layer)
        if self.input_feeding:
            feed = encoder_summary.new_zeros(encoder_summary.size(0), 1, stack.hidden_size)
            cache.update_layer_state(stack.num_layers, (feed,))
        return cache

    def attend(self, top, keys, source_mask, prepared_keys=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.attention is None:
            return top, None
        context, weights = self.attention(top, keys, source_mask, prepared_keys)  # (B, T, K), (B, T, S)
        return top + torch.tanh(self.combine(torch.cat([context, top], dim=-1))), weights

    def forward(
        self,
        embeds: torch.Tensor,  # (B, T, E)
        keys: torch.Tensor,  # (B, S, K) encoder outputs
        source_mask: torch.Tensor | None,  # (B, S) bool
        cache: RnnCache,
        output_hidden_states: bool = False,
    ) -> DecoderOutput:
        embeds = self.embedding_dropout(embeds)
        stack = self.recurrent
        if not self.input_feeding:
            top, layer_outputs, cache = stack(embeds, None, cache, output_hidden_states)
            attentional, weights = self.attend(top, keys, source_mask)
            hidden_states = (embeds,) + layer_outputs if output_hidden_states else None
            return DecoderOutput(attentional, top, cache, weights, hidden_states)

        plan = stack.step_plan(embeds.size(0)) if self.training else None
        prepared_keys = self.attention.prepare_keys(keys)
        feed = cache.layer_state(stack.num_layers)[0][:, 0]  # (B, H)
        tops, attentionals, weights, layers = [], [], [], []
        for position in range(embeds.size(1)):
            top, cache = stack.step(torch.cat([embeds[:, position], feed], dim=-1), cache, plan)  # (B, H)
            feed, step_weights = self.attend(top[:, None], keys, source_mask, prepared_keys)
            feed = feed[:, 0]
            tops.append(top)
            attentionals.append(feed)
            weights.append(step_weights)
            if output_hidden_states:  # each layer's output is its new h
                layers.append([cache.layer_state(index)[0][:, 0] for index in range(stack.num_layers)])
        cache.update_layer_state(stack.num_layers, (feed[:, None],))
        hidden_states = None
        if output_hidden_states:
            hidden_states = (embeds,) + tuple(
                torch.stack(per_layer, dim=1) for per_layer in zip(*layers, strict=True)
            )
        return DecoderOutput(
            torch.stack(attentionals, dim=1),
            torch.stack(tops, dim=1),
            cache,
            torch.cat(weights, dim=1),
            hidden_states,
        )


class RnnEncoder(RnnModel):
    """The encoder: an `RnnModel` (so a masked-LM backbone loads into it) with the signature `generate` inspects to
    pick what to pass an encoder: the source, its mask, and `output_attentions` (there is no self-attention, so
    nothing to return); no `**kwargs`, so `generate` keeps `labels` and decoder arguments away from it."""

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        position_ids: torch.LongTensor | None = None,
    ) -> tuple | RnnModelOutput:
        return super().forward(
            input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            use_cache=False,
            output_hidden_states=output_hidden_states,
            return_dict=return_dict,
            position_ids=position_ids,
        )


class RnnSeq2SeqPreTrainedModel(RnnPreTrainedModel):
    config: RnnSeq2SeqConfig
    config_class = RnnSeq2SeqConfig
    base_model_prefix = "model"
    _no_split_modules = ["RecurrentStack", "RnnEncoder"]


class RnnForSeq2SeqLM(RnnSeq2SeqPreTrainedModel, RnnGenerationMixin):
    """Encoder-decoder with attention: `RnnModel` reads the source, `RnnAttentionDecoder` writes the target.

    A transformers seq2seq model: `labels` (with -100 to ignore; shifted right behind `decoder_start_token_id` to
    make `decoder_input_ids`), `get_encoder()` and `encoder_outputs` reuse, `generate` (greedy, sampling, beam
    search) with the decoder's state in an `RnnCache`, `Seq2SeqTrainer` with `DataCollatorForSeq2Seq`. Source
    padding, on either side, never changes an output: absent source positions are skipped by the encoder and the
    attention.
    """

    _is_stateful = True
    # every weight that may be tied; `get_expanded_tied_weights_keys` says which are, from the config
    _tied_weights_keys = {
        "lm_head.decoder.weight": "decoder.embeddings.weight",
        "decoder.embeddings.weight": "encoder.embeddings.weight",
    }

    def __init__(self, config: RnnSeq2SeqConfig):
        super().__init__(config)
        self.encoder = RnnEncoder(config.encoder_config())
        self.decoder = RnnAttentionDecoder(config)
        self.output_dropout = LockedDropout(config.dropout)
        self.lm_head = RnnLMHead(config.decoder_config())
        self.post_init()

    # ------------------------------------------------------------------ transformers' accessors

    def get_encoder(self, modality=None):
        return self.encoder

    def get_decoder(self, modality=None):
        return self.decoder

    def get_input_embeddings(self):
        return self.encoder.embeddings

    def set_input_embeddings(self, new_embeddings):
        self.encoder.embeddings = new_embeddings

    def get_output_embeddings(self):
        return self.lm_head.decoder

    def set_output_embeddings(self, new_embeddings):
        self.lm_head.decoder = new_embeddings

    def get_expanded_tied_weights_keys(self, all_submodels: bool = False) -> dict:
        """The decoder's output layer reads its embeddings (`tie_word_embeddings`); with `share_embeddings` both are
        the encoder's."""
        if all_submodels:
            return super().get_expanded_tied_weights_keys(all_submodels=True)
        source = "encoder.embeddings.weight"
        tied = {"decoder.embeddings.weight": source} if self.config.share_embeddings else {}
        if self.config.tie_word_embeddings:
            tied["lm_head.decoder.weight"] = (
                source if self.config.share_embeddings else "decoder.embeddings.weight"
            )
        return tied

    def resize_token_embeddings(
        self,
        new_num_tokens: int | None = None,
        pad_to_multiple_of: int | None = None,
        mean_resizing: bool = True,
    ) -> nn.Embedding:
        """transformers' `resize_token_embeddings` for a model with one vocabulary on both sides (`vocab_size ==
        target_vocab_size`, e.g. after adding tokens to a shared tokenizer): the encoder's and the decoder's
        embeddings and the output layer are resized together, and `vocab_size`, `target_vocab_size` and the
        encoder's config follow. A model with two vocabularies raises: resize each side's embeddings itself."""
        config = self.config
        if config.vocab_size != config.target_vocab_size:
            raise ValueError(
                f"resize_token_embeddings resizes one vocabulary, and this model has two (vocab_size="
                f"{config.vocab_size}, target_vocab_size={config.target_vocab_size}): resize `encoder.embeddings` "
                "and `decoder.embeddings` / `lm_head.decoder` separately and set both sizes in the config"
            )
        if not config.share_embeddings and (new_num_tokens is not None or pad_to_multiple_of is not None):
            # the base class resizes the input (encoder) embeddings and the output layer; the decoder reads its own
            self.decoder.embeddings = self._get_resized_embeddings(
                self.decoder.embeddings, new_num_tokens, pad_to_multiple_of, mean_resizing
            )
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        config.target_vocab_size = self.encoder.config.vocab_size = embeddings.weight.shape[0]
        return embeddings

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """What `DataCollatorForSeq2Seq` calls to build `decoder_input_ids`."""
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    # ------------------------------------------------------------------ initialization from pretraining

    @classmethod
    def from_encoder_decoder_pretrained(
        cls,
        encoder_pretrained_model_name_or_path: str | Path | PreTrainedModel,
        decoder_pretrained_model_name_or_path: str | Path | PreTrainedModel,
        **config_overrides,
    ) -> "RnnForSeq2SeqLM":
        """An encoder-decoder whose encoder is a pretrained `RnnModel` (e.g. the backbone of an `RnnForMaskedLM`,
        bidirectional) and whose decoder is a pretrained `RnnForCausalLM`: embeddings, recurrent layers and output
        layer are copied; the weights that read the input-feeding vector, the attention's combination layer and
        the bridge start at zero, so that before fine-tuning the decoder computes the language model exactly.

        Args:
            encoder_pretrained_model_name_or_path: A checkpoint folder (or Hub id) of any rnn_hf text model, or the
                model itself; its backbone becomes the encoder.
            decoder_pretrained_model_name_or_path: A causal-LM checkpoint folder (or Hub id), or the model itself.
            config_overrides: Other `RnnSeq2SeqConfig` arguments (`attention_type`, `input_feeding`, `dropout`,
                `lm_loss_weight`, ...); the sizes come from the two checkpoints.
        """
        encoder = encoder_pretrained_model_name_or_path
        if not isinstance(
            encoder, PreTrainedModel
        ):  # the backbone only: the LM head's weights are not wanted
            verbosity = logging.get_verbosity()
            logging.set_verbosity_error()
            encoder = RnnModel.from_pretrained(encoder)
            logging.set_verbosity(verbosity)
        encoder = encoder.rnn if hasattr(encoder, "rnn") else encoder
        decoder = decoder_pretrained_model_name_or_path
        if not isinstance(decoder, PreTrainedModel):
            if getattr(AutoConfig.from_pretrained(decoder), "bidirectional", False):
                raise ValueError(
                    f"The decoder checkpoint {decoder} is bidirectional (a masked LM?): the decoder must be an "
                    "RnnForCausalLM, which reads left to right."
                )
            decoder = RnnForCausalLM.from_pretrained(decoder)
        if not isinstance(encoder, RnnModel) or not isinstance(decoder, RnnForCausalLM):
            raise TypeError(
                "from_encoder_decoder_pretrained needs an rnn_hf text model as the encoder (got "
                f"{type(encoder).__name__}) and an RnnForCausalLM as the decoder (got {type(decoder).__name__})."
            )
        enc, dec = encoder.config, decoder.config
        if enc.cell_type != dec.cell_type:
            raise ValueError(
                f"The encoder is an {enc.cell_type} and the decoder a {dec.cell_type}: use one cell."
            )
        if enc.pad_token_id != dec.pad_token_id:
            raise ValueError(
                f"The encoder's pad_token_id ({enc.pad_token_id}) differs from the decoder's ({dec.pad_token_id}): "
                "both tokenizers must pad with the same id."
            )
        settings = dict(
            cell_type=enc.cell_type,
            vocab_size=enc.vocab_size,
            target_vocab_size=dec.vocab_size,
            embedding_size=enc.embedding_size,
            hidden_size=enc.hidden_size,
            num_layers=enc.num_layers,
            encoder_bidirectional=enc.bidirectional,
            decoder_embedding_size=dec.embedding_size,
            decoder_hidden_size=dec.hidden_size,
            decoder_num_layers=dec.num_layers,
            tie_word_embeddings=dec.tie_word_embeddings,
            pad_token_id=dec.pad_token_id,
            bos_token_id=dec.bos_token_id,
            eos_token_id=dec.eos_token_id,
        )
        settings.update(config_overrides)
        model = cls(RnnSeq2SeqConfig(**settings))
        with torch.no_grad():
            model.encoder.load_state_dict(encoder.state_dict())
            target = model.decoder
            target.embeddings.weight.copy_(decoder.rnn.embeddings.weight)
            for name, param in decoder.rnn.recurrent.named_parameters():
                own = target.recurrent.get_parameter(name)
                own.zero_()
                (own[:, : param.size(1)] if param.dim() == 2 else own).copy_(param)  # feed columns stay 0
            model.lm_head.load_state_dict(decoder.lm_head.state_dict())
            for module in (target.combine, target.bridge):
                for param in module.parameters() if module is not None else ():
                    param.zero_()
        model.tie_weights()
        return model

    # ------------------------------------------------------------------ generation

    def prepare_inputs_for_generation(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        encoder_outputs: ModelOutput | None = None,
        **kwargs,
    ) -> dict:
        """One `generate` step: the decoder token the state has not seen, the source mask and encoder outputs, and
        every other keyword unchanged (the decoder's mask and positions are dropped: the state holds the past)."""
        cache = kwargs.get("cache") if kwargs.get("cache") is not None else kwargs.get("cache_params")
        has_state = (
            isinstance(cache, RnnCache) and not cache.is_empty and kwargs.get("use_cache") is not False
        )
        model_inputs = {
            "decoder_input_ids": input_ids[:, -1:] if has_state else input_ids,
            "attention_mask": attention_mask,
            "encoder_outputs": encoder_outputs,
        }
        skipped = {
            "labels",
            "decoder_attention_mask",
            "decoder_position_ids",
            "position_ids",
            "is_first_iteration",
            "next_sequence_length",
        }
        for key, value in kwargs.items():
            if key not in model_inputs and key not in skipped:
                model_inputs[key] = value
        return model_inputs

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: ModelOutput | tuple | None = None,
        cache: RnnCache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        decoder_inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> tuple | RnnSeq2SeqLMOutput:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, source_length)`):
            Source token ids in `[0, vocab_size)` (not needed when `encoder_outputs` is given).
        attention_mask (`torch.Tensor` of shape `(batch_size, source_length)`, *optional*):
            1 for present source tokens, 0 for absent ones (padding on either side): absent positions are skipped by
            the encoder and never attended to.
        decoder_input_ids (`torch.LongTensor` of shape `(batch_size, target_length)`, *optional*):
            Target-side inputs, starting with `decoder_start_token_id`. Made from `labels` when not given.
        decoder_attention_mask (`torch.Tensor`, *optional*):
            Accepted for `DataCollatorForSeq2Seq`; only right padding is allowed (the decoder reads left to right, so
            padding after a row's tokens changes nothing before it; mark its labels -100).
        encoder_outputs (`ModelOutput` or `tuple`, *optional*):
            The encoder's outputs (`last_hidden_state` first), to reuse one encoding for several decoder calls.
        cache (`RnnCache`, *optional*):
            The decoder state returned by a previous call with the same source: continue from it.
        labels (`torch.LongTensor` of shape `(batch_size, target_length)`, *optional*):
            Target ids in `[0, target_vocab_size)`, -100 to ignore a position. Not shifted: `logits[:, t]` predicts
            `labels[:, t]`.
        output_attentions (`bool`, *optional*):
            Return the attention weights as `cross_attentions`.
        """
        cache = cache_argument(cache, kwargs)
        check_keyword_arguments(self, kwargs, LOSS_KWARGS)
        config = self.config
        return_dict = return_dict if return_dict is not None else config.return_dict
        use_cache = use_cache if use_cache is not None else (config.use_cache and not self.training)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        )

        if labels is not None:
            if labels.dim() != 2:
                raise ValueError(
                    f"`labels` must have shape (batch_size, target_length), got {tuple(labels.shape)}."
                )
            check_token_labels(labels, config.target_vocab_size)
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        if (decoder_input_ids is None) == (decoder_inputs_embeds is None):
            raise ValueError(
                "Give the decoder's inputs: `labels` (shifted right behind decoder_start_token_id="
                f"{config.decoder_start_token_id} to make `decoder_input_ids`), or exactly one of `decoder_input_ids` "
                "and `decoder_inputs_embeds`."
            )
        if decoder_input_ids is not None:
            check_input_ids(decoder_input_ids, config.target_vocab_size, name="decoder_input_ids")
            embeds = self.decoder.embeddings(decoder_input_ids)  # (B, T, E)
        else:
            embeds = decoder_inputs_embeds
        if labels is not None and tuple(labels.shape) != tuple(embeds.shape[:2]):
            raise ValueError(
                f"`labels` has shape {tuple(labels.shape)} but the decoder inputs have {tuple(embeds.shape[:2])}."
            )
        if decoder_attention_mask is not None:
            check_right_padding(decoder_attention_mask, embeds.shape[:2])

        if encoder_outputs is None:
            encoder_outputs = self.encoder(
                input_ids,
                attention_mask=attention_mask,
                inputs_embeds=inputs_embeds,
                output_hidden_states=output_hidden_states,
                return_dict=True,
            )
        elif not isinstance(encoder_outputs, ModelOutput):
            encoder_outputs = RnnModelOutput(
                last_hidden_state=encoder_outputs[0],
                hidden_states=encoder_outputs[1] if len(encoder_outputs) > 1 else None,
            )
        keys = encoder_outputs.last_hidden_state  # (B, S, K)
        if keys.size(0) != embeds.size(0):
            raise ValueError(
                f"The source has {keys.size(0)} rows but the decoder inputs have {embeds.size(0)}."
            )
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(keys.shape[:2]):
            raise ValueError(
                f"`attention_mask` has shape {tuple(attention_mask.shape)} but the source has {tuple(keys.shape[:2])}."
            )
        source_mask = attention_mask.bool() if attention_mask is not None else None

        if cache is None or cache.is_empty:
            summary = pool_sequence(keys, attention_mask, "last", config.encoder_bidirectional)  # (B, K)
            cache = self.decoder.initial_cache(summary)
        elif cache.batch_size != embeds.size(0):
            raise ValueError(
                f"`cache` holds {cache.batch_size} sequences but the decoder inputs have {embeds.size(0)}."
            )
        decoded = self.decoder(embeds, keys, source_mask, cache, output_hidden_states)
        logits = self.lm_head(self.output_dropout(decoded.attentional))  # (B, T, V)

        loss = None
        if labels is not None:
            loss = ForMaskedLMLoss(logits, labels, config.target_vocab_size, **kwargs)
            if config.lm_loss_weight > 0 and self.training:
                lm_logits = self.lm_head(self.output_dropout(decoded.top))
                loss = loss + config.lm_loss_weight * ForMaskedLMLoss(
                    lm_logits, labels, config.target_vocab_size, **kwargs
                )

        new_cache = decoded.cache if use_cache else None
        if output_attentions and decoded.attention_weights is None:
            raise ValueError(
                "This model has no attention (`attention_type='none'`): it cannot `output_attentions`."
            )
        cross_attentions = (decoded.attention_weights[:, None],) if output_attentions else None
        output = RnnSeq2SeqLMOutput(
            loss=loss,
            logits=logits,
            cache=new_cache,
            decoder_hidden_states=decoded.hidden_states,
            cross_attentions=cross_attentions,
            encoder_last_hidden_state=keys,
            encoder_hidden_states=encoder_outputs.get("hidden_states") if output_hidden_states else None,
        )
        return output if return_dict else output.to_tuple()


def check_right_padding(mask: torch.Tensor, shape: torch.Size) -> None:
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(
            f"`decoder_attention_mask` has shape {tuple(mask.shape)} but the decoder inputs have {tuple(shape)}."
        )
    mask = mask.bool()
    if bool((~mask[:, :-1] & mask[:, 1:]).any()):
        raise ValueError(
            "`decoder_attention_mask` may only mark right padding (1s, then 0s): the decoder reads the target left "
            "to right from decoder_start_token_id."
        )


__all__ = [
    "RnnAttentionDecoder",
    "RnnEncoder",
    "RnnForSeq2SeqLM",
    "RnnSeq2SeqLMOutput",
    "RnnSeq2SeqPreTrainedModel",
]
