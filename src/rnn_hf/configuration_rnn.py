"""RnnConfig, the configuration of every LSTM/GRU text model of rnn_hf, and RnnSeq2SeqConfig, of the
encoder-decoder."""

from transformers import PreTrainedConfig

from .layers import POOLING_TYPES
from .recurrent import CELL_TYPES, RECURRENT_INITIALIZERS

CLASSIFIER_NORMS = ("layer", "batch")
BACKBONE_DROPOUT_ARGUMENTS = (  # the AWD-LSTM regularizers of the embeddings and recurrent layers
    "embedding_dropout",
    "input_dropout",
    "hidden_dropout",
    "weight_dropout",
    "output_dropout",
)
DROPOUT_ARGUMENTS = (*BACKBONE_DROPOUT_ARGUMENTS, "classifier_dropout")


def check_common_arguments(
    config, positive_integers: tuple[str, ...], probabilities: tuple[str, ...]
) -> None:
    """The checks every rnn_hf configuration shares: the cell, sizes, dropout probabilities and initialization.
    Raises a `ValueError` that names the first invalid argument."""
    if config.cell_type not in CELL_TYPES:
        raise ValueError(f"`cell_type` must be one of {CELL_TYPES}, got {config.cell_type!r}.")
    for name in positive_integers:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    for name in probabilities:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ValueError(f"`{name}` must be a probability in [0, 1), got {value!r}.")
    if config.recurrent_initializer not in RECURRENT_INITIALIZERS:
        raise ValueError(
            f"`recurrent_initializer` must be one of {RECURRENT_INITIALIZERS}, got {config.recurrent_initializer!r}."
        )
    for name in ("initializer_range", "embedding_init_range"):
        if not getattr(config, name) > 0:
            raise ValueError(f"`{name}` must be > 0, got {getattr(config, name)!r}.")


# This family's classes, all in modeling_rnn.py: a checkpoint saved from any one head carries that file, so it loads
# into any other head with `trust_remote_code`. Each model family (configuration class) lists only its own classes.
AUTO_MAP = {
    "AutoConfig": "configuration_rnn.RnnConfig",
    "AutoModel": "modeling_rnn.RnnModel",
    "AutoModelForCausalLM": "modeling_rnn.RnnForCausalLM",
    "AutoModelForMaskedLM": "modeling_rnn.RnnForMaskedLM",
    "AutoModelForSequenceClassification": "modeling_rnn.RnnForSequenceClassification",
    "AutoModelForTokenClassification": "modeling_rnn.RnnForTokenClassification",
}


class RnnConfig(PreTrainedConfig):
    r"""
    Configuration of an LSTM or GRU language model ([`RnnModel`] and its heads), with the AWD-LSTM regularizers
    (Merity et al., 2018) and the settings of the ULMFiT classifier (Howard & Ruder, 2018).

    Args:
        cell_type (`str`, *optional*, defaults to `"lstm"`):
            The recurrent cell: `"lstm"` or `"gru"`.
        vocab_size (`int`, *optional*, defaults to 8000):
            Number of tokens in the vocabulary: the rows of the embedding matrix.
        embedding_size (`int`, *optional*, defaults to 256):
            Width of the token embeddings (the input of the first recurrent layer).
        hidden_size (`int`, *optional*, defaults to 512):
            Width of the hidden state of each recurrent layer (and of each direction when bidirectional).
        num_layers (`int`, *optional*, defaults to 2):
            Number of stacked recurrent layers.
        bidirectional (`bool`, *optional*, defaults to `False`):
            Run every layer in both directions. Required by [`RnnForMaskedLM`], rejected by [`RnnForCausalLM`].
        tie_word_embeddings (`bool`, *optional*, defaults to `True`):
            Share the embedding matrix with the output decoder of the language-model heads. When the recurrent
            output width differs from `embedding_size`, a linear projection maps it to `embedding_size` first.
        embedding_dropout (`float`, *optional*, defaults to 0.0):
            Probability of dropping a whole row of the embedding matrix (a word type) during training.
        input_dropout (`float`, *optional*, defaults to 0.0):
            Locked (variational) dropout on the embeddings: one mask per sequence, shared by all time steps.
        hidden_dropout (`float`, *optional*, defaults to 0.0):
            Locked dropout on the output of every recurrent layer but the last.
        weight_dropout (`float`, *optional*, defaults to 0.0):
            DropConnect on the hidden-to-hidden weight matrices, drawn once per forward pass.
        output_dropout (`float`, *optional*, defaults to 0.0):
            Locked dropout on the output of the last recurrent layer, before any head.
        classifier_dropout (`float`, *optional*, defaults to 0.1):
            Dropout on the pooled (or per-token) features of the classification heads.
        classifier_pooling (`str`, *optional*, defaults to `"concat"`):
            How [`RnnForSequenceClassification`] pools a sequence: `"last"` (the state at the last non-pad token;
            for a bidirectional model also the backward state at the first one), `"mean"` or `"max"` over non-pad
            positions, or `"concat"` (ULMFiT concat pooling: last, max and mean side by side).
        classifier_hidden_size (`int`, *optional*, defaults to 50):
            With a width, [`RnnForSequenceClassification`] uses ULMFiT's head: norm -> dropout -> linear to this
            width -> ReLU -> norm -> dropout -> linear (norm: `classifier_norm`). `None`: dropout -> linear.
            The defaults (concat pooling, 50, batch norm) are the recipe `rnn_hf.training.finetune` uses.
        classifier_norm (`str`, *optional*, defaults to `"batch"`):
            The normalization of ULMFiT's head: `"layer"` (per document, the same in training and inference) or
            `"batch"` (per feature, ULMFiT's own: it puts the last, max and mean pools, whose scales differ feature by
            feature, on one scale; a training batch of one document uses the running statistics).
        classifier_bptt (`int`, *optional*):
            [`RnnForSequenceClassification`] reads an input longer than this in chunks of this many tokens, the
            state carried from each to the next, and pools over every chunk (ULMFiT's BPT3C: whole documents at a
            bounded memory). `None`: one pass over the whole input.
        classifier_grad_length (`int`, *optional*):
            With `classifier_bptt`, gradients flow only through the chunks that hold some row's last this many
            tokens; the chunks before them run without a graph (their outputs still count in the pooling). `None`:
            through every chunk.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal distribution that initializes the linear layers.
        embedding_init_range (`float`, *optional*, defaults to 1.0):
            Embedding weights are drawn uniformly from `[-embedding_init_range, embedding_init_range]`. AWD-LSTM's
            0.1 suits its SGD at learning rate 30; with Adam it leaves the first layer's inputs so small that the
            model sits at the unigram plateau for a hundred steps (measured by `benchmarks/bench_lm.py`; the
            figures are in the CHANGELOG).
        recurrent_initializer (`str`, *optional*, defaults to `"orthogonal"`):
            Initialization of the hidden-to-hidden matrices: `"orthogonal"` (each gate's block), `"xavier_uniform"`,
            or `"pytorch"` (PyTorch's own uniform initialization).
        forget_gate_bias (`float`, *optional*, defaults to 0.0):
            Initial bias of the LSTM forget gate (split between the input and hidden biases). Unused by the GRU.
            1.0 (Jozefowicz et al., 2015) helps long dependencies in long runs but learned slower in minutes-long
            pretraining here (`benchmarks/bench_lm.py`; the figures are in the CHANGELOG).
        pad_token_id (`int`, *optional*, defaults to 0):
            Id of the padding token.
        bos_token_id (`int`, *optional*, defaults to 1):
            Id of the beginning-of-sequence token.
        eos_token_id (`int`, *optional*, defaults to 2):
            Id of the end-of-sequence token.
        mask_token_id (`int`, *optional*, defaults to 3):
            Id of the mask token used by masked language modelling.
        use_cache (`bool`, *optional*, defaults to `True`):
            Whether the models return their final recurrent state, which `generate` carries between steps.

    Example:

    ```python
    >>> from rnn_hf import RnnConfig, RnnForCausalLM

    >>> config = RnnConfig(cell_type="lstm", vocab_size=1000, embedding_size=64, hidden_size=128, weight_dropout=0.5)
    >>> model = RnnForCausalLM(config)
    >>> model.config.num_layers
    2
    ```"""

    model_type = "rnn"
    attribute_map = {"num_hidden_layers": "num_layers"}

    cell_type: str = "lstm"
    vocab_size: int = 8000
    embedding_size: int = 256
    hidden_size: int = 512
    num_layers: int = 2
    bidirectional: bool = False
    tie_word_embeddings: bool = True
    embedding_dropout: float = 0.0
    input_dropout: float = 0.0
    hidden_dropout: float = 0.0
    weight_dropout: float = 0.0
    output_dropout: float = 0.0
    classifier_dropout: float = 0.1
    classifier_pooling: str = "concat"
    classifier_hidden_size: int | None = 50
    classifier_norm: str = "batch"
    classifier_bptt: int | None = None
    classifier_grad_length: int | None = None
    initializer_range: float = 0.02
    embedding_init_range: float = 1.0
    recurrent_initializer: str = "orthogonal"
    forget_gate_bias: float = 0.0
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    mask_token_id: int | None = 3
    use_cache: bool = True

    def __post_init__(self, **kwargs):
        if getattr(self, "auto_map", None) is None and "auto_map" not in kwargs:
            self.auto_map = dict(AUTO_MAP)
        super().__post_init__(**kwargs)
        self.check_arguments()

    def check_arguments(self):
        """Raise a `ValueError` that names the first invalid argument."""
        check_common_arguments(
            self, ("vocab_size", "embedding_size", "hidden_size", "num_layers"), DROPOUT_ARGUMENTS
        )
        value = self.classifier_hidden_size
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"`classifier_hidden_size` must be None or a positive integer, got {value!r}.")
        if self.classifier_pooling not in POOLING_TYPES:
            raise ValueError(
                f"`classifier_pooling` must be one of {POOLING_TYPES}, got {self.classifier_pooling!r}."
            )
        if self.classifier_norm not in CLASSIFIER_NORMS:
            raise ValueError(
                f"`classifier_norm` must be one of {CLASSIFIER_NORMS}, got {self.classifier_norm!r}."
            )
        for name in ("classifier_bptt", "classifier_grad_length"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"`{name}` must be None or a positive integer, got {value!r}.")
        if self.classifier_bptt is not None and self.bidirectional:
            raise ValueError(
                "`classifier_bptt` reads in chunks with the state carried forward; a bidirectional model's "
                "backward direction needs the whole input at once: leave it None."
            )
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "mask_token_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or not 0 <= value < self.vocab_size):
                raise ValueError(
                    f"`{name}` must be None or an id in [0, vocab_size={self.vocab_size}), got {value!r}."
                )

    @property
    def layer_types(self) -> list[str]:
        """Every layer keeps a constant-size recurrent state: transformers' name for it is "linear_attention"."""
        return ["linear_attention"] * self.num_layers

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Width of the backbone's output: `hidden_size` times the number of directions."""
        return self.hidden_size * self.num_directions


ATTENTION_TYPES = ("dot", "general", "additive", "none")
SEQ2SEQ_AUTO_MAP = {
    "AutoConfig": "configuration_rnn.RnnSeq2SeqConfig",
    "AutoModelForSeq2SeqLM": "modeling_rnn_seq2seq.RnnForSeq2SeqLM",
}


class RnnSeq2SeqConfig(PreTrainedConfig):
    r"""
    Configuration of [`RnnForSeq2SeqLM`]: a bidirectional LSTM/GRU encoder and a unidirectional decoder with
    attention over the encoder outputs (Luong et al., 2015; Bahdanau et al., 2015), as OpenNMT-py and fairseq build
    their LSTM translation models.

    The encoder is an [`RnnModel`] (the backbone of [`RnnForMaskedLM`]) and the decoder's embeddings, recurrent
    layers and output layer have the shapes of an [`RnnForCausalLM`], so
    [`RnnForSeq2SeqLM.from_encoder_decoder_pretrained`] builds one from a masked-LM and a causal-LM checkpoint.

    Args:
        cell_type (`str`, *optional*, defaults to `"lstm"`):
            The recurrent cell of the encoder and the decoder: `"lstm"` or `"gru"`.
        vocab_size (`int`, *optional*, defaults to 8000):
            Size of the source vocabulary (the encoder's embeddings).
        target_vocab_size (`int`, *optional*):
            Size of the target vocabulary (the decoder's embeddings and output layer). None: `vocab_size`, one
            vocabulary for both sides.
        embedding_size (`int`, *optional*, defaults to 256):
            Width of the source token embeddings.
        hidden_size (`int`, *optional*, defaults to 256):
            Width of each encoder layer's state, per direction.
        num_layers (`int`, *optional*, defaults to 2):
            Number of encoder layers.
        encoder_bidirectional (`bool`, *optional*, defaults to `True`):
            Run the encoder in both directions.
        decoder_embedding_size (`int`, *optional*):
            Width of the target token embeddings. None: `embedding_size`.
        decoder_hidden_size (`int`, *optional*):
            Width of each decoder layer's state. None: the encoder's output width (`hidden_size` times its number of
            directions), which `attention_type="dot"` needs.
        decoder_num_layers (`int`, *optional*):
            Number of decoder layers. None: `num_layers`.
        attention_type (`str`, *optional*, defaults to `"general"`):
            How a decoder state scores an encoder output: `"dot"` (their dot product; equal widths), `"general"`
            (Luong: `h_t^T W h_s`) or `"additive"` (Bahdanau: `v^T tanh(W_q h_t + W_k h_s)`). `"none"`: no
            attention, the decoder reads the source only through the bridged final state (a sequence autoencoder,
            Dai & Le 2015; needs `bridge=True` and `input_feeding=False`).
        attention_size (`int`, *optional*):
            Width of the additive attention's hidden layer. None: `decoder_hidden_size`.
        input_feeding (`bool`, *optional*, defaults to `True`):
            Feed each step's attentional vector to the next step's first decoder layer, beside the embedding (Luong
            et al.). The decoder then runs step by step in training too; without it, one fused kernel call per
            layer reads the whole target.
        bridge (`bool`, *optional*, defaults to `True`):
            Start the decoder from a linear map of the encoder's final state (OpenNMT's bridge); `False`: from zeros.
        share_embeddings (`bool`, *optional*, defaults to `False`):
            One embedding matrix for the source and the target (one vocabulary and one embedding width).
        tie_word_embeddings (`bool`, *optional*, defaults to `True`):
            Share the decoder's embedding matrix with its output layer (through a projection when the decoder's
            width differs from `decoder_embedding_size`).
        dropout (`float`, *optional*, defaults to 0.2):
            Dropout on the embeddings, between recurrent layers and on the attentional vectors.
        lm_loss_weight (`float`, *optional*, defaults to 0.0):
            Weight of an auxiliary language-model loss: the decoder predicts each next target token from its top
            recurrent layer alone, without attention, through the same output layer (Ramachandran et al., 2017 keep
            the decoder a language model this way during fine-tuning). 0 turns it off.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal distribution that initializes the linear layers.
        embedding_init_range (`float`, *optional*, defaults to 1.0):
            Embedding weights are drawn uniformly from `[-embedding_init_range, embedding_init_range]`.
        recurrent_initializer (`str`, *optional*, defaults to `"orthogonal"`):
            Initialization of the hidden-to-hidden matrices (see [`RnnConfig`]).
        forget_gate_bias (`float`, *optional*, defaults to 0.0):
            Initial bias of the LSTM forget gates.
        pad_token_id (`int`, *optional*, defaults to 0):
            Id of the padding token, in both vocabularies.
        bos_token_id (`int`, *optional*, defaults to 1):
            Id of the beginning-of-sequence token of the target vocabulary.
        eos_token_id (`int`, *optional*, defaults to 2):
            Id of the end-of-sequence token of the target vocabulary: generation stops there.
        decoder_start_token_id (`int`, *optional*):
            The first decoder input. None: `bos_token_id`.
        use_cache (`bool`, *optional*, defaults to `True`):
            Whether the model returns the decoder's recurrent state, which `generate` carries between steps.

    Example:

    ```python
    >>> from rnn_hf import RnnForSeq2SeqLM, RnnSeq2SeqConfig

    >>> config = RnnSeq2SeqConfig(vocab_size=1000, target_vocab_size=1200, embedding_size=32, hidden_size=64)
    >>> model = RnnForSeq2SeqLM(config)
    >>> model.config.decoder_hidden_size  # the encoder's two directions side by side
    128
    ```"""

    model_type = "rnn_seq2seq"
    attribute_map = {"num_hidden_layers": "decoder_num_layers"}

    cell_type: str = "lstm"
    vocab_size: int = 8000
    target_vocab_size: int | None = None
    embedding_size: int = 256
    hidden_size: int = 256
    num_layers: int = 2
    encoder_bidirectional: bool = True
    decoder_embedding_size: int | None = None
    decoder_hidden_size: int | None = None
    decoder_num_layers: int | None = None
    attention_type: str = "general"
    attention_size: int | None = None
    input_feeding: bool = True
    bridge: bool = True
    share_embeddings: bool = False
    tie_word_embeddings: bool = True
    dropout: float = 0.2
    lm_loss_weight: float = 0.0
    initializer_range: float = 0.02
    embedding_init_range: float = 1.0
    recurrent_initializer: str = "orthogonal"
    forget_gate_bias: float = 0.0
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    decoder_start_token_id: int | None = None
    use_cache: bool = True
    is_encoder_decoder: bool = True

    def __post_init__(self, **kwargs):
        if getattr(self, "auto_map", None) is None and "auto_map" not in kwargs:
            self.auto_map = dict(SEQ2SEQ_AUTO_MAP)
        if self.target_vocab_size is None:
            self.target_vocab_size = self.vocab_size
        if self.decoder_embedding_size is None:
            self.decoder_embedding_size = self.embedding_size
        if self.decoder_hidden_size is None:
            self.decoder_hidden_size = self.hidden_size * (2 if self.encoder_bidirectional else 1)
        if self.decoder_num_layers is None:
            self.decoder_num_layers = self.num_layers
        if self.attention_size is None:
            self.attention_size = self.decoder_hidden_size
        if self.decoder_start_token_id is None:
            self.decoder_start_token_id = self.bos_token_id
        self.is_encoder_decoder = True
        super().__post_init__(**kwargs)
        self.check_arguments()

    def check_arguments(self):
        """Raise a `ValueError` that names the first invalid argument."""
        sizes = ("vocab_size", "target_vocab_size", "embedding_size", "hidden_size", "num_layers",
                 "decoder_embedding_size", "decoder_hidden_size", "decoder_num_layers", "attention_size")  # fmt: skip
        check_common_arguments(self, sizes, ("dropout",))
        if self.attention_type not in ATTENTION_TYPES:
            raise ValueError(
                f"`attention_type` must be one of {ATTENTION_TYPES}, got {self.attention_type!r}."
            )
        if self.attention_type == "none" and (self.input_feeding or not self.bridge):
            raise ValueError(
                "`attention_type='none'` reads the source through the bridge alone: set `bridge=True` and "
                "`input_feeding=False` (there is no attentional vector to feed)."
            )
        if self.attention_type == "dot" and self.decoder_hidden_size != self.encoder_output_size:
            raise ValueError(
                f"`attention_type='dot'` needs `decoder_hidden_size` ({self.decoder_hidden_size}) equal to the "
                f"encoder's output width ({self.encoder_output_size}): use 'general' or 'additive' otherwise."
            )
        if self.share_embeddings and (
            self.vocab_size != self.target_vocab_size or self.embedding_size != self.decoder_embedding_size
        ):
            raise ValueError(
                "`share_embeddings=True` needs one vocabulary and one embedding width: got vocab_size="
                f"{self.vocab_size}, target_vocab_size={self.target_vocab_size}, embedding_size="
                f"{self.embedding_size}, decoder_embedding_size={self.decoder_embedding_size}."
            )
        if not self.lm_loss_weight >= 0:
            raise ValueError(f"`lm_loss_weight` must be >= 0, got {self.lm_loss_weight!r}.")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            limit = (
                min(self.vocab_size, self.target_vocab_size)
                if name == "pad_token_id"
                else self.target_vocab_size
            )
            if value is not None and (not isinstance(value, int) or not 0 <= value < limit):
                raise ValueError(f"`{name}` must be None or an id in [0, {limit}), got {value!r}.")
        if self.decoder_start_token_id is None:
            raise ValueError("Set `decoder_start_token_id` (or `bos_token_id`): the decoder's first input.")

    def get_text_config(self, decoder=None, encoder=None) -> PreTrainedConfig:
        """transformers' view of one side of this flat encoder-decoder config. The decoder's view (`decoder=True`,
        what generation utilities read) moves each `decoder_*` field to its plain name and leaves the `decoder_*`
        name None; here both names keep the decoder's value, so `num_hidden_layers` and `layer_types` still read
        the decoder's depth. The encoder's view (`encoder=True`) keeps the plain names, and `num_hidden_layers`
        and `layer_types` (which read `decoder_num_layers`) would give the decoder's depth: there the `decoder_*`
        names take the encoder's values."""
        text_config = super().get_text_config(decoder=decoder, encoder=encoder)
        if text_config is not self and bool(decoder) != bool(encoder):
            for name in ("embedding_size", "hidden_size", "num_layers"):
                if encoder or getattr(text_config, f"decoder_{name}") is None:
                    setattr(text_config, f"decoder_{name}", getattr(text_config, name))
        return text_config

    @property
    def encoder_output_size(self) -> int:
        return self.hidden_size * (2 if self.encoder_bidirectional else 1)

    @property
    def layer_types(self) -> list[str]:
        """The decoder's layers keep constant-size recurrent states (transformers' "linear_attention")."""
        return ["linear_attention"] * self.decoder_num_layers

    def encoder_config(self) -> RnnConfig:
        """The encoder's settings as the [`RnnConfig`] of an [`RnnModel`] (a masked-LM checkpoint's backbone)."""
        return RnnConfig(
            cell_type=self.cell_type,
            vocab_size=self.vocab_size,
            embedding_size=self.embedding_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bidirectional=self.encoder_bidirectional,
            hidden_dropout=self.dropout,
            input_dropout=self.dropout,
            initializer_range=self.initializer_range,
            embedding_init_range=self.embedding_init_range,
            recurrent_initializer=self.recurrent_initializer,
            forget_gate_bias=self.forget_gate_bias,
            pad_token_id=self.pad_token_id,
            bos_token_id=None,
            eos_token_id=None,
            mask_token_id=None,
            use_cache=False,
        )

    def decoder_config(self) -> RnnConfig:
        """The decoder's sizes as the [`RnnConfig`] of the causal LM it can start from."""
        return RnnConfig(
            cell_type=self.cell_type,
            vocab_size=self.target_vocab_size,
            embedding_size=self.decoder_embedding_size,
            hidden_size=self.decoder_hidden_size,
            num_layers=self.decoder_num_layers,
            tie_word_embeddings=self.tie_word_embeddings,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            mask_token_id=None,
        )


__all__ = ["RnnConfig", "RnnSeq2SeqConfig"]
