"""KnowFreeConfig: the paper's defaults, validation errors, and a lossless JSON round trip."""

import pytest
from conftest import tiny_config
from transformers import BertConfig

from configuration_knowfree import KnowFreeConfig


def test_paper_defaults():
    config = KnowFreeConfig()
    assert (config.projection_size, config.span_hidden_size) == (200, 200)
    assert (config.local_attention_heads, config.local_attention_window) == (10, 3)
    assert config.activation == "leaky_relu" and config.threshold == 0.5
    assert config.synthetic_weight == 1.0 and config.decoding == "flat" and config.max_span_width is None
    assert isinstance(config.encoder_config, BertConfig)


def test_extension_weights_default_to_one_per_label():
    config = KnowFreeConfig(target_labels=["PER"], extension_labels=["WORD", "NOUN"])
    assert config.extension_label_weights == [1.0, 1.0]
    assert config.labels == ["PER", "WORD", "NOUN"]


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"local_attention_window": -1}, "local_attention_window must be >= 0"),
        ({"span_hidden_size": 205}, "not divisible by local_attention_heads"),
        ({"projection_size": 201}, "not divisible by biaffine_heads"),
        ({"target_labels": ["PER", "PER"]}, "duplicate labels"),
        ({"extension_labels": ["WORD", "WORD"]}, "duplicate labels"),
        ({"target_labels": ["PER"], "extension_labels": ["PER"]}, "in both target_labels and extension_labels"),
        ({"extension_labels": ["WORD"], "extension_label_weights": [0.5, 0.5]}, "2 values for 1 extension labels"),
        ({"synthetic_weight": -0.1}, "must be >= 0"),
        ({"max_span_width": 0}, "max_span_width must be >= 1"),
        ({"activation": "tanh"}, "activation must be one of"),
        ({"decoding": "greedy"}, "decoding must be one of"),
        ({"threshold": 1.5}, "threshold must be in"),
        ({"target_labels": ["PER"], "label_thresholds": {"PER": 0.0}}, r"label_thresholds\['PER'\] must be in"),
        ({"target_labels": ["PER"], "label_thresholds": {"LOC": 0.3}}, r"not target labels: \['LOC'\]"),
        ({"negative_weight": 0.0}, "negative_weight must be > 0"),
    ],
)
def test_bad_values_raise_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        KnowFreeConfig(**overrides)


def test_json_round_trip_keeps_the_encoder_and_labels(tmp_path):
    config = tiny_config(
        77, ["LOC", "PER"], ["WORD"], extension_label_weights=[0.3], max_span_width=16, decoding="nested", label_thresholds={"PER": 0.35}
    )
    config.save_pretrained(tmp_path)
    loaded = KnowFreeConfig.from_pretrained(tmp_path)
    assert loaded.encoder_config.to_dict() == config.encoder_config.to_dict()
    for name in ("target_labels", "extension_labels", "extension_label_weights", "max_span_width", "label_thresholds", "decoding"):
        assert getattr(loaded, name) == getattr(config, name)
