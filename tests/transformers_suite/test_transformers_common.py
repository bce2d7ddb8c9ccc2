"""transformers' own common model tests, run against rnn_hf's models.

`ModelTesterMixin` (tests/test_modeling_common.py), `GenerationTesterMixin` (tests/generation/test_utils.py) and
`ConfigTester` (tests/test_configuration_common.py) are not part of the transformers wheel: point
`TRANSFORMERS_TESTS_DIR` at a folder that contains transformers' `tests/` package (see README.md and
get_tests.sh next to this file). Without it, or when those files do not import, this module is skipped.

The wiring follows transformers' own model tests (tests/models/mamba/test_modeling_mamba.py, GPT-2's tester):
a tiny config (batch 13, sequence 7, vocabulary 99, width 32, 2 layers), random `input_ids` from `ids_tensor`
and random 0/1 attention masks from `random_attention_mask`, and one test class per cell type and direction.

`RNN_SUITE_ATTENTION_MASK` picks the attention masks: `random` (the default: transformers' `random_attention_mask`,
0/1 at random with the first column 1, so rows have holes), `left_padded` (each row one run of tokens after 0 to
seq_length // 2 pads) or `none` (no mask). The last two are diagnostics: they show what fails once holes are set aside.
"""

import os
import sys
import unittest
from pathlib import Path
from unittest import mock

import pytest

TESTS_DIR = os.environ.get("TRANSFORMERS_TESTS_DIR")
if not TESTS_DIR:
    pytest.skip(
        "TRANSFORMERS_TESTS_DIR is not set (the folder that contains transformers' tests/ package; "
        "see tests/transformers_suite/README.md)",
        allow_module_level=True,
    )
TESTS_DIR = str(Path(TESTS_DIR).expanduser().resolve())
if not (Path(TESTS_DIR) / "tests" / "test_modeling_common.py").is_file():
    pytest.skip(
        f"no tests/test_modeling_common.py under TRANSFORMERS_TESTS_DIR={TESTS_DIR}", allow_module_level=True
    )
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)
_loaded = sys.modules.get("tests")
if _loaded is not None and not str(getattr(_loaded, "__file__", "") or "").startswith(TESTS_DIR):
    del sys.modules[
        "tests"
    ]  # another `tests` package (e.g. a namespace package of this repo) shadows transformers'

try:
    from tests.generation.test_utils import GenerationTesterMixin
    from tests.test_configuration_common import ConfigTester
    from tests.test_modeling_common import ModelTesterMixin, ids_tensor, random_attention_mask
except Exception as error:  # ImportError, or a missing test-only dependency (parameterized, httpx)
    pytest.skip(
        f"transformers' common tests are not importable from {TESTS_DIR}: {type(error).__name__}: {error}",
        allow_module_level=True,
    )

import torch  # noqa: E402
from transformers.models.auto import modeling_auto  # noqa: E402
from transformers.testing_utils import require_torch  # noqa: E402

from rnn_hf import (  # noqa: E402
    RnnCache,
    RnnConfig,
    RnnForCausalLM,
    RnnForMaskedLM,
    RnnForSeq2SeqLM,
    RnnForSequenceClassification,
    RnnForTokenClassification,
    RnnModel,
    RnnSeq2SeqConfig,
)
from rnn_hf.recurrent import RnnLayerState  # noqa: E402

# An in-tree model is listed in transformers' `*_MAPPING_NAMES`; the common tests read those lists by class name,
# e.g. `_prepare_for_class(..., return_labels=True)` adds `labels` only for the classes listed there, and the
# training tests leave base models (MODEL_MAPPING_NAMES) out. rnn_hf registers with the Auto classes at run time,
# which does not touch those lists, so each test class adds "rnn" to them while it runs (patch.dict undoes it).
# The auto mappings only look up model types present in CONFIG_MAPPING_NAMES, which "rnn" is not.
ATTENTION_MASK = os.environ.get("RNN_SUITE_ATTENTION_MASK", "random")
if ATTENTION_MASK not in ("random", "left_padded", "none"):
    raise ValueError(f"RNN_SUITE_ATTENTION_MASK must be random, left_padded or none, got {ATTENTION_MASK!r}")

MAPPING_NAMES = {
    "MODEL_MAPPING_NAMES": "RnnModel",
    "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES": "RnnForCausalLM",
    "MODEL_FOR_MASKED_LM_MAPPING_NAMES": "RnnForMaskedLM",
    "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES": "RnnForSequenceClassification",
    "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES": "RnnForTokenClassification",
}


class RnnModelTester:
    def __init__(
        self,
        parent,
        cell_type="lstm",
        bidirectional=False,
        batch_size=13,
        seq_length=7,
        is_training=True,
        attention_mask=ATTENTION_MASK,
        use_labels=True,
        vocab_size=99,
        embedding_size=32,
        hidden_size=32,
        num_hidden_layers=2,
        classifier_dropout=0.1,
        type_sequence_label_size=2,
        num_labels=3,
        num_choices=4,
        scope=None,
    ):
        self.parent = parent
        self.cell_type = cell_type
        self.bidirectional = bidirectional
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.is_training = is_training
        self.attention_mask = attention_mask
        self.use_labels = use_labels
        self.vocab_size = vocab_size
        self.embedding_size = (
            embedding_size  # the first hidden state (the embeddings) must be hidden_size wide
        )
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.classifier_dropout = classifier_dropout
        self.type_sequence_label_size = type_sequence_label_size
        self.num_labels = num_labels
        self.num_choices = num_choices
        self.scope = scope
        # as GPT-2's and Mamba's testers: one id for bos, eos and pad
        self.bos_token_id = vocab_size - 1
        self.eos_token_id = vocab_size - 1
        self.pad_token_id = vocab_size - 1

    def prepare_config_and_inputs(self):
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size)

        input_mask = None
        if self.attention_mask == "random":
            input_mask = random_attention_mask([self.batch_size, self.seq_length])
        elif self.attention_mask == "left_padded":
            pads = ids_tensor([self.batch_size], self.seq_length // 2 + 1)  # 0 .. seq_length // 2
            positions = torch.arange(self.seq_length, device=pads.device)
            input_mask = (positions[None, :] >= pads[:, None]).long()

        sequence_labels = None
        token_labels = None
        choice_labels = None
        if self.use_labels:
            sequence_labels = ids_tensor([self.batch_size], self.type_sequence_label_size)
            token_labels = ids_tensor([self.batch_size, self.seq_length], self.num_labels)
            choice_labels = ids_tensor([self.batch_size], self.num_choices)

        config = self.get_config()
        return config, input_ids, input_mask, sequence_labels, token_labels, choice_labels

    def get_config(self):
        return RnnConfig(
            cell_type=self.cell_type,
            bidirectional=self.bidirectional,
            vocab_size=self.vocab_size,
            embedding_size=self.embedding_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_hidden_layers,
            classifier_dropout=self.classifier_dropout,
            num_labels=self.num_labels,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            use_cache=True,
        )

    def prepare_config_and_inputs_for_common(self):
        config, input_ids, input_mask, *_ = self.prepare_config_and_inputs()
        inputs_dict = {"input_ids": input_ids}
        if input_mask is not None:
            inputs_dict["attention_mask"] = input_mask
        return config, inputs_dict


class RnnTestSetup:
    """setUp, the mapping registration and the config tests shared by the four test classes below."""

    cell_type = "lstm"
    bidirectional = False

    # ModelTesterMixin flags (transformers 5.24)
    has_attentions = False  # a recurrent network has no attention weights
    is_encoder_decoder = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for name, class_name in MAPPING_NAMES.items():
            cls.enterClassContext(mock.patch.dict(getattr(modeling_auto, name), {"rnn": class_name}))

    def setUp(self):
        self.model_tester = RnnModelTester(self, cell_type=self.cell_type, bidirectional=self.bidirectional)
        self.config_tester = ConfigTester(
            self,
            config_class=RnnConfig,
            cell_type=self.cell_type,
            bidirectional=self.bidirectional,
            hidden_size=37,
            common_properties=["hidden_size", "num_hidden_layers"],
        )

    def test_config(self):
        self.config_tester.run_common_tests()

    # The generation tests check a cache's layers by their transformers type (attention keys/values, or a
    # `LinearAttentionLayer`'s conv and SSM states) and ask models with other layers to override these two checks,
    # as transformers' own tests of its stateful models do. An RnnCache layer holds (h, c) or (h,).
    def _check_past_key_values_for_generate(self, batch_size, past_key_values, seq_length, config):
        self.assertIsInstance(past_key_values, RnnCache)
        self.assertEqual(len(past_key_values), config.num_hidden_layers)
        states_per_layer = 2 if config.cell_type == "lstm" else 1
        for layer in past_key_values.layers:
            self.assertIsInstance(layer, RnnLayerState)
            self.assertEqual(layer.number_of_states, states_per_layer)
            for state in layer.state:
                self.assertEqual(tuple(state.shape), (batch_size, config.num_directions, config.hidden_size))

    def _check_caches_are_equal(self, cache1, cache2):
        self.assertIsInstance(cache1, RnnCache)
        self.assertIsInstance(cache2, RnnCache)
        self.assertEqual(len(cache1), len(cache2))
        for state1, state2 in zip(cache1.layer_states, cache2.layer_states, strict=True):
            for tensor1, tensor2 in zip(state1, state2, strict=True):
                torch.testing.assert_close(tensor1, tensor2)


UNIDIRECTIONAL_CLASSES = (RnnModel, RnnForCausalLM, RnnForSequenceClassification, RnnForTokenClassification)
BIDIRECTIONAL_CLASSES = (RnnModel, RnnForMaskedLM, RnnForSequenceClassification, RnnForTokenClassification)


# The unidirectional classes include RnnForCausalLM, which can generate: transformers' own
# `test_generation_tester_mixin_inheritance` requires GenerationTesterMixin then, and forbids it for the
# bidirectional classes, none of which can generate.
@require_torch
class RnnLstmModelTest(RnnTestSetup, ModelTesterMixin, GenerationTesterMixin, unittest.TestCase):
    cell_type = "lstm"
    bidirectional = False
    all_model_classes = UNIDIRECTIONAL_CLASSES


@require_torch
class RnnGruModelTest(RnnTestSetup, ModelTesterMixin, GenerationTesterMixin, unittest.TestCase):
    cell_type = "gru"
    bidirectional = False
    all_model_classes = UNIDIRECTIONAL_CLASSES


@require_torch
class RnnBidirectionalLstmModelTest(RnnTestSetup, ModelTesterMixin, unittest.TestCase):
    cell_type = "lstm"
    bidirectional = True
    all_model_classes = BIDIRECTIONAL_CLASSES


@require_torch
class RnnBidirectionalGruModelTest(RnnTestSetup, ModelTesterMixin, unittest.TestCase):
    cell_type = "gru"
    bidirectional = True
    all_model_classes = BIDIRECTIONAL_CLASSES


class RnnSeq2SeqModelTester(RnnModelTester):
    """The encoder-decoder: a bidirectional encoder of 2 x 16 per direction (outputs 32 wide, as its embeddings), a
    32-wide decoder with attention; source masks as above, decoder inputs as long as the source (transformers'
    seq2seq testers draw labels of the source's length)."""

    def get_config(self):
        return RnnSeq2SeqConfig(
            cell_type=self.cell_type,
            vocab_size=self.vocab_size,
            embedding_size=self.embedding_size,
            hidden_size=self.hidden_size // 2,
            num_layers=self.num_hidden_layers,
            decoder_hidden_size=self.hidden_size,
            dropout=0.1,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            decoder_start_token_id=self.bos_token_id,
            use_cache=True,
        )

    def prepare_config_and_inputs_for_common(self):
        config, inputs_dict = super().prepare_config_and_inputs_for_common()
        inputs_dict["decoder_input_ids"] = ids_tensor([self.batch_size, self.seq_length], self.vocab_size)
        return config, inputs_dict


@require_torch
class RnnSeq2SeqModelTest(ModelTesterMixin, GenerationTesterMixin, unittest.TestCase):
    cell_type = "lstm"
    all_model_classes = (RnnForSeq2SeqLM,)
    has_attentions = False  # the decoder's attention over the source is not returned as weights
    is_encoder_decoder = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.enterClassContext(mock.patch.dict(modeling_auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
                                              {"rnn_seq2seq": "RnnForSeq2SeqLM"}))  # fmt: skip

    def setUp(self):
        self.model_tester = RnnSeq2SeqModelTester(self, cell_type=self.cell_type)
        self.config_tester = ConfigTester(self, config_class=RnnSeq2SeqConfig, cell_type=self.cell_type,
                                          hidden_size=37, common_properties=["hidden_size", "num_hidden_layers"])  # fmt: skip

    def test_config(self):
        self.config_tester.run_common_tests()

    # The cache holds each decoder layer's states, then (input feeding) the last attentional vector. `config` may be
    # transformers' decoder view of the config (`get_text_config(decoder=True)`), whose `decoder_*` fields keep the
    # decoder's sizes (`RnnSeq2SeqConfig.get_text_config`).
    def _check_past_key_values_for_generate(self, batch_size, past_key_values, seq_length, config):
        depth, width = config.decoder_num_layers, config.decoder_hidden_size
        self.assertIsInstance(past_key_values, RnnCache)
        self.assertEqual(len(past_key_values), depth + (1 if config.input_feeding else 0))
        states = [2 if config.cell_type == "lstm" else 1] * depth + ([1] if config.input_feeding else [])
        self.assertEqual([layer.number_of_states for layer in past_key_values.layers], states)
        for layer in past_key_values.layers:
            for state in layer.state:
                self.assertEqual(tuple(state.shape), (batch_size, 1, width))

    _check_caches_are_equal = RnnTestSetup._check_caches_are_equal

    # `hidden_size` is per direction: the bidirectional encoder's states are twice as wide; the decoder has its own.
    def _check_encoder_hidden_states_for_generate(self, hidden_states, batch_size, config, prompt_length):
        width = config.hidden_size * (2 if config.encoder_bidirectional else 1)
        self.assertListEqual(
            [h.shape for h in hidden_states], [(batch_size, prompt_length, width)] * len(hidden_states)
        )

    def _check_hidden_states_for_generate(self, batch_size, hidden_states, prompt_length, output_length, config,
                                          use_cache=False):  # fmt: skip
        decoder_config = mock.Mock(hidden_size=config.decoder_hidden_size)
        super()._check_hidden_states_for_generate(batch_size, hidden_states, prompt_length, output_length,
                                                  decoder_config, use_cache)  # fmt: skip

    @unittest.skip(
        "encoder and decoder are children of RnnForSeq2SeqLM itself, as in T5: no base model under a head"
    )
    def test_model_base_model_prefix(self):
        pass

    @unittest.skip("its last part sets `vocab_size = 4` on a config whose `target_vocab_size` is 99: two "
                   "vocabularies, which `resize_token_embeddings` refuses; resizing one shared vocabulary is tested in "
                   "tests/test_modeling_rnn_seq2seq.py")  # fmt: skip
    def test_resize_tokens_embeddings(self):
        pass

    @unittest.skip("a decoder-only scenario: it continues `input_ids` without decoder inputs")
    def test_recurrent_layers_mask_padding_on_continued_forward(self):
        pass


@require_torch
class RnnSeq2SeqGruModelTest(RnnSeq2SeqModelTest):
    cell_type = "gru"


def test_transformers_tests_dir_is_used():
    """The `tests` package imported above is transformers' one from TRANSFORMERS_TESTS_DIR."""
    import tests

    assert str(Path(tests.__file__).resolve()).startswith(TESTS_DIR)
    assert torch.__version__
