"""Decision thresholds chosen on dev: one for every label, and one per label, by exact span F1.

A span model trained with binary cross-entropy on a few hundred sentences is under-confident: the
true spans are a tiny share of the band cells, so their scores stay low while their ranking is
already good (Weibo K = 250 at the fixed 0.5: precision 0.69, recall 0.37). The threshold is a
decision, not a model parameter, so it is chosen where the checkpoint is chosen: on dev.

The model scores the dev set once (every candidate down to the lowest threshold tried); each trial
threshold then only filters and decodes those candidates, with the processor's own `spans_above` and
`decode_spans`, and scores them with the one span metric.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from knowfree.evaluation import score_spans
from modeling_knowfree import KnowFreeModel
from processing_knowfree import SpanCandidate, decode_spans, spans_above

THRESHOLD_GRID = tuple(round(0.05 * step, 2) for step in range(1, 20))
"""Thresholds tried: 0.05, 0.10, ..., 0.95."""
MIN_LABEL_SUPPORT = 20
"""A label gets a threshold of its own only with at least this many dev spans; rarer labels keep the
global one, whose F1 on a handful of spans would be a coin toss."""


@dataclass
class Calibration:
    """The thresholds chosen on dev and the dev F1 each choice reaches."""

    threshold: float
    f1: float
    label_thresholds: dict[str, float]
    label_f1: float

    def as_record(self) -> dict:
        return {
            "global": {"threshold": self.threshold, "dev_f1": self.f1},
            "per_label": {"thresholds": self.label_thresholds, "dev_f1": self.label_f1},
        }


def score_candidates(model: KnowFreeModel, texts: Sequence[str], batch_size: int) -> list[list[SpanCandidate]]:
    """Every candidate span of `texts` that any threshold of the grid could keep."""
    return model.span_candidates(list(texts), batch_size=batch_size, min_score=THRESHOLD_GRID[0])


def decoded_spans(
    candidates: Sequence[Sequence[SpanCandidate]], thresholds: Sequence[float], labels: Sequence[str], nested: bool
) -> list[list[dict]]:
    """What `predict` returns at these per-label thresholds, as metric spans."""
    return [
        [{"start": span.start, "end": span.end, "label": labels[span.label]} for span in decode_spans(spans_above(text_candidates, list(thresholds)), nested)]
        for text_candidates in candidates
    ]


def best_global_threshold(
    candidates: Sequence[Sequence[SpanCandidate]], references: Sequence[Sequence[dict]], labels: Sequence[str], nested: bool
) -> tuple[float, dict]:
    """The grid threshold with the highest dev F1 (ties go to the one nearest 0.5) and its scores."""
    best: tuple[float, dict] | None = None
    for threshold in sorted(THRESHOLD_GRID, key=lambda value: (abs(value - 0.5), value)):
        scores = score_spans(decoded_spans(candidates, [threshold] * len(labels), labels, nested), references)
        if best is None or scores["f1"] > best[1]["f1"]:
            best = (threshold, scores)
    return best


def calibrate(
    candidates: Sequence[Sequence[SpanCandidate]],
    references: Sequence[Sequence[dict]],
    labels: Sequence[str],
    nested: bool,
    min_support: int = MIN_LABEL_SUPPORT,
) -> Calibration:
    """The best global threshold, then per-label thresholds by coordinate ascent from it.

    Two passes over the labels with enough dev support, each trying the whole grid for one label
    while the others stay put; a change is kept only when it raises micro F1.
    """
    threshold, scores = best_global_threshold(candidates, references, labels, nested)
    support = Counter(span["label"] for spans in references for span in spans)
    current = [threshold] * len(labels)
    current_f1 = scores["f1"]
    for _ in range(2):
        for index, label in enumerate(labels):
            if support[label] < min_support:
                continue
            for value in THRESHOLD_GRID:
                trial = current[:index] + [value] + current[index + 1 :]
                f1 = score_spans(decoded_spans(candidates, trial, labels, nested), references)["f1"]
                if f1 > current_f1:
                    current, current_f1 = trial, f1
    label_thresholds = {label: value for label, value in zip(labels, current) if value != threshold}
    return Calibration(threshold=threshold, f1=scores["f1"], label_thresholds=label_thresholds, label_f1=current_f1)
