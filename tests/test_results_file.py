"""The shared writer of RESULTS.md and results.json: each benchmark's marked block is appended once,
then replaced in place, and what surrounds it is kept."""

import sys

import pytest
from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from accuracy import BLOCK_END as ACCURACY_END, BLOCK_START as ACCURACY_START  # noqa: E402
from results_file import replace_marked_block  # noqa: E402

SPEED_START, SPEED_END = "<!-- speed:start -->", "<!-- speed:end -->"
SPEED_BLOCK = f"{SPEED_START}\n## Speed\nfigures of the other helper\n{SPEED_END}"


def replace_speed_block(document: str, block: str) -> str:
    return replace_marked_block(document, block, SPEED_START, SPEED_END)


def replace_accuracy_block(document: str, block: str) -> str:
    return replace_marked_block(document, block, ACCURACY_START, ACCURACY_END)


def test_block_is_appended_then_replaced_in_place():
    document = "# Results\n\nAccuracy table.\n"
    first = replace_speed_block(document, f"{SPEED_START}\nold\n{SPEED_END}")
    assert first.startswith(document) and first.endswith(f"{SPEED_END}\n")
    edited = first + "\n## Later section\n"
    second = replace_speed_block(edited, f"{SPEED_START}\nnew\n{SPEED_END}")
    assert "old" not in second and "\nnew\n" in second
    assert second.startswith(document) and second.endswith("\n## Later section\n")
    assert second.count(SPEED_START) == 1


def test_block_in_an_empty_document_and_unmatched_markers():
    assert replace_speed_block("", "block") == "block\n"
    with pytest.raises(ValueError, match="unmatched"):
        replace_speed_block(f"text\n{SPEED_START}\n", "block")


def test_block_replacement_preserves_what_surrounds_it():
    document = f"# Results\n\n{SPEED_BLOCK}\n"
    first = replace_accuracy_block(document, f"{ACCURACY_START}\nold\n{ACCURACY_END}")
    second = replace_accuracy_block(first + "\ntrailing note\n", f"{ACCURACY_START}\nnew\n{ACCURACY_END}")
    assert SPEED_BLOCK in second and "new" in second and "old" not in second and second.endswith("trailing note\n")
    with pytest.raises(ValueError, match="unmatched"):
        replace_accuracy_block(f"{ACCURACY_START}\nno end", "block")
