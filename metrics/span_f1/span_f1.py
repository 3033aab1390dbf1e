"""Exact-match span precision, recall and F1: the single scorer for every knowfree task.

Flat NER, nested NER, word segmentation and POS tagging are all span labeling here, so one metric
over (start, end, label) triples scores all of them. Load it offline by path:
``evaluate.load("/abs/path/to/metrics/span_f1")``.
"""

from collections import Counter

import datasets
import evaluate

_DESCRIPTION = """\
Span F1 scores span labeling by exact match. A predicted span counts as correct only when its start
offset, end offset and label are all identical to a gold span of the same sentence; a boundary that
is off by one character or a wrong label is both a false positive and a false negative. Spans may
overlap or nest, so the same metric serves flat NER, nested NER, word segmentation (every word a
`WORD` span) and POS tagging (every word a span labelled with its tag).

Spans are compared as sets per sentence, so a span listed twice is counted once on either side.
Scores are micro-averaged over all spans of all sentences, and reported per label as well.
When a denominator is zero (no predictions, no gold spans, or neither), the affected precision,
recall or F1 is 0.0, as scikit-learn does with `zero_division=0`. In particular, scoring an empty
corpus against empty predictions gives F1 0.0 with all counts 0, not 1.0: there is nothing to have
got right, and the counts say so.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: one list of spans per sentence. A span is a dict
        `{"start": int, "end": int, "label": str}` with character offsets into the sentence and an
        exclusive `end`. No other keys are accepted.
    references: the gold spans, in the same shape and sentence order as `predictions`.

Returns:
    precision: correct / predicted, micro-averaged over all sentences.
    recall: correct / gold.
    f1: harmonic mean of precision and recall.
    num_predicted: number of distinct predicted spans.
    num_gold: number of distinct gold spans.
    num_correct: number of predicted spans that exactly match a gold span.
    per_label: {label: {"precision", "recall", "f1", "support"}} for every label seen in the
        predictions or the references; `support` is the number of gold spans with that label.

Examples:
    >>> span_f1 = evaluate.load("metrics/span_f1")
    >>> gold = [[{"start": 0, "end": 2, "label": "PER"}, {"start": 3, "end": 5, "label": "LOC"}]]
    >>> pred = [[{"start": 0, "end": 2, "label": "PER"}, {"start": 3, "end": 6, "label": "LOC"}]]
    >>> span_f1.compute(predictions=pred, references=gold)["f1"]
    0.5
"""

_CITATION = """\
@inproceedings{tjong-kim-sang-de-meulder-2003-introduction,
    title = "Introduction to the {C}o{NLL}-2003 Shared Task: Language-Independent Named Entity Recognition",
    author = "Tjong Kim Sang, Erik F. and De Meulder, Fien",
    booktitle = "Proceedings of the Seventh Conference on Natural Language Learning at {HLT}-{NAACL} 2003",
    year = "2003",
    pages = "142--147",
}
"""

_SPAN = {"start": datasets.Value("int32"), "end": datasets.Value("int32"), "label": datasets.Value("string")}


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def _harmonic_mean(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _scores(correct: int, predicted: int, gold: int) -> dict[str, float]:
    precision, recall = _ratio(correct, predicted), _ratio(correct, gold)
    return {"precision": precision, "recall": recall, "f1": _harmonic_mean(precision, recall)}


def _span_set(spans: list[dict]) -> set[tuple[int, int, str]]:
    return {(span["start"], span["end"], span["label"]) for span in spans}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SpanF1(evaluate.Metric):
    """Micro and per-label exact-match span P/R/F1 over (start, end, label) triples."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.List(_SPAN), "references": datasets.List(_SPAN)}
            ),
            license="Apache-2.0",
        )

    def _compute(self, predictions: list[list[dict]], references: list[list[dict]]) -> dict:
        predicted_per_label: Counter[str] = Counter()
        gold_per_label: Counter[str] = Counter()
        correct_per_label: Counter[str] = Counter()
        for predicted_spans, gold_spans in zip(predictions, references, strict=True):
            predicted, gold = _span_set(predicted_spans), _span_set(gold_spans)
            predicted_per_label.update(label for _, _, label in predicted)
            gold_per_label.update(label for _, _, label in gold)
            correct_per_label.update(label for _, _, label in predicted & gold)

        per_label = {
            label: {
                **_scores(correct_per_label[label], predicted_per_label[label], gold_per_label[label]),
                "support": gold_per_label[label],
            }
            for label in sorted(predicted_per_label | gold_per_label)
        }
        num_predicted, num_gold = predicted_per_label.total(), gold_per_label.total()
        num_correct = correct_per_label.total()
        return {
            **_scores(num_correct, num_predicted, num_gold),
            "num_predicted": num_predicted,
            "num_gold": num_gold,
            "num_correct": num_correct,
            "per_label": per_label,
        }
