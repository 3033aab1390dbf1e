import pytest

from knowfree.label_weights import extension_alphas, extension_label_weight


def test_extension_label_weight_formula():
    assert extension_label_weight([10, 30], 40) == pytest.approx(0.5 * 20 / 40)
    assert extension_label_weight([100], 10) == 1.0
    with pytest.raises(ValueError):
        extension_label_weight([1], 0)


def test_alphas_count_target_and_extension_spans_of_the_rows():
    def span(label):
        return {"start": 0, "end": 1, "label": label}

    rows = [
        {"entities": [span("PER"), span("LOC")], "extensions": [span("pos:n"), span("pos:n"), span("ent:地名")]},
        {"entities": [span("PER")], "extensions": [span("pos:n"), span("pos:n")]},
    ]
    # mean target count (PER 2, LOC 1) = 1.5: pos:n (4) -> 0.5 * 1.5 / 4, ent:地名 (1) -> min(1, 0.75)
    assert extension_alphas(rows, ["PER", "LOC"], ["pos:n", "ent:地名"]) == pytest.approx([0.1875, 0.75])
