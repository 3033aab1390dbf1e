import sys
from collections import Counter

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from error_analysis import markdown, outcome  # noqa: E402


def test_each_gold_span_gets_exactly_one_outcome():
    gold = {"start": 2, "end": 4, "label": "LOC"}
    assert outcome(gold, [{"start": 2, "end": 4, "label": "LOC"}, {"start": 0, "end": 5, "label": "ORG"}]) == "found"
    assert outcome(gold, [{"start": 2, "end": 4, "label": "ORG"}]) == "wrong label"
    assert outcome(gold, [{"start": 1, "end": 4, "label": "LOC"}]) == "wrong boundary"
    assert outcome(gold, [{"start": 4, "end": 6, "label": "LOC"}]) == "missed"  # touching is not overlapping


def test_the_table_puts_the_total_first_and_gives_recall():
    table = markdown({"label B (train 1)": Counter(found=1, missed=1), "all": Counter(found=3, missed=1), "text seen in training": Counter(found=2)})
    rows = table.splitlines()[2:]
    assert rows[0] == "| all (4) | 3 | 0 | 0 | 1 | 0.75 |" and rows[1].startswith("| text seen") and rows[2].startswith("| label B")
