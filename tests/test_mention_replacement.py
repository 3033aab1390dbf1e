import random

from knowfree.mention_replacement import mention_pool, replace_mentions


def spans_text(row: dict, field: str = "entities") -> list[tuple[str, str]]:
    return [(row["text"][span["start"] : span["end"]], span["label"]) for span in row[field]]


ROWS = [
    {"text": "李明在北京工作", "entities": [{"start": 0, "end": 2, "label": "PER"}, {"start": 3, "end": 5, "label": "LOC"}]},
    {"text": "欧阳娜娜去了上海", "entities": [{"start": 0, "end": 4, "label": "PER"}, {"start": 6, "end": 8, "label": "LOC"}]},
]


def test_pool_holds_each_labels_distinct_mentions_in_order():
    assert mention_pool(ROWS + ROWS) == {"PER": ["李明", "欧阳娜娜"], "LOC": ["北京", "上海"]}


def test_every_mention_swapped_at_probability_one_and_later_spans_shifted():
    row = {
        **ROWS[0],
        "extensions": [
            {"start": 0, "end": 2, "label": "nr"},  # the swapped mention itself: kept on the new text
            {"start": 1, "end": 2, "label": "x"},  # inside it: described the old text, dropped
            {"start": 2, "end": 4, "label": "y"},  # crosses 北京's start: dropped
            {"start": 5, "end": 7, "label": "v"},  # after both swaps: shifted
            {"start": 0, "end": 7, "label": "S"},  # encloses both: kept, stretched
        ],
        "synthetic": True,
    }
    swapped = replace_mentions(row, mention_pool(ROWS), 1.0, random.Random(0))
    assert swapped["text"] == "欧阳娜娜在上海工作"
    assert spans_text(swapped) == [("欧阳娜娜", "PER"), ("上海", "LOC")]
    assert spans_text(swapped, "extensions") == [("欧阳娜娜", "nr"), ("工作", "v"), ("欧阳娜娜在上海工作", "S")]
    assert swapped["synthetic"] is True
    assert spans_text(row, "extensions")[1] == ("明", "x"), "the input row is left as it was"


def test_probability_zero_and_labels_without_other_text_keep_the_row():
    pool = mention_pool(ROWS)
    assert replace_mentions(ROWS[0], pool, 0.0, random.Random(0)) == ROWS[0]
    assert replace_mentions(ROWS[0], {"PER": ["李明"]}, 1.0, random.Random(0)) == ROWS[0]


def test_overlapping_mentions_are_never_swapped():
    nested = {"text": "北京大学医院", "entities": [{"start": 0, "end": 4, "label": "ORG"}, {"start": 0, "end": 2, "label": "LOC"}, {"start": 4, "end": 6, "label": "ORG"}]}
    pool = {"ORG": ["北京大学", "医院", "清华"], "LOC": ["北京", "上海"]}
    swapped = replace_mentions(nested, pool, 1.0, random.Random(3))
    assert swapped["text"].startswith("北京大学") and swapped["text"] != nested["text"]
    assert spans_text(swapped)[:2] == [("北京大学", "ORG"), ("北京", "LOC")]
    assert spans_text(swapped)[2][0] in ("北京大学", "清华")


def test_the_draw_is_fixed_by_the_generator_seed():
    pool = mention_pool(ROWS)
    draws = {replace_mentions(ROWS[1], pool, 0.5, random.Random(f"42:{epoch}:1"))["text"] for epoch in range(12)}
    assert draws == {replace_mentions(ROWS[1], pool, 0.5, random.Random(f"42:{epoch}:1"))["text"] for epoch in range(12)}
    assert len(draws) > 1, "different epochs draw different swaps"
