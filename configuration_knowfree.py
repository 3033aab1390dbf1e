"""Configuration of the KnowFREE span-labeling model.

Only data and validation live here. The encoder's full configuration is stored inside this one, so a
saved model loads without the network and without knowing which checkpoint the encoder came from.
Defaults follow section 4.1 and appendix G of "Improving Low-Resource Sequence Labeling with
Knowledge Fusion and Contextual Label Explanations" (EMNLP 2025).
"""

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

ACTIVATIONS = ("leaky_relu", "relu", "gelu")
DECODINGS = ("flat", "nested")


class KnowFreeConfig(PreTrainedConfig):
    r"""
    Args:
        encoder_config (`dict` or `PreTrainedConfig`): configuration of the pretrained encoder (any
            `AutoModel` encoder, e.g. BERT or the BERT-shaped multilingual-e5).
        target_labels (`list[str]`): the labels the model predicts, in output order.
        extension_labels (`list[str]`): auxiliary labels (entities, segmentation, POS from augmentation)
            that are trained but never predicted.
        extension_label_weights (`list[float]`): alpha_i, the loss weight of each extension label
            (eq. 18/20); defaults to 1.0 for every extension label.
        synthetic_weight (`float`): beta, the loss weight of rows marked synthetic (eq. 19).
        negative_weight (`float`): loss weight of the (span, label) terms whose target is 0, relative
            to the positive ones; 1.0 is eq. 18 as written (see train.py for the value it trains with).
        projection_size (`int`): D', size of the start/end projections (eq. 9).
        span_hidden_size (`int`): D~, size of the span features H_B (eq. 10).
        biaffine_heads (`int`): heads of the multi-head biaffine; must divide `projection_size`.
        local_attention_heads (`int`): K, heads of the local span attention (eq. 12); must divide D~.
        local_attention_window (`int`): w, a span attends to the spans of its start row whose end is
            at most w characters away (eq. 11).
        use_local_attention (`bool`): switch the local attention off for the ablation.
        activation (`str`): sigma of eq. 9.
        threshold (`float`): minimum sigmoid score for a span to be predicted, for every label that
            `label_thresholds` does not name.
        label_thresholds (`dict[str, float]` or `None`): a threshold per target label, chosen on dev
            after training (train.py calibrates them); `predict(threshold=...)` overrides both.
        decoding (`str`): "flat" keeps non-overlapping spans, "nested" keeps nested but never crossing.
        max_span_width (`int` or `None`): longest span in characters the grid holds; `None` = no limit.
        dropout (`float`): dropout on the character states before the span head.
        character_embeddings (`bool`): add each character's own input embedding to its state (through
            a projection that starts at zero), so boundaries inside multi-character pieces are learnable.
    """

    model_type = "knowfree"
    sub_configs_defaults = {"encoder_config": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    encoder_config: dict | PreTrainedConfig | None = None
    target_labels: list[str] | None = None
    extension_labels: list[str] | None = None
    extension_label_weights: list[float] | None = None
    synthetic_weight: float = 1.0
    negative_weight: float = 1.0
    projection_size: int = 200
    span_hidden_size: int = 200
    biaffine_heads: int = 4
    local_attention_heads: int = 10
    local_attention_window: int = 3
    use_local_attention: bool = True
    activation: str = "leaky_relu"
    threshold: float = 0.5
    label_thresholds: dict[str, float] | None = None
    decoding: str = "flat"
    max_span_width: int | None = None
    dropout: float = 0.1
    character_embeddings: bool = False

    def __post_init__(self, **kwargs):
        self.target_labels = list(self.target_labels or [])
        self.extension_labels = list(self.extension_labels or [])
        if self.extension_label_weights is None:
            self.extension_label_weights = [1.0] * len(self.extension_labels)
        self.extension_label_weights = [float(weight) for weight in self.extension_label_weights]
        self.label_thresholds = {label: float(value) for label, value in (self.label_thresholds or {}).items()}
        super().__post_init__(**kwargs)
        self._check_values()

    def _check_values(self) -> None:
        """Reject values that would otherwise fail deep inside a forward pass."""
        for name, labels in (("target_labels", self.target_labels), ("extension_labels", self.extension_labels)):
            repeated = sorted({label for label in labels if labels.count(label) > 1})
            if repeated:
                raise ValueError(f"KnowFreeConfig.{name}: duplicate labels {repeated}")
        shared = sorted(set(self.target_labels) & set(self.extension_labels))
        if shared:
            raise ValueError(f"KnowFreeConfig: labels {shared} are in both target_labels and extension_labels")
        if len(self.extension_label_weights) != len(self.extension_labels):
            raise ValueError(
                f"KnowFreeConfig.extension_label_weights has {len(self.extension_label_weights)} values for "
                f"{len(self.extension_labels)} extension labels"
            )
        if any(weight < 0 for weight in self.extension_label_weights) or self.synthetic_weight < 0:
            raise ValueError("KnowFreeConfig: loss weights (alpha, beta) must be >= 0")
        if self.negative_weight <= 0:
            raise ValueError(f"KnowFreeConfig.negative_weight must be > 0, got {self.negative_weight}")
        if self.local_attention_window < 0:
            raise ValueError(f"KnowFreeConfig.local_attention_window must be >= 0, got {self.local_attention_window}")
        for name in ("projection_size", "span_hidden_size", "biaffine_heads", "local_attention_heads"):
            if getattr(self, name) <= 0:
                raise ValueError(f"KnowFreeConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.span_hidden_size % self.local_attention_heads:
            raise ValueError(
                f"KnowFreeConfig.span_hidden_size (D~ = {self.span_hidden_size}) is not divisible by "
                f"local_attention_heads (K = {self.local_attention_heads})"
            )
        if self.projection_size % self.biaffine_heads:
            raise ValueError(
                f"KnowFreeConfig.projection_size ({self.projection_size}) is not divisible by "
                f"biaffine_heads ({self.biaffine_heads})"
            )
        if self.max_span_width is not None and self.max_span_width < 1:
            raise ValueError(f"KnowFreeConfig.max_span_width must be >= 1 or None, got {self.max_span_width}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"KnowFreeConfig.activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.decoding not in DECODINGS:
            raise ValueError(f"KnowFreeConfig.decoding must be one of {DECODINGS}, got {self.decoding!r}")
        thresholds = {"threshold": self.threshold}
        thresholds.update({f"label_thresholds[{label!r}]": value for label, value in self.label_thresholds.items()})
        for name, value in thresholds.items():
            if not 0.0 < value < 1.0:
                raise ValueError(f"KnowFreeConfig.{name} must be in (0, 1), got {value}")
        unknown = sorted(set(self.label_thresholds) - set(self.target_labels))
        if unknown:
            raise ValueError(f"KnowFreeConfig.label_thresholds names labels that are not target labels: {unknown}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"KnowFreeConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def labels(self) -> list[str]:
        """All output channels of the span classifier: target labels first, then extension labels."""
        return self.target_labels + self.extension_labels

    def target_thresholds(self) -> list[float]:
        """The decision threshold of each target label, in output order."""
        return [self.label_thresholds.get(label, self.threshold) for label in self.target_labels]


__all__ = ["KnowFreeConfig"]
