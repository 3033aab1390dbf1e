"""Hand-made cases for metrics/span_f1: exact-match span P/R/F1, loaded offline by path."""

from pathlib import Path

import evaluate
import pytest

METRIC_DIR = Path(__file__).resolve().parents[1] / "metrics" / "span_f1"


def span(start: int, end: int, label: str) -> dict:
    return {"start": start, "end": end, "label": label}


@pytest.fixture(scope="module")
def span_f1():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("HF_DATASETS_OFFLINE", "1")
        yield evaluate.load(str(METRIC_DIR))


def test_loads_offline_by_absolute_path(span_f1):
    assert span_f1.name == "span_f1"
    assert "exact match" in span_f1.description
    assert "Tjong Kim Sang" in span_f1.citation


def test_exact_match_is_perfect(span_f1):
    gold = [[span(0, 2, "PER"), span(3, 5, "LOC")], [span(1, 4, "ORG")]]
    result = span_f1.compute(predictions=gold, references=gold)
    assert (result["precision"], result["recall"], result["f1"]) == (1.0, 1.0, 1.0)
    assert (result["num_predicted"], result["num_gold"], result["num_correct"]) == (3, 3, 3)


@pytest.mark.parametrize(
    "wrong",
    [span(0, 3, "PER"), span(1, 2, "PER"), span(0, 2, "LOC")],
    ids=["end-off-by-one", "start-off-by-one", "wrong-label"],
)
def test_near_misses_are_errors(span_f1, wrong):
    gold = [[span(0, 2, "PER"), span(5, 7, "LOC")]]
    pred = [[wrong, span(5, 7, "LOC")]]
    result = span_f1.compute(predictions=pred, references=gold)
    assert result["num_correct"] == 1
    assert result["precision"] == 0.5 and result["recall"] == 0.5 and result["f1"] == 0.5


def test_nested_spans_are_scored_independently(span_f1):
    gold = [[span(0, 6, "dis"), span(0, 2, "bod"), span(2, 4, "sym")]]
    pred = [[span(0, 6, "dis"), span(0, 2, "bod"), span(2, 5, "sym")]]
    result = span_f1.compute(predictions=pred, references=gold)
    assert (result["num_predicted"], result["num_gold"], result["num_correct"]) == (3, 3, 2)
    assert result["f1"] == pytest.approx(2 / 3)


def test_duplicate_spans_count_once(span_f1):
    gold = [[span(0, 2, "PER"), span(0, 2, "PER")]]
    pred = [[span(0, 2, "PER"), span(0, 2, "PER"), span(3, 4, "PER")]]
    result = span_f1.compute(predictions=pred, references=gold)
    assert (result["num_predicted"], result["num_gold"], result["num_correct"]) == (2, 1, 1)
    assert result["precision"] == 0.5 and result["recall"] == 1.0


def test_empty_predictions(span_f1):
    result = span_f1.compute(predictions=[[], []], references=[[span(0, 2, "PER")], []])
    assert (result["precision"], result["recall"], result["f1"]) == (0.0, 0.0, 0.0)
    assert (result["num_predicted"], result["num_gold"], result["num_correct"]) == (0, 1, 0)
    assert result["per_label"]["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_empty_gold(span_f1):
    result = span_f1.compute(predictions=[[span(0, 2, "PER")]], references=[[]])
    assert (result["precision"], result["recall"], result["f1"]) == (0.0, 0.0, 0.0)
    assert (result["num_predicted"], result["num_gold"], result["num_correct"]) == (1, 0, 0)
    assert result["per_label"]["PER"]["support"] == 0


def test_both_empty_is_zero_not_perfect(span_f1):
    result = span_f1.compute(predictions=[[], []], references=[[], []])
    assert result == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "num_predicted": 0,
        "num_gold": 0,
        "num_correct": 0,
        "per_label": {},
    }


def test_per_label_figures(span_f1):
    gold = [[span(0, 2, "PER"), span(3, 5, "LOC")], [span(0, 3, "PER"), span(4, 6, "ORG")]]
    pred = [[span(0, 2, "PER"), span(3, 5, "ORG")], [span(0, 3, "PER"), span(4, 6, "ORG"), span(7, 8, "ORG")]]
    per_label = span_f1.compute(predictions=pred, references=gold)["per_label"]
    assert list(per_label) == ["LOC", "ORG", "PER"]
    assert per_label["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert per_label["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert per_label["ORG"]["precision"] == pytest.approx(1 / 3)
    assert per_label["ORG"]["recall"] == 1.0
    assert per_label["ORG"]["f1"] == pytest.approx(0.5)
    assert per_label["ORG"]["support"] == 1


def test_add_batch_accumulates_like_one_compute(span_f1):
    gold = [[span(0, 2, "PER")], [span(1, 3, "LOC")]]
    pred = [[span(0, 2, "PER")], [span(1, 4, "LOC")]]
    span_f1.add_batch(predictions=pred[:1], references=gold[:1])
    span_f1.add_batch(predictions=pred[1:], references=gold[1:])
    assert span_f1.compute() == span_f1.compute(predictions=pred, references=gold)
