"""Threshold calibration on dev: the global threshold, per-label thresholds, and how rare labels are kept
out of it; candidates are decoded exactly as `predict` decodes them."""

from knowfree.thresholds import best_global_threshold, calibrate, decoded_spans
from modeling_knowfree import SpanCandidate

LABELS = ["PER", "LOC"]


def span(start: int, end: int, label: str) -> dict:
    return {"start": start, "end": end, "label": label}


def sentences(label: int, right: float, wrong: float, count: int) -> tuple[list, list]:
    """`count` sentences, each with one true span of `label` scored `right` and a false one scored `wrong`."""
    candidates = [[SpanCandidate(0, 2, label, right), SpanCandidate(4, 6, label, wrong)] for _ in range(count)]
    references = [[span(0, 2, LABELS[label])] for _ in range(count)]
    return candidates, references


def test_the_global_threshold_separates_true_from_false_spans():
    candidates, references = sentences(0, right=0.32, wrong=0.12, count=5)
    threshold, scores = best_global_threshold(candidates, references, LABELS, nested=False)
    assert 0.12 < threshold <= 0.32 and scores["f1"] == 1.0
    # of the thresholds that all reach F1 1.0 (0.15 ... 0.30), the one nearest 0.5
    assert threshold == 0.3


def test_per_label_thresholds_when_one_threshold_cannot_serve_both_labels():
    per_candidates, per_references = sentences(0, right=0.9, wrong=0.7, count=6)
    loc_candidates, loc_references = sentences(1, right=0.2, wrong=0.08, count=6)
    calibration = calibrate(per_candidates + loc_candidates, per_references + loc_references, LABELS, nested=False, min_support=3)
    assert calibration.f1 < 1.0
    assert calibration.label_f1 == 1.0
    thresholds = [calibration.label_thresholds.get(label, calibration.threshold) for label in LABELS]
    assert 0.7 < thresholds[0] <= 0.9 and 0.08 < thresholds[1] <= 0.2
    assert set(calibration.label_thresholds) <= set(LABELS)


def test_labels_with_too_few_dev_spans_keep_the_global_threshold():
    per_candidates, per_references = sentences(0, right=0.9, wrong=0.7, count=6)
    loc_candidates, loc_references = sentences(1, right=0.2, wrong=0.08, count=2)
    calibration = calibrate(per_candidates + loc_candidates, per_references + loc_references, LABELS, nested=False, min_support=3)
    assert "LOC" not in calibration.label_thresholds
    assert calibration.as_record()["per_label"]["thresholds"] == calibration.label_thresholds


def test_a_label_below_its_threshold_does_not_block_an_overlapping_span_of_another_label():
    """Thresholds filter before decoding, as in predict: a 0.6 PER span under a 0.7 PER threshold is
    gone, so the overlapping 0.3 LOC span above its 0.2 threshold is kept."""
    candidates = [[SpanCandidate(0, 3, 0, 0.6), SpanCandidate(1, 3, 1, 0.3)]]
    assert decoded_spans(candidates, [0.7, 0.2], LABELS, nested=False) == [[span(1, 3, "LOC")]]
    assert decoded_spans(candidates, [0.5, 0.2], LABELS, nested=False) == [[span(0, 3, "PER")]]
