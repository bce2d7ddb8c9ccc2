"""rnn_hf: LSTM and GRU networks as Hugging Face models.

Importing the package registers every class with the `Auto*` factories, so `AutoModelForCausalLM.from_pretrained`
finds them; `save_pretrained` also writes the code files and an `auto_map`, so the same checkpoint loads with
`trust_remote_code=True` where rnn_hf is not installed.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTimeSeriesPrediction,
    AutoModelForTokenClassification,
)

from .configuration_rnn import RnnConfig, RnnSeq2SeqConfig
from .configuration_rnn_time_series import RnnTimeSeriesConfig
from .modeling_rnn import (
    RnnCache,
    RnnCausalLMOutput,
    RnnForCausalLM,
    RnnForMaskedLM,
    RnnForSequenceClassification,
    RnnForTokenClassification,
    RnnModel,
    RnnModelOutput,
    RnnPreTrainedModel,
)
from .modeling_rnn_seq2seq import RnnForSeq2SeqLM, RnnSeq2SeqLMOutput
from .modeling_rnn_time_series import (
    RnnForSequenceReconstruction,
    RnnForTimeSeriesClassification,
    RnnForTimeSeriesPrediction,
    RnnReconstructionOutput,
    RnnSampleTSPredictionOutput,
    RnnTimeSeriesModel,
    RnnTimeSeriesPredictionOutput,
)
from .pipelines import Text2TextGenerationPipeline
from .recurrent import RecurrentStack

__version__ = "0.1.0"


def register_family(config_class, auto_classes: dict) -> None:
    """Register a config with `AutoConfig` and each `{auto_class: model_class}` with its Auto factory, and record
    both for `save_pretrained`'s `auto_map` (remote code)."""
    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    config_class.register_for_auto_class()
    for auto_class, model_class in auto_classes.items():
        auto_class.register(config_class, model_class, exist_ok=True)
        model_class.register_for_auto_class(auto_class.__name__)


AUTO_CLASSES = {
    AutoModel: RnnModel,
    AutoModelForCausalLM: RnnForCausalLM,
    AutoModelForMaskedLM: RnnForMaskedLM,
    AutoModelForSequenceClassification: RnnForSequenceClassification,
    AutoModelForTokenClassification: RnnForTokenClassification,
}
register_family(RnnConfig, AUTO_CLASSES)
register_family(RnnSeq2SeqConfig, {AutoModelForSeq2SeqLM: RnnForSeq2SeqLM})

# Time series: the backbone, the forecaster and the classifier have Auto classes (transformers has no Auto class for
# time-series classification: the classifier is an `AutoModelForSequenceClassification`). The reconstruction
# autoencoder has none in transformers; it records `AutoModel` in its `auto_map` only (a saved autoencoder loads with
# remote code), so that `AutoModel` still builds the backbone for this config.
TIME_SERIES_AUTO_CLASSES = {
    AutoModel: RnnTimeSeriesModel,
    AutoModelForTimeSeriesPrediction: RnnForTimeSeriesPrediction,
    AutoModelForSequenceClassification: RnnForTimeSeriesClassification,
}
register_family(RnnTimeSeriesConfig, TIME_SERIES_AUTO_CLASSES)
RnnForSequenceReconstruction.register_for_auto_class("AutoModel")

__all__ = [
    "RecurrentStack",
    "RnnCache",
    "RnnCausalLMOutput",
    "RnnConfig",
    "RnnForCausalLM",
    "RnnForMaskedLM",
    "RnnForSeq2SeqLM",
    "RnnForSequenceReconstruction",
    "RnnForSequenceClassification",
    "RnnForTimeSeriesClassification",
    "RnnForTimeSeriesPrediction",
    "RnnForTokenClassification",
    "RnnModel",
    "RnnModelOutput",
    "RnnPreTrainedModel",
    "RnnReconstructionOutput",
    "RnnSampleTSPredictionOutput",
    "RnnSeq2SeqConfig",
    "RnnSeq2SeqLMOutput",
    "RnnTimeSeriesConfig",
    "RnnTimeSeriesModel",
    "RnnTimeSeriesPredictionOutput",
    "Text2TextGenerationPipeline",
]
