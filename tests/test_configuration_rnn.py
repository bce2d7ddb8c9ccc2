import pytest

from rnn_hf import RnnConfig


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(cell_type="rnn"), r"`cell_type` must be one of \('lstm', 'gru'\), got 'rnn'"),
        (dict(hidden_size=0), r"`hidden_size` must be a positive integer, got 0"),
        (dict(num_layers=-2), r"`num_layers` must be a positive integer, got -2"),
        (dict(vocab_size=0), r"`vocab_size` must be a positive integer"),
        (dict(weight_dropout=1.0), r"`weight_dropout` must be a probability in \[0, 1\), got 1.0"),
        (dict(input_dropout=-0.1), r"`input_dropout` must be a probability"),
        (dict(classifier_pooling="attention"), r"`classifier_pooling` must be one of"),
        (dict(classifier_hidden_size=0), r"`classifier_hidden_size` must be None or a positive integer"),
        (
            dict(classifier_norm="group"),
            r"`classifier_norm` must be one of \('layer', 'batch'\), got 'group'",
        ),
        (dict(recurrent_initializer="zeros"), r"`recurrent_initializer` must be one of"),
        (
            dict(vocab_size=10, pad_token_id=12),
            r"`pad_token_id` must be None or an id in \[0, vocab_size=10\), got 12",
        ),
        (
            dict(vocab_size=10, mask_token_id=10),
            r"`mask_token_id` must be None or an id in \[0, vocab_size=10\)",
        ),
    ],
)
def test_invalid_arguments_raise_a_value_error_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RnnConfig(**kwargs)


def test_round_trip_and_aliases(tmp_path):
    config = RnnConfig(
        cell_type="gru", vocab_size=50, hidden_size=8, num_layers=3, bidirectional=True, weight_dropout=0.2
    )
    config.save_pretrained(tmp_path)
    loaded = RnnConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.num_hidden_layers == 3 and loaded.output_size == 16
    assert loaded.auto_map["AutoModelForMaskedLM"] == "modeling_rnn.RnnForMaskedLM"
