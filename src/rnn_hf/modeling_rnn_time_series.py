"""LSTM/GRU time-series models on the shared recurrent core: a DeepAR-style probabilistic forecaster, an
EncDec-AD-style reconstruction autoencoder (anomaly scores, window embeddings) and a series classifier.

Read top to bottom: outputs, input checks, `RnnTimeSeriesPreTrainedModel`, the backbone `RnnTimeSeriesModel`
(scaling, lag, time and static features, the recurrent stack), then one class per head. The three heads share the
backbone's weights under one name (`model`), so a forecaster or an autoencoder starts a classifier.

Time steps: `past_values` holds steps `0 .. L-1`. The backbone's step `p` reads the scaled values `x[p - lag]` for
every lag of `config.lags_sequence` (all >= 1), the time features of step `p` and the static features, and its
output describes `x[p]`. It reads steps `max(lags) .. L-1`, then the future steps given, then (`read_next=True`)
one more step whose output forecasts the first value not given.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.time_series_transformer.modeling_time_series_transformer import (
    TimeSeriesFeatureEmbedder,
    TimeSeriesMeanScaler,
    TimeSeriesNOPScaler,
    TimeSeriesStdScaler,
)
from transformers.time_series_utils import NegativeBinomialOutput, NormalOutput, StudentTOutput
from transformers.utils import ModelOutput

from .configuration_rnn_time_series import RnnTimeSeriesConfig
from .layers import RnnClassificationHead, pool_sequence
from .modeling_rnn import LOSS_KWARGS, check_keyword_arguments, init_module_weights, sequence_labels
from .recurrent import RecurrentStack, RnnCache
from .regularization import LockedDropout

DISTRIBUTIONS = {
    "student_t": StudentTOutput,
    "normal": NormalOutput,
    "negative_binomial": NegativeBinomialOutput,
}
SCALERS = {"mean": TimeSeriesMeanScaler, "std": TimeSeriesStdScaler, None: TimeSeriesNOPScaler}


@dataclass
class RnnTimeSeriesModelOutput(ModelOutput):
    r"""
    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_steps, hidden_size)`):
        Output of the last recurrent layer at each step read (steps `max(lags)` onward; see the module docstring).
    cache (`RnnCache`):
        The recurrent state after the last step read.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
        The step features and every layer's outputs.
    loc (`torch.FloatTensor` of shape `(batch_size, 1, input_size)`):
        Shift of the scaling (0 for `"mean"` and no scaling).
    scale (`torch.FloatTensor` of shape `(batch_size, 1, input_size)`):
        Divisor of the scaling (1 for no scaling).
    static_features (`torch.FloatTensor` of shape `(batch_size, static_feature_size)`):
        Embedded categorical features, static reals, `log(1 + |loc|)` and `log(scale)`.
    scaled_values (`torch.FloatTensor` of shape `(batch_size, num_values, input_size)`):
        The values given (past, then future), missing ones imputed with the observed mean, then scaled.
    observed_mask (`torch.BoolTensor` of shape `(batch_size, num_values, input_size)`):
        Which of those values were observed.
    values (`torch.FloatTensor` of shape `(batch_size, num_values, input_size)`):
        The values given (past, then future), unscaled, 0 where missing.
    """

    last_hidden_state: torch.FloatTensor | None = None
    cache: RnnCache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    loc: torch.FloatTensor | None = None
    scale: torch.FloatTensor | None = None
    static_features: torch.FloatTensor | None = None
    scaled_values: torch.FloatTensor | None = None
    observed_mask: torch.BoolTensor | None = None
    values: torch.FloatTensor | None = None


@dataclass
class RnnTimeSeriesPredictionOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `(1,)`, *optional*, returned when `future_values` is given):
        Negative log-likelihood (or mean squared error of scaled values for `loss="mse"`) of every observed value
        from step `max(lags)` of the past to the end of the future, with teacher forcing.
    params (`tuple(torch.FloatTensor)`):
        The distribution's parameters at each step read, each `(batch_size, num_steps[, input_size])`; for
        `loss="mse"`, the scaled point forecasts.
    loc, scale (`torch.FloatTensor` of shape `(batch_size, 1, input_size)`):
        The scaling (see [`RnnTimeSeriesModelOutput`]).
    static_features (`torch.FloatTensor` of shape `(batch_size, static_feature_size)`):
        The static features.
    cache (`RnnCache`):
        The recurrent state after the last step read.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
        The step features and every layer's outputs.
    """

    loss: torch.FloatTensor | None = None
    params: tuple[torch.FloatTensor, ...] | None = None
    loc: torch.FloatTensor | None = None
    scale: torch.FloatTensor | None = None
    static_features: torch.FloatTensor | None = None
    cache: RnnCache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class RnnSampleTSPredictionOutput(ModelOutput):
    r"""
    sequences (`torch.FloatTensor` of shape `(batch_size, num_samples, prediction_length)` or `(batch_size,
    num_samples, prediction_length, input_size)`):
        Sample paths drawn ancestrally (one path for `loss="mse"`). `mean()`, `median()` and `quantile(q)`
        summarize them over the samples.
    """

    sequences: torch.FloatTensor | None = None

    def mean(self) -> torch.Tensor:  # (B, H[, C])
        return self.sequences.mean(dim=1)

    def median(self) -> torch.Tensor:  # (B, H[, C])
        return self.sequences.median(dim=1).values

    def quantile(self, q: float | list[float]) -> torch.Tensor:  # (B, H[, C]) or (Q, B, H[, C])
        q = torch.as_tensor(q, dtype=self.sequences.dtype, device=self.sequences.device)
        return torch.quantile(self.sequences, q, dim=1)


@dataclass
class RnnReconstructionOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `(1,)`):
        Mean squared error of the scaled reconstruction (or Gaussian negative log-likelihood for
        `reconstruction_loss="normal"`) over the observed values.
    reconstruction (`torch.FloatTensor` of shape `(batch_size, sequence_length[, input_size])`):
        The rebuilt window, in the input's units and order.
    reconstruction_errors (`torch.FloatTensor` of shape `(batch_size, sequence_length, input_size)`):
        Absolute error per step on the scaled values (0 where a value is missing).
    anomaly_scores (`torch.FloatTensor` of shape `(batch_size, sequence_length)`, *optional*):
        EncDec-AD's score per step, `(e - mu)^T Sigma^-1 (e - mu)` of the errors, once
        [`RnnForSequenceReconstruction.fit_error_distribution`] has fitted `mu` and `Sigma` on normal data.
    window_scores (`torch.FloatTensor` of shape `(batch_size,)`, *optional*):
        The mean of each window's step scores.
    embedding (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
        The encoder's final state (last layer): the window's representation.
    loc, scale (`torch.FloatTensor` of shape `(batch_size, 1, input_size)`):
        The scaling.
    """

    loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    reconstruction_errors: torch.FloatTensor | None = None
    anomaly_scores: torch.FloatTensor | None = None
    window_scores: torch.FloatTensor | None = None
    embedding: torch.FloatTensor | None = None
    loc: torch.FloatTensor | None = None
    scale: torch.FloatTensor | None = None


# ----------------------------------------------------------------------------------------------------------------
# Input checks: bad input gets a ValueError that names the argument.


def as_channels(name: str, values: torch.Tensor, input_size: int) -> torch.Tensor:
    """`(B, T)` (univariate) or `(B, T, input_size)` values as `(B, T, input_size)` floats."""
    if not torch.is_tensor(values) or not torch.is_floating_point(values):
        kind = values.dtype if torch.is_tensor(values) else type(values).__name__
        raise ValueError(
            f"`{name}` must be a float tensor (numeric values; NaN for missing ones), got {kind}."
        )
    expected = "(batch_size, time)" if input_size == 1 else f"(batch_size, time, {input_size})"
    if values.dim() == 2 and input_size == 1:
        return values[:, :, None]
    if values.dim() != 3 or values.size(2) != input_size:
        raise ValueError(
            f"`{name}` must have shape {expected} (input_size={input_size}), got {tuple(values.shape)}."
        )
    return values


def observed_values(
    name: str, values: torch.Tensor, observed_mask: torch.Tensor | None, input_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The values as `(B, T, C)` with NaN replaced by 0, and the mask of observed ones (given mask and not NaN)."""
    values = as_channels(name, values, input_size)
    observed = ~torch.isnan(values)
    if observed_mask is not None:
        mask_name = name.replace("values", "observed_mask")
        observed_mask = as_channels(mask_name, observed_mask.float(), input_size)
        if observed_mask.shape != values.shape:
            raise ValueError(
                f"`{mask_name}` has shape {tuple(observed_mask.shape)} but `{name}` has {tuple(values.shape)}."
            )
        observed = observed & observed_mask.bool()
    if bool(torch.isinf(values).any()):
        raise ValueError(f"`{name}` contains an infinite value: mark missing values with NaN instead.")
    return torch.where(observed, values, torch.zeros_like(values)), observed


def check_time_features(
    name: str, features: torch.Tensor | None, batch_size: int, steps: int, width: int
) -> None:
    if width == 0:
        if features is not None and features.numel() > 0:
            raise ValueError(f"`{name}` was given but the config has `num_time_features=0`.")
        return
    if features is None:
        raise ValueError(f"`{name}` is required: the config has `num_time_features={width}`.")
    if (
        features.dim() != 3
        or features.size(0) != batch_size
        or features.size(2) != width
        or features.size(1) < steps
    ):
        raise ValueError(
            f"`{name}` must have shape ({batch_size}, {steps}, {width}) (batch, steps, num_time_features), "
            f"got {tuple(features.shape)}."
        )


# ----------------------------------------------------------------------------------------------------------------


class RnnTimeSeriesPreTrainedModel(PreTrainedModel):
    config: RnnTimeSeriesConfig
    config_class = RnnTimeSeriesConfig
    base_model_prefix = "model"
    main_input_name = "past_values"
    supports_gradient_checkpointing = False
    _no_split_modules = ["RecurrentStack"]

    def _init_weights(self, module):
        init_module_weights(module, self.config)


def recurrent_stack(config: RnnTimeSeriesConfig, input_size: int) -> RecurrentStack:
    return RecurrentStack(
        input_size=input_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        cell_type=config.cell_type,
        hidden_dropout=config.dropout,
        weight_dropout=config.weight_dropout,
        recurrent_initializer=config.recurrent_initializer,
        forget_gate_bias=config.forget_gate_bias,
    )


class RnnTimeSeriesModel(RnnTimeSeriesPreTrainedModel):
    """Scaling, the step features (lagged scaled values, time features, static features) and the recurrent stack."""

    def __init__(self, config: RnnTimeSeriesConfig):
        super().__init__(config)
        self.scaler = SCALERS[config.scaling](config)
        self.embedder = (
            TimeSeriesFeatureEmbedder(config.cardinality, config.embedding_dimension)
            if config.num_static_categorical_features
            else None
        )
        self.recurrent = recurrent_stack(config, config.feature_size)
        self.post_init()

    def scale(
        self, values: torch.Tensor, observed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`loc`, `scale` and the observed mean (each `(B, 1, C)`) of `(B, T, C)` values (zeros where missing),
        from the observed values only: a missing value is imputed with its row's observed mean."""
        num_observed = observed.sum(1, keepdim=True)  # (B, 1, C)
        if bool((num_observed == 0).any()):
            row = int((num_observed == 0).any(-1).any(-1).nonzero()[0])
            raise ValueError(
                f"Series {row} has no observed value in its window (all NaN or masked): nothing to scale or read."
            )
        _, loc, scale = self.scaler(values, observed.to(values.dtype))
        mean = values.sum(1, keepdim=True) / num_observed  # values are 0 where missing
        return loc, scale, mean

    def static_features(
        self,
        loc: torch.Tensor,
        scale: torch.Tensor,
        static_categorical_features: torch.Tensor | None,
        static_real_features: torch.Tensor | None,
    ) -> torch.Tensor:  # (B, S)
        config = self.config
        batch_size = loc.size(0)
        features = []
        if config.num_static_categorical_features:
            if static_categorical_features is None or static_categorical_features.shape != (
                batch_size,
                config.num_static_categorical_features,
            ):
                got = (
                    None if static_categorical_features is None else tuple(static_categorical_features.shape)
                )
                raise ValueError(
                    f"`static_categorical_features` must have shape ({batch_size}, "
                    f"{config.num_static_categorical_features}), got {got}."
                )
            bounds = torch.tensor(config.cardinality, device=static_categorical_features.device)
            if bool(((static_categorical_features < 0) | (static_categorical_features >= bounds)).any()):
                raise ValueError(
                    f"`static_categorical_features` must lie in [0, cardinality={config.cardinality})."
                )
            features.append(self.embedder(static_categorical_features.long()))
        elif static_categorical_features is not None:
            raise ValueError(
                "`static_categorical_features` was given but `num_static_categorical_features=0`."
            )
        if config.num_static_real_features:
            if static_real_features is None or static_real_features.shape != (
                batch_size,
                config.num_static_real_features,
            ):
                got = None if static_real_features is None else tuple(static_real_features.shape)
                raise ValueError(
                    f"`static_real_features` must have shape ({batch_size}, {config.num_static_real_features}), "
                    f"got {got}."
                )
            features.append(static_real_features.to(loc.dtype))
        elif static_real_features is not None:
            raise ValueError("`static_real_features` was given but `num_static_real_features=0`.")
        features += [loc[:, 0].abs().log1p(), scale[:, 0].log()]
        return torch.cat(features, dim=-1)

    def step_features(
        self,
        scaled_values: torch.Tensor,  # (B, N, C): every value known so far
        start: int,
        end: int,
        time_features: torch.Tensor | None,  # (B, end - start, F) or None
        static_features: torch.Tensor,  # (B, S)
    ) -> torch.Tensor:  # (B, end - start, feature_size)
        """The inputs of steps `start .. end-1`: step `p` reads `scaled_values[:, p - lag]` for each lag."""
        lagged = [
            scaled_values[:, start - lag : end - lag] for lag in self.config.lags_sequence
        ]  # (B, n, C) each
        features = torch.cat(lagged, dim=-1)
        if time_features is not None:
            features = torch.cat([features, time_features.to(features.dtype)], dim=-1)
        static = static_features[:, None, :].expand(-1, end - start, -1)
        return torch.cat([features, static], dim=-1)

    def forward(
        self,
        past_values: torch.Tensor,
        past_observed_mask: torch.Tensor | None = None,
        past_time_features: torch.Tensor | None = None,
        static_categorical_features: torch.Tensor | None = None,
        static_real_features: torch.Tensor | None = None,
        future_values: torch.Tensor | None = None,
        future_time_features: torch.Tensor | None = None,
        future_observed_mask: torch.Tensor | None = None,
        read_next: bool = False,
        scale_steps: int | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> RnnTimeSeriesModelOutput | tuple:
        r"""
        past_values (`torch.FloatTensor` of shape `(batch_size, past_length[, input_size])`):
            The series' past; NaN marks a missing value.
        past_observed_mask (`torch.Tensor` of the same shape, *optional*):
            1 where a value is observed, 0 where missing (NaN counts as missing either way).
        past_time_features (`torch.FloatTensor` of shape `(batch_size, past_length, num_time_features)`):
            Known features of every past step (required when `num_time_features > 0`).
        static_categorical_features (`torch.LongTensor` of shape `(batch_size, num_static_categorical_features)`):
        static_real_features (`torch.FloatTensor` of shape `(batch_size, num_static_real_features)`):
        future_values (`torch.FloatTensor` of shape `(batch_size, future_length[, input_size])`, *optional*):
            Values after the past, read with teacher forcing.
        future_time_features (`torch.FloatTensor` of shape `(batch_size, future_length, num_time_features)`):
            Time features of the future steps (one more than `future_values` when `read_next=True`).
        future_observed_mask (`torch.Tensor`, *optional*): as `past_observed_mask`, for `future_values`.
        read_next (`bool`, *optional*, defaults to `False`):
            Read one more step after the last value given: its output forecasts the next value.
        scale_steps (`int`, *optional*):
            Scale by the last `scale_steps` past values. None: every past value the steps predict (from step
            `max(lags)`; for a forecaster's `past_values`, the context).
        """
        config = self.config
        return_dict = return_dict if return_dict is not None else config.return_dict
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        )
        values, observed = observed_values("past_values", past_values, past_observed_mask, config.input_size)
        batch_size, past_length = values.shape[:2]
        if past_length <= config.max_lag:
            raise ValueError(
                f"`past_values` has {past_length} steps: it needs more than the longest lag "
                f"({config.max_lag}, `lags_sequence`), since each step reads the values that many steps back."
            )
        scale_steps = scale_steps if scale_steps is not None else past_length - config.max_lag
        loc, scale, mean = self.scale(values[:, -scale_steps:], observed[:, -scale_steps:])  # (B, 1, C) each
        scaled = (torch.where(observed, values, mean) - loc) / scale  # (B, L, C)
        if future_values is not None:
            future, future_observed = observed_values(
                "future_values", future_values, future_observed_mask, config.input_size
            )
            if future.size(0) != batch_size:
                raise ValueError(
                    f"`future_values` has {future.size(0)} rows but `past_values` has {batch_size}."
                )
            scaled = torch.cat([scaled, (torch.where(future_observed, future, mean) - loc) / scale], dim=1)
            values = torch.cat([values, future], dim=1)
            observed = torch.cat([observed, future_observed], dim=1)
        num_values = scaled.size(1)
        end = num_values + (1 if read_next else 0)

        time_features = None
        if config.num_time_features or past_time_features is not None or future_time_features is not None:
            check_time_features("past_time_features", past_time_features, batch_size, past_length,
                                config.num_time_features)  # fmt: skip
            future_steps = end - past_length
            if future_steps:
                check_time_features("future_time_features", future_time_features, batch_size, future_steps,
                                    config.num_time_features)  # fmt: skip
            if past_time_features is not None and past_time_features.size(1) != past_length:
                raise ValueError(
                    f"`past_time_features` has {past_time_features.size(1)} steps but `past_values` has {past_length}."
                )
            if config.num_time_features:
                time_features = past_time_features[:, config.max_lag :]
                if future_steps:
                    time_features = torch.cat([time_features, future_time_features[:, :future_steps]], dim=1)

        static = self.static_features(loc, scale, static_categorical_features, static_real_features)
        features = self.step_features(
            scaled, config.max_lag, end, time_features, static
        )  # (B, n, feature_size)
        hidden, all_hidden, cache = self.recurrent(features, output_hidden_states=output_hidden_states)
        hidden_states = (features,) + all_hidden if output_hidden_states else None
        if not return_dict:
            return (hidden, cache, hidden_states, loc, scale, static, scaled, observed, values)
        return RnnTimeSeriesModelOutput(
            last_hidden_state=hidden,
            cache=cache,
            hidden_states=hidden_states,
            loc=loc,
            scale=scale,
            static_features=static,
            scaled_values=scaled,
            observed_mask=observed,
            values=values,
        )


def squeeze_univariate(tensor: torch.Tensor, input_size: int) -> torch.Tensor:
    return tensor.squeeze(-1) if input_size == 1 else tensor


class RnnForTimeSeriesPrediction(RnnTimeSeriesPreTrainedModel):
    """DeepAR (Salinas et al., 2020): an autoregressive RNN whose output at each step parametrizes the distribution
    of that step's value; trained by its negative log-likelihood with teacher forcing, forecasting by ancestral
    sampling with the recurrent state carried. `loss="mse"` makes it a point forecaster."""

    def __init__(self, config: RnnTimeSeriesConfig):
        super().__init__(config)
        if config.prediction_length is None:
            raise ValueError("RnnForTimeSeriesPrediction needs `prediction_length` in its config.")
        self.model = RnnTimeSeriesModel(config)
        self.dropout = LockedDropout(config.dropout)
        if config.loss == "nll":
            self.distribution_output = DISTRIBUTIONS[config.distribution_output](dim=config.input_size)
            self.parameter_projection = self.distribution_output.get_parameter_projection(config.hidden_size)
        else:
            self.distribution_output = None
            self.parameter_projection = nn.Linear(config.hidden_size, config.input_size)
        self.post_init()

    def output_params(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """`(B, n, H)` -> the distribution's parameters `(B, n[, C])` each (or the scaled point forecast)."""
        params = self.parameter_projection(self.dropout(hidden_states))
        if self.distribution_output is None:
            return (squeeze_univariate(params, self.config.input_size),)
        return params

    def distribution(
        self, params, loc: torch.Tensor, scale: torch.Tensor
    ) -> torch.distributions.Distribution:
        """The predictive distribution in the input's units (`loc`, `scale` as the model output them)."""
        input_size = self.config.input_size
        return self.distribution_output.distribution(
            params, loc=squeeze_univariate(loc, input_size), scale=squeeze_univariate(scale, input_size)
        )

    def check_counts(self, values: torch.Tensor, observed: torch.Tensor) -> None:
        if self.config.distribution_output == "negative_binomial" and self.config.loss == "nll":
            bad = observed & ((values < 0) | (values != values.round()))
            if bool(bad.any()):
                raise ValueError(
                    "`distribution_output='negative_binomial'` models counts: the observed values must be "
                    f"non-negative integers, got {float(values[bad][0])}."
                )

    def forward(
        self,
        past_values: torch.Tensor,
        past_observed_mask: torch.Tensor | None = None,
        past_time_features: torch.Tensor | None = None,
        static_categorical_features: torch.Tensor | None = None,
        static_real_features: torch.Tensor | None = None,
        future_values: torch.Tensor | None = None,
        future_time_features: torch.Tensor | None = None,
        future_observed_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> RnnTimeSeriesPredictionOutput | tuple:
        r"""
        past_values (`torch.FloatTensor` of shape `(batch_size, context_length + max(lags_sequence)[,
        input_size])`):
            The context and the longest lag before it; NaN (or 0 in `past_observed_mask`) marks a missing value.
        future_values (`torch.FloatTensor` of shape `(batch_size, prediction_length[, input_size])`, *optional*):
            The values to forecast, in training; the loss covers them and the context, with teacher forcing.
            Without them, the output's last step forecasts the first future value.

        See [`RnnTimeSeriesModel.forward`] for the other arguments.
        """
        config = self.config
        return_dict = return_dict if return_dict is not None else config.return_dict
        check_keyword_arguments(self, kwargs, LOSS_KWARGS)
        self.check_window(past_values, future_values)
        outputs = self.model(
            past_values,
            past_observed_mask=past_observed_mask,
            past_time_features=past_time_features,
            static_categorical_features=static_categorical_features,
            static_real_features=static_real_features,
            future_values=future_values,
            future_time_features=future_time_features,
            future_observed_mask=future_observed_mask,
            read_next=future_values is None,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        params = self.output_params(outputs.last_hidden_state)
        loss = None
        if future_values is not None:
            loss = self.loss(params, outputs)
        if not return_dict:
            output = (params, outputs.loc, outputs.scale, outputs.static_features, outputs.cache)
            return ((loss,) + output) if loss is not None else output
        return RnnTimeSeriesPredictionOutput(
            loss=loss,
            params=params,
            loc=outputs.loc,
            scale=outputs.scale,
            static_features=outputs.static_features,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
        )

    def loss(self, params, outputs: RnnTimeSeriesModelOutput) -> torch.Tensor:
        """Mean over observed targets (steps `max(lags)` onward) of their negative log-likelihood or squared error."""
        input_size = self.config.input_size
        target = outputs.values[:, self.config.max_lag :]  # (B, n, C): zeros where missing
        observed = outputs.observed_mask[:, self.config.max_lag :]
        weights = observed.all(-1).to(
            target.dtype
        )  # (B, n): a step counts when all its variates are observed
        if self.distribution_output is None:
            scaled_target = squeeze_univariate((target - outputs.loc) / outputs.scale, input_size)
            errors = (params[0] - scaled_target) ** 2
            errors = errors if input_size == 1 else errors.mean(-1)
            return (errors * weights).sum() / weights.sum().clamp_min(1.0)
        self.check_counts(target, observed)
        distribution = self.distribution(params, outputs.loc, outputs.scale)
        nll = -distribution.log_prob(squeeze_univariate(target, input_size))  # (B, n)
        return (nll * weights).sum() / weights.sum().clamp_min(1.0)

    def check_window(self, past_values: torch.Tensor, future_values: torch.Tensor | None = None) -> None:
        """The window's lengths as the config fixes them: `past_length` steps of history, `prediction_length`
        future values."""
        config = self.config
        steps = as_channels("past_values", past_values, config.input_size).size(1)
        if steps != config.past_length:
            raise ValueError(
                f"`past_values` has {steps} steps; this forecaster takes context_length + max(lags_sequence) = "
                f"{config.context_length} + {config.max_lag} = {config.past_length} (a shorter series cannot fill "
                "the context: pad it in front with NaN, which counts as missing)."
            )
        if future_values is not None:
            future_steps = as_channels("future_values", future_values, config.input_size).size(1)
            if future_steps != config.prediction_length:
                raise ValueError(
                    f"`future_values` has {future_steps} steps but prediction_length is "
                    f"{config.prediction_length}."
                )

    @torch.no_grad()
    def generate(
        self,
        past_values: torch.Tensor,
        past_observed_mask: torch.Tensor | None = None,
        past_time_features: torch.Tensor | None = None,
        static_categorical_features: torch.Tensor | None = None,
        static_real_features: torch.Tensor | None = None,
        future_time_features: torch.Tensor | None = None,
        num_parallel_samples: int | None = None,
        use_cache: bool = True,
    ) -> RnnSampleTSPredictionOutput:
        r"""Sample `num_parallel_samples` paths of `prediction_length` future values per series, ancestrally: each
        step's sample is the next step's lag-1 value. With `use_cache=True` (the default) the context is read once
        and each future step is one recurrent step from the carried state; `use_cache=False` rereads the context
        and the samples so far at every step (the reference the cached path is tested against).

        Returns `sequences` of shape `(batch_size, num_parallel_samples, prediction_length[, input_size])`.
        """
        config = self.config
        self.check_window(past_values)
        num_samples = num_parallel_samples or config.num_parallel_samples
        if self.distribution_output is None:
            num_samples = 1  # a point forecaster has one path
        horizon = config.prediction_length
        if config.num_time_features:
            check_time_features("future_time_features", future_time_features, past_values.size(0), horizon,
                                config.num_time_features)  # fmt: skip

        def repeat(tensor):
            return None if tensor is None else tensor.repeat_interleave(num_samples, dim=0)

        inputs = {
            "past_values": repeat(past_values),
            "past_observed_mask": repeat(past_observed_mask),
            "past_time_features": repeat(past_time_features),
            "static_categorical_features": repeat(static_categorical_features),
            "static_real_features": repeat(static_real_features),
        }
        future_time_features = repeat(future_time_features)
        if use_cache:
            return self.sample_with_cache(inputs, future_time_features, num_samples)
        samples = []
        for step in range(horizon):  # the reference: reread everything at each step
            future = torch.stack(samples, dim=1) if samples else None
            outputs = self.model(
                **inputs,
                future_values=future,
                future_time_features=None
                if future_time_features is None
                else future_time_features[:, : step + 1],
                read_next=True,
                return_dict=True,
            )
            params = self.output_params(outputs.last_hidden_state[:, -1:])
            samples.append(self.draw(params, outputs.loc, outputs.scale)[:, 0])
        return self.as_sequences(torch.stack(samples, dim=1), num_samples)

    def sample_with_cache(
        self, inputs: dict, future_time_features, num_samples: int
    ) -> RnnSampleTSPredictionOutput:
        config = self.config
        outputs = self.model(
            **inputs,
            future_time_features=None if future_time_features is None else future_time_features[:, :1],
            read_next=True,
            return_dict=True,
        )
        loc, scale, cache = outputs.loc, outputs.scale, outputs.cache
        scaled = outputs.scaled_values  # (B*S, L, C): grows by each step's scaled sample
        params = self.output_params(outputs.last_hidden_state[:, -1:])
        samples = []
        for step in range(config.prediction_length):
            sample = self.draw(params, loc, scale)  # (B*S, 1, C)
            samples.append(sample[:, 0])
            if step + 1 == config.prediction_length:
                break
            scaled = torch.cat([scaled, (sample - loc) / scale], dim=1)
            position = scaled.size(1)
            time_features = None
            if config.num_time_features:
                time_features = future_time_features[:, step + 1 : step + 2]
            features = self.model.step_features(
                scaled, position, position + 1, time_features, outputs.static_features
            )  # (B*S, 1, feature_size)
            hidden, cache = self.model.recurrent.step(features[:, 0], cache)
            params = self.output_params(hidden[:, None])
        return self.as_sequences(torch.stack(samples, dim=1), num_samples)

    def draw(self, params, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """One value per row from the parameters of one step: `(B, 1, C)`, in the input's units."""
        if self.distribution_output is None:
            point = params[0] if self.config.input_size > 1 else params[0][..., None]
            return point * scale + loc
        sample = self.distribution(params, loc, scale).sample()  # (B, 1[, C])
        return sample if self.config.input_size > 1 else sample[..., None]

    def as_sequences(self, samples: torch.Tensor, num_samples: int) -> RnnSampleTSPredictionOutput:
        """`(B*S, H, C)` -> `(B, S, H[, C])`."""
        samples = samples.reshape(-1, num_samples, *samples.shape[1:])
        return RnnSampleTSPredictionOutput(sequences=squeeze_univariate(samples, self.config.input_size))


class RnnForSequenceReconstruction(RnnTimeSeriesPreTrainedModel):
    """EncDec-AD (Malhotra et al., 2016): the backbone reads a window and hands its final state to a decoder that
    rebuilds the window (last step first with `reverse_target`). Reconstruction errors, modelled as a Gaussian
    fitted on normal windows (`fit_error_distribution`), give anomaly scores; the final state is the window's
    embedding.

    The decoder reads the previous value (teacher forcing, the default in training) or its own previous output
    (the default in inference, as EncDec-AD does); `teacher_forcing` overrides the default.
    """

    def __init__(self, config: RnnTimeSeriesConfig):
        super().__init__(config)
        self.model = RnnTimeSeriesModel(config)
        self.decoder = recurrent_stack(config, config.input_size)
        self.dropout = LockedDropout(config.dropout)
        widths = 2 if config.reconstruction_loss == "normal" else 1
        self.projection = nn.Linear(config.hidden_size, widths * config.input_size)
        # EncDec-AD's Gaussian model of the errors on normal data (see `fit_error_distribution`)
        self.register_buffer("error_mean", torch.zeros(config.input_size))
        self.register_buffer("error_precision", torch.eye(config.input_size))
        self.register_buffer("error_distribution_fitted", torch.zeros((), dtype=torch.bool))
        self.post_init()

    def _init_weights(self, module):
        super()._init_weights(module)
        if module is self:  # the error model starts unfitted (also when `from_pretrained` rebuilds buffers)
            init.zeros_(self.error_mean)
            init.copy_(self.error_precision, torch.eye(self.config.input_size))
            init.copy_(self.error_distribution_fitted, torch.zeros((), dtype=torch.bool))

    def decode(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`(B, n, H)` -> scaled means `(B, n, C)` and, for `reconstruction_loss="normal"`, standard deviations."""
        output = self.projection(self.dropout(hidden))
        if self.config.reconstruction_loss == "mse":
            return output, None
        mean, raw_scale = output.chunk(2, dim=-1)
        return mean, NormalOutput.squareplus(raw_scale).clamp_min(1e-4)

    def forward(
        self,
        past_values: torch.Tensor,
        past_observed_mask: torch.Tensor | None = None,
        static_categorical_features: torch.Tensor | None = None,
        static_real_features: torch.Tensor | None = None,
        teacher_forcing: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> RnnReconstructionOutput | tuple:
        r"""
        past_values (`torch.FloatTensor` of shape `(batch_size, window_length[, input_size])`):
            The windows to rebuild; NaN (or 0 in `past_observed_mask`) marks a missing value, left out of the loss
            and the scale.
        teacher_forcing (`bool`, *optional*):
            Feed the decoder the true previous values (True) or its own outputs (False). None: `self.training`.
        """
        config = self.config
        return_dict = return_dict if return_dict is not None else config.return_dict
        teacher_forcing = self.training if teacher_forcing is None else teacher_forcing
        check_keyword_arguments(self, kwargs, LOSS_KWARGS)
        if config.num_time_features:
            raise ValueError(
                "RnnForSequenceReconstruction reads values only: use a config with num_time_features=0."
            )
        outputs = self.model(
            past_values,
            past_observed_mask=past_observed_mask,
            static_categorical_features=static_categorical_features,
            static_real_features=static_real_features,
            read_next=True,
            scale_steps=as_channels("past_values", past_values, config.input_size).size(1),
            return_dict=True,
        )
        target = outputs.scaled_values  # (B, T, C), imputed where missing
        observed = outputs.observed_mask
        if config.reverse_target:
            target, observed = target.flip(1), observed.flip(1)
        start = torch.zeros_like(target[:, :1])  # (B, 1, C): the decoder's first input
        cache = self.copy_state(outputs.cache)
        if teacher_forcing:
            inputs = torch.cat([start, target[:, :-1]], dim=1)  # (B, T, C)
            hidden, _, _ = self.decoder(inputs, cache=cache)
            mean, std = self.decode(hidden)
        else:
            means, stds, step_input = [], [], start[:, 0]
            for _ in range(target.size(1)):
                hidden, cache = self.decoder.step(step_input, cache)
                mean, std = self.decode(hidden[:, None])
                means.append(mean)
                stds.append(std)
                step_input = mean[:, 0]
            mean = torch.cat(means, dim=1)
            std = None if std is None else torch.cat(stds, dim=1)

        weights = observed.to(target.dtype)  # (B, T, C)
        if std is None:
            per_value = (mean - target) ** 2
        else:
            per_value = -torch.distributions.Normal(mean, std).log_prob(target)
        loss = (per_value * weights).sum() / weights.sum().clamp_min(1.0)
        errors = (mean - target).abs() * weights
        if config.reverse_target:
            mean, errors = mean.flip(1), errors.flip(1)
        reconstruction = squeeze_univariate(mean * outputs.scale + outputs.loc, config.input_size)
        anomaly_scores = window_scores = None
        if bool(self.error_distribution_fitted):
            anomaly_scores = self.anomaly_scores(errors)
            window_scores = anomaly_scores.mean(1)
        embedding = outputs.cache.layer_state(config.num_layers - 1)[0][:, 0]  # (B, H): the last layer's h
        if not return_dict:
            return (
                loss,
                reconstruction,
                errors,
                anomaly_scores,
                window_scores,
                embedding,
                outputs.loc,
                outputs.scale,
            )
        return RnnReconstructionOutput(
            loss=loss,
            reconstruction=reconstruction,
            reconstruction_errors=errors,
            anomaly_scores=anomaly_scores,
            window_scores=window_scores,
            embedding=embedding,
            loc=outputs.loc,
            scale=outputs.scale,
        )

    @staticmethod
    def copy_state(cache: RnnCache) -> RnnCache:
        """The encoder's final state as the decoder's initial state (EncDec-AD: `h_D = h_E`), in a new cache."""
        states = [tuple(t.clone() for t in state) for state in cache.layer_states]
        return RnnCache.from_layer_states(states)

    def anomaly_scores(self, errors: torch.Tensor) -> torch.Tensor:
        """`(B, T, C)` errors -> `(B, T)` scores `(e - mu)^T Sigma^-1 (e - mu)` under the fitted Gaussian."""
        centered = errors - self.error_mean
        return torch.einsum("btc,cd,btd->bt", centered, self.error_precision, centered)

    @torch.no_grad()
    def fit_error_distribution(self, errors: torch.Tensor, observed_mask: torch.Tensor | None = None) -> None:
        """Fit EncDec-AD's Gaussian `N(mu, Sigma)` to reconstruction errors of normal data: `errors` of shape
        `(num_windows, window_length, input_size)` (`reconstruction_errors` of windows known to be normal; for a
        univariate model also without the last axis), or `(num_errors, input_size)`; `observed_mask` (1 observed,
        0 missing; the shape of `errors`, or without its last axis) leaves steps out. Saved with the model;
        `anomaly_scores` appear in the outputs from then on."""
        input_size = self.config.input_size
        if input_size == 1 and errors.dim() == 2:  # univariate windows without the channel axis
            errors = errors[..., None]
        if errors.dim() not in (2, 3) or errors.size(-1) != input_size:
            raise ValueError(
                f"`errors` must have shape (num_windows, window_length, {input_size}) or (num_errors, {input_size})"
                f" (input_size={input_size}), got {tuple(errors.shape)}."
            )
        if observed_mask is not None:
            if observed_mask.shape == errors.shape[:-1]:  # one flag per step: every channel alike
                observed_mask = observed_mask[..., None].expand(errors.shape)
            if observed_mask.shape != errors.shape:
                raise ValueError(
                    f"`observed_mask` has shape {tuple(observed_mask.shape)} but `errors` has "
                    f"{tuple(errors.shape)}."
                )
        errors = errors.reshape(-1, input_size).to(self.error_mean.device, self.error_mean.dtype)
        if observed_mask is not None:
            errors = errors[observed_mask.reshape(-1, input_size).bool().all(-1).to(errors.device)]
        if not bool(torch.isfinite(errors).all()):
            raise ValueError(
                "`errors` holds NaN or infinite values: leave those steps out with `observed_mask` (0 where a "
                "value is missing)."
            )
        if errors.size(0) < 2:
            raise ValueError("`fit_error_distribution` needs at least two observed error vectors.")
        mean = errors.mean(0)
        centered = errors - mean
        covariance = centered.T @ centered / (errors.size(0) - 1)  # (C, C)
        covariance = covariance + 1e-6 * torch.eye(covariance.size(0), device=covariance.device)
        self.error_mean.copy_(mean)
        self.error_precision.copy_(torch.linalg.inv(covariance))
        self.error_distribution_fitted.fill_(True)


class RnnForTimeSeriesClassification(RnnTimeSeriesPreTrainedModel):
    """The backbone over a whole series, its steps pooled (ULMFiT's concat pooling by default) into a classifier
    (ULMFiT's head): single-label classification, or regression of a whole series (`problem_type="regression"`).
    Its backbone can come from a forecaster or a reconstruction autoencoder (`from_pretrained` of their
    checkpoints)."""

    def __init__(self, config: RnnTimeSeriesConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.loss_type = "ForSequenceClassification"
        self.model = RnnTimeSeriesModel(config)
        pooled_size = config.hidden_size * (3 if config.classifier_pooling == "concat" else 1)
        if config.classifier_hidden_size is None:
            self.dropout = nn.Dropout(config.classifier_dropout)
            self.classifier = nn.Linear(pooled_size, config.num_labels)
        else:
            self.dropout = nn.Identity()
            self.classifier = RnnClassificationHead(
                pooled_size,
                config.classifier_hidden_size,
                config.num_labels,
                config.classifier_dropout,
                "batch",
            )
        self.post_init()

    def forward(
        self,
        past_values: torch.Tensor,
        past_observed_mask: torch.Tensor | None = None,
        static_categorical_features: torch.Tensor | None = None,
        static_real_features: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput | tuple:
        r"""
        past_values (`torch.FloatTensor` of shape `(batch_size, series_length[, input_size])`):
            Whole series; NaN (or 0 in `past_observed_mask`) marks a missing value.
        labels (`torch.Tensor`, *optional*):
            Class ids in `[0, num_labels)` of shape `(batch_size,)`; floats for regression.
        """
        config = self.config
        return_dict = return_dict if return_dict is not None else config.return_dict
        check_keyword_arguments(self, kwargs, LOSS_KWARGS)
        if config.num_time_features:
            raise ValueError(
                "RnnForTimeSeriesClassification reads values only: use a config with num_time_features=0."
            )
        outputs = self.model(
            past_values,
            past_observed_mask=past_observed_mask,
            static_categorical_features=static_categorical_features,
            static_real_features=static_real_features,
            read_next=True,
            scale_steps=as_channels("past_values", past_values, config.input_size).size(1),
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        pooled = pool_sequence(outputs.last_hidden_state, None, config.classifier_pooling, False)
        logits = self.classifier(self.dropout(pooled))  # (B, num_labels)
        loss = None
        if labels is not None:
            labels = sequence_labels(labels, logits, config)
            loss = self.loss_function(labels, logits, config, **kwargs)
        if not return_dict:
            output = tuple(v for v in (logits, outputs.hidden_states) if v is not None)
            return ((loss,) + output) if loss is not None else output
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = [
    "RnnForSequenceReconstruction",
    "RnnForTimeSeriesClassification",
    "RnnForTimeSeriesPrediction",
    "RnnReconstructionOutput",
    "RnnSampleTSPredictionOutput",
    "RnnTimeSeriesModel",
    "RnnTimeSeriesModelOutput",
    "RnnTimeSeriesPreTrainedModel",
    "RnnTimeSeriesPredictionOutput",
]
