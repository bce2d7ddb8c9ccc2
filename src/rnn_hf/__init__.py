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
    AutoModelForTokenClassification,
)

from .configuration_rnn import RnnConfig, RnnSeq2SeqConfig
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
from .pipelines import Text2TextGenerationPipeline
from .recurrent import RecurrentStack

__version__ = "0.1.0"

AUTO_CLASSES = {
    AutoModel: RnnModel,
    AutoModelForCausalLM: RnnForCausalLM,
    AutoModelForMaskedLM: RnnForMaskedLM,
    AutoModelForSequenceClassification: RnnForSequenceClassification,
    AutoModelForTokenClassification: RnnForTokenClassification,
}

AutoConfig.register(RnnConfig.model_type, RnnConfig, exist_ok=True)
RnnConfig.register_for_auto_class()
for auto_class, model_class in AUTO_CLASSES.items():
    auto_class.register(RnnConfig, model_class, exist_ok=True)
    model_class.register_for_auto_class(auto_class.__name__)

AutoConfig.register(RnnSeq2SeqConfig.model_type, RnnSeq2SeqConfig, exist_ok=True)
RnnSeq2SeqConfig.register_for_auto_class()
AutoModelForSeq2SeqLM.register(RnnSeq2SeqConfig, RnnForSeq2SeqLM, exist_ok=True)
RnnForSeq2SeqLM.register_for_auto_class("AutoModelForSeq2SeqLM")

__all__ = [
    "RecurrentStack",
    "RnnCache",
    "RnnCausalLMOutput",
    "RnnConfig",
    "RnnForCausalLM",
    "RnnForMaskedLM",
    "RnnForSeq2SeqLM",
    "RnnForSequenceClassification",
    "RnnForTokenClassification",
    "RnnModel",
    "RnnModelOutput",
    "RnnPreTrainedModel",
    "RnnSeq2SeqConfig",
    "RnnSeq2SeqLMOutput",
    "Text2TextGenerationPipeline",
]
