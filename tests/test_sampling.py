"""knowfree.sampling: nested K subsets and the greedy N-way K-shot sampler."""

import json
from collections import Counter
from pathlib import Path

import pytest
from datasets import Dataset

from knowfree.data import load_corpus
from knowfree.sampling import sample_n_way_k_shot, take_k

def span(start: int, end: int, label: str) -> dict:
    return {"start": start, "end": end, "label": label}


def rows_with_labels(label_lists: list[list[str]]) -> list[dict]:
    """One row per label list; each label becomes a one-character span."""
    return [
        {"text": "字" * max(len(labels), 1), "entities": [span(i, i + 1, label) for i, label in enumerate(labels)]}
        for labels in label_lists
    ]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_take_k_prefixes_nest():
    rows = [{"text": str(index), "entities": []} for index in range(2000)]
    small, medium, large = (take_k(rows, k) for k in (250, 500, 1000))
    assert (len(small), len(medium), len(large)) == (250, 500, 1000)
    assert medium[:250] == small and large[:500] == medium
    assert len({row["text"] for row in large}) == 1000


def test_take_k_keeps_datasets_as_datasets():
    rows = [{"text": str(index), "entities": []} for index in range(20)]
    subset = take_k(Dataset.from_list(rows), 5, seed=3)
    assert isinstance(subset, Dataset)
    assert subset.to_list() == take_k(rows, 5, seed=3)


@pytest.mark.parametrize("k", [0, 21])
def test_take_k_rejects_impossible_k(k):
    with pytest.raises(ValueError, match="between 1 and the number of rows"):
        take_k([{"text": "a", "entities": []}] * 20, k)


@pytest.mark.parametrize("name", ["weibo", "resume", "ud"])
def test_take_k_reproduces_the_shared_subsets(name, shared_data):
    train = read_jsonl(shared_data / name / "train.jsonl")
    for k in (250, 500, 1000):
        assert take_k(train, k) == read_jsonl(shared_data / name / f"train_{k}.jsonl")


def test_loader_k_uses_the_shared_file_where_the_permutation_cannot_rebuild_it(shared_data):
    """cmeee's pool was carved from a larger set, so its train_250.jsonl is not take_k(train.jsonl)."""
    expected = read_jsonl(shared_data / "cmeee" / "train_250.jsonl")
    train = load_corpus(shared_data / "cmeee", splits=("train",), k=250).splits["train"]
    assert [row["text"] for row in train] == [row["text"] for row in expected]


def test_greedy_sampler_reaches_k_per_label():
    label_lists = [["A"], ["B", "B"], [], ["A", "C"], ["C"], ["B"], ["A", "A", "A"], ["C", "D"], ["A"], ["B", "C"]]
    rows = rows_with_labels(label_lists)
    selected = sample_n_way_k_shot(rows, ["A", "B", "C"], k=2, seed=0)
    assert selected == sorted(set(selected))
    counts = Counter(entity["label"] for index in selected for entity in rows[index]["entities"])
    assert all(counts[label] >= 2 for label in "ABC")
    assert 2 not in selected


def test_greedy_sampler_is_deterministic_per_seed():
    rows = rows_with_labels([["A"], ["B"], ["A", "B"], ["A"], ["B"], ["A"], ["B"], ["A", "B"]] * 5)
    runs = {seed: sample_n_way_k_shot(rows, ["A", "B"], k=3, seed=seed) for seed in range(5)}
    assert all(sample_n_way_k_shot(rows, ["A", "B"], k=3, seed=seed) == runs[seed] for seed in runs)
    assert len({tuple(selected) for selected in runs.values()}) > 1


def test_greedy_sampler_accepts_datasets():
    rows = rows_with_labels([["A"], ["B"], ["A", "B"], ["A"], ["B"]])
    assert sample_n_way_k_shot(Dataset.from_list(rows), ["A", "B"], k=2, seed=1) == sample_n_way_k_shot(
        rows, ["A", "B"], k=2, seed=1
    )


def test_greedy_sampler_counts_duplicate_spans_once_and_ignores_other_labels():
    rows = [
        {"text": "字字", "entities": [span(0, 1, "A"), span(0, 1, "A"), span(1, 2, "Z")]},
        {"text": "字", "entities": [span(0, 1, "A")]},
    ]
    assert sample_n_way_k_shot(rows, ["A"], k=2, seed=0) == [0, 1]


def test_greedy_sampler_takes_every_mention_of_a_label_short_of_k_and_says_so(caplog):
    rows = rows_with_labels([["A"], ["A", "B"], ["A"], ["C"], ["A"]])
    with caplog.at_level("WARNING", logger="knowfree.sampling"):
        chosen = sample_n_way_k_shot(rows, ["A", "B", "C", "D"], k=2, seed=0)
    assert {1, 3} <= set(chosen)  # the only B and the only C
    assert sum("A" in [span["label"] for span in rows[index]["entities"]] for index in chosen) >= 2
    assert "fewer mentions than that in the data and get all of them: 'B' has 1, 'C' has 1, 'D' has 0" in caplog.text
