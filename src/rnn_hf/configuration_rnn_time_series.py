"""Configuration of the LSTM/GRU time-series models: forecasting, reconstruction and series classification."""

from transformers import PreTrainedConfig

from .configuration_rnn import check_common_arguments

DISTRIBUTION_OUTPUTS = ("student_t", "normal", "negative_binomial")
LOSSES = ("nll", "mse")
SCALINGS = ("mean", "std", None)
RECONSTRUCTION_LOSSES = ("mse", "normal")

# This family's classes, all in modeling_rnn_time_series.py (see configuration_rnn.AUTO_MAP).
TIME_SERIES_AUTO_MAP = {
    "AutoConfig": "configuration_rnn_time_series.RnnTimeSeriesConfig",
    "AutoModel": "modeling_rnn_time_series.RnnTimeSeriesModel",
    "AutoModelForTimeSeriesPrediction": "modeling_rnn_time_series.RnnForTimeSeriesPrediction",
    "AutoModelForSequenceClassification": "modeling_rnn_time_series.RnnForTimeSeriesClassification",
}


class RnnTimeSeriesConfig(PreTrainedConfig):
    r"""
    Configuration of the LSTM/GRU time-series models: [`RnnForTimeSeriesPrediction`] (DeepAR, Salinas et al.
    2020), [`RnnForSequenceReconstruction`] (EncDec-AD, Malhotra et al. 2016) and
    [`RnnForTimeSeriesClassification`], which share one backbone, [`RnnTimeSeriesModel`]: at each time step it reads
    the lagged values (scaled), the time features and the static features, so that a forecaster's or an
    autoencoder's backbone starts a classifier. Field names follow transformers' `TimeSeriesTransformerConfig`.

    Args:
        prediction_length (`int`, *optional*):
            Number of future steps the forecaster predicts. Required by [`RnnForTimeSeriesPrediction`].
        context_length (`int`, *optional*):
            Number of past steps the forecaster reads (its scale comes from them). None: `prediction_length`.
            `past_values` then holds `context_length + max(lags_sequence)` steps, as in transformers.
        input_size (`int`, *optional*, defaults to 1):
            Number of variates per time step (1: univariate; values of shape `(batch, time)`, else
            `(batch, time, input_size)`).
        lags_sequence (`list[int]`, *optional*, defaults to `[1, 2, 3, 4, 5, 6, 7]`):
            The lags of the values read at each step: step `t` reads `x[t - lag]` for each lag (all >= 1), and
            predicts `x[t]`.
        scaling (`str` or `None`, *optional*, defaults to `"mean"`):
            Per-window scaling computed from the observed values: `"mean"` (divide by the mean absolute value,
            DeepAR), `"std"` (subtract the mean, divide by the standard deviation) or None (raw values).
            `log(scale)` and `log(1 + |loc|)` are static features of every step.
        distribution_output (`str`, *optional*, defaults to `"student_t"`):
            The forecaster's distribution: `"student_t"`, `"normal"` or `"negative_binomial"` (counts).
        loss (`str`, *optional*, defaults to `"nll"`):
            `"nll"`: negative log-likelihood of the distribution; `"mse"`: a point forecaster (mean squared error
            on scaled values, one deterministic path from `generate`).
        num_time_features (`int`, *optional*, defaults to 0):
            Number of known time features per step (`past_time_features`, `future_time_features`).
        num_static_categorical_features (`int`, *optional*, defaults to 0):
            Number of static categorical features per series (embedded).
        cardinality (`list[int]`, *optional*):
            Number of values of each static categorical feature.
        embedding_dimension (`list[int]`, *optional*):
            Width of each categorical feature's embedding. None: `min(50, (cardinality + 1) // 2)` each.
        num_static_real_features (`int`, *optional*, defaults to 0):
            Number of static real features per series.
        num_parallel_samples (`int`, *optional*, defaults to 100):
            Number of sample paths `generate` draws per series.
        cell_type (`str`, *optional*, defaults to `"lstm"`):
            The recurrent cell: `"lstm"` or `"gru"`.
        hidden_size (`int`, *optional*, defaults to 40):
            Width of each recurrent layer's state (DeepAR's default).
        num_layers (`int`, *optional*, defaults to 2):
            Number of stacked recurrent layers.
        dropout (`float`, *optional*, defaults to 0.1):
            Locked dropout between recurrent layers and before the output layers.
        weight_dropout (`float`, *optional*, defaults to 0.0):
            DropConnect on the hidden-to-hidden matrices.
        reverse_target (`bool`, *optional*, defaults to `True`):
            [`RnnForSequenceReconstruction`] rebuilds the window last step first, as EncDec-AD does.
        reconstruction_loss (`str`, *optional*, defaults to `"mse"`):
            [`RnnForSequenceReconstruction`]'s loss: `"mse"` on scaled values, or `"normal"` (Gaussian negative
            log-likelihood with a predicted variance).
        classifier_pooling (`str`, *optional*, defaults to `"concat"`):
            How [`RnnForTimeSeriesClassification`] pools the steps: `"last"`, `"mean"`, `"max"` or `"concat"`.
        classifier_hidden_size (`int`, *optional*, defaults to 50):
            Width of the classifier's hidden layer (ULMFiT's head); None: one linear layer.
        classifier_dropout (`float`, *optional*, defaults to 0.1):
            Dropout in the classifier head.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal distribution that initializes the linear layers.
        embedding_init_range (`float`, *optional*, defaults to 1.0):
            Categorical embeddings are drawn uniformly from `[-embedding_init_range, embedding_init_range]`.
        recurrent_initializer (`str`, *optional*, defaults to `"orthogonal"`):
            Initialization of the hidden-to-hidden matrices (see [`RnnConfig`]).
        forget_gate_bias (`float`, *optional*, defaults to 1.0):
            Initial bias of the LSTM forget gates.

    Example:

    ```python
    >>> from rnn_hf import RnnForTimeSeriesPrediction, RnnTimeSeriesConfig

    >>> config = RnnTimeSeriesConfig(prediction_length=12, context_length=36, lags_sequence=[1, 12])
    >>> model = RnnForTimeSeriesPrediction(config)
    >>> config.past_length  # the steps `past_values` holds: the context and the longest lag before it
    48
    ```"""

    model_type = "rnn_time_series"
    attribute_map = {"num_hidden_layers": "num_layers"}

    prediction_length: int | None = None
    context_length: int | None = None
    input_size: int = 1
    lags_sequence: list[int] | None = None
    scaling: str | None = "mean"
    distribution_output: str = "student_t"
    loss: str = "nll"
    num_time_features: int = 0
    num_static_categorical_features: int = 0
    cardinality: list[int] | None = None
    embedding_dimension: list[int] | None = None
    num_static_real_features: int = 0
    num_parallel_samples: int = 100
    cell_type: str = "lstm"
    hidden_size: int = 40
    num_layers: int = 2
    dropout: float = 0.1
    weight_dropout: float = 0.0
    reverse_target: bool = True
    reconstruction_loss: str = "mse"
    classifier_pooling: str = "concat"
    classifier_hidden_size: int | None = 50
    classifier_dropout: float = 0.1
    initializer_range: float = 0.02
    embedding_init_range: float = 1.0
    recurrent_initializer: str = "orthogonal"
    forget_gate_bias: float = 1.0
    use_cache: bool = True

    def __post_init__(self, **kwargs):
        if getattr(self, "auto_map", None) is None and "auto_map" not in kwargs:
            self.auto_map = dict(TIME_SERIES_AUTO_MAP)
        if self.lags_sequence is None:
            self.lags_sequence = [1, 2, 3, 4, 5, 6, 7]
        if self.scaling is True:  # transformers' configs accept True for "mean"
            self.scaling = "mean"
        if self.context_length is None:
            self.context_length = self.prediction_length
        if self.cardinality is None:
            self.cardinality = [0] * self.num_static_categorical_features
        if self.embedding_dimension is None:
            self.embedding_dimension = [min(50, (cat + 1) // 2) for cat in self.cardinality]
        super().__post_init__(**kwargs)
        self.check_arguments()

    def check_arguments(self):
        """Raise a `ValueError` that names the first invalid argument."""
        check_common_arguments(
            self,
            ("input_size", "num_parallel_samples", "hidden_size", "num_layers"),
            ("dropout", "weight_dropout"),
        )
        for name in ("prediction_length", "context_length", "classifier_hidden_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"`{name}` must be None or a positive integer, got {value!r}.")
        for name in ("num_time_features", "num_static_categorical_features", "num_static_real_features"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}.")
        lags = self.lags_sequence
        if (
            not isinstance(lags, (list, tuple))
            or not lags
            or any(isinstance(lag, bool) or not isinstance(lag, int) or lag < 1 for lag in lags)
        ):
            raise ValueError(f"`lags_sequence` must be a non-empty list of integers >= 1, got {lags!r}.")
        if len(set(lags)) != len(lags):
            raise ValueError(f"`lags_sequence` repeats a lag: {lags!r}.")
        choices = (
            ("scaling", SCALINGS),
            ("distribution_output", DISTRIBUTION_OUTPUTS),
            ("loss", LOSSES),
            ("reconstruction_loss", RECONSTRUCTION_LOSSES),
            ("classifier_pooling", ("last", "mean", "max", "concat")),
        )
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                raise ValueError(f"`{name}` must be one of {allowed}, got {getattr(self, name)!r}.")
        if not 0.0 <= self.classifier_dropout < 1.0:
            raise ValueError(
                f"`classifier_dropout` must be a probability in [0, 1), got {self.classifier_dropout!r}."
            )
        for name in ("cardinality", "embedding_dimension"):
            values = getattr(self, name)
            if len(values) != self.num_static_categorical_features:
                raise ValueError(
                    f"`{name}` has {len(values)} entries but `num_static_categorical_features` is "
                    f"{self.num_static_categorical_features}: give one per categorical feature."
                )
            if any(not isinstance(v, int) or v < 1 for v in values):
                raise ValueError(f"`{name}` must hold positive integers, got {values!r}.")
        if self.distribution_output == "negative_binomial" and self.scaling == "std":
            raise ValueError(
                "`distribution_output='negative_binomial'` models counts: use `scaling='mean'` or None "
                "(a shifted count is no longer a count)."
            )

    @property
    def max_lag(self) -> int:
        return max(self.lags_sequence)

    @property
    def past_length(self) -> int | None:
        """Number of steps of `past_values` the forecaster takes: the context and the longest lag before it."""
        return None if self.context_length is None else self.context_length + self.max_lag

    @property
    def static_feature_size(self) -> int:
        """Per-step width of the static features: embeddings, static reals, `log(1 + |loc|)` and `log(scale)`."""
        return sum(self.embedding_dimension) + self.num_static_real_features + 2 * self.input_size

    @property
    def feature_size(self) -> int:
        """Width of the backbone's input at each step: lagged values, time features and static features."""
        return len(self.lags_sequence) * self.input_size + self.num_time_features + self.static_feature_size

    @property
    def layer_types(self) -> list[str]:
        """Constant-size recurrent states (transformers' "linear_attention")."""
        return ["linear_attention"] * self.num_layers


__all__ = ["RnnTimeSeriesConfig"]
