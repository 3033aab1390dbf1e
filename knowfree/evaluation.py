"""Span-level scoring through the repository's `evaluate` module (metrics/span_f1), the one metric."""

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import evaluate

SPAN_METRIC_PATH = Path(__file__).resolve().parents[1] / "metrics" / "span_f1"


@lru_cache(maxsize=1)
def span_metric() -> evaluate.EvaluationModule:
    """The span-F1 module, loaded offline from its folder in this repository."""
    if not SPAN_METRIC_PATH.is_dir():
        raise FileNotFoundError(f"span metric not found at {SPAN_METRIC_PATH}; install knowfree with `pip install -e .`")
    return evaluate.load(str(SPAN_METRIC_PATH))


def score_spans(predictions: Sequence[Sequence[dict]], references: Sequence[Sequence[dict]]) -> dict:
    """Micro P/R/F1 and per-label figures; extra keys of predicted spans (score, text) are ignored."""

    def bare(spans: Sequence[dict]) -> list[dict]:
        return [{"start": span["start"], "end": span["end"], "label": span["label"]} for span in spans]

    return span_metric().compute(
        predictions=[bare(spans) for spans in predictions], references=[bare(spans) for spans in references]
    )
