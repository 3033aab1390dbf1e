from augment.fusion import fold_rare_labels


def row(*spans):
    return {"text": "x" * 20, "entities": [], "extensions": [{"start": start, "end": end, "label": label} for start, end, label in spans]}


def labels_of(rows):
    return [[(span["start"], span["end"], span["label"]) for span in one["extensions"]] for one in rows]


def test_rare_labels_fold_into_their_kinds_catch_all_when_that_is_frequent_enough():
    rows = [
        row((0, 2, "ent:人名"), (3, 5, "ent:网址"), (6, 7, "pos:n")),
        row((0, 2, "ent:人名"), (3, 5, "ent:链接"), (6, 7, "pos:n")),
        row((0, 2, "ent:人名"), (3, 5, "ent:情感"), (6, 7, "pos:n"), (8, 9, "pos:o")),
    ]
    folded, report = fold_rare_labels(rows, min_count=3)
    assert labels_of(folded) == [
        [(0, 2, "ent:人名"), (3, 5, "ent:other"), (6, 7, "pos:n")],
        [(0, 2, "ent:人名"), (3, 5, "ent:other"), (6, 7, "pos:n")],
        [(0, 2, "ent:人名"), (3, 5, "ent:other"), (6, 7, "pos:n")],
    ]
    assert report == {
        "ent:情感": {"spans": 1, "folded_into": "ent:other"},
        "ent:网址": {"spans": 1, "folded_into": "ent:other"},
        "ent:链接": {"spans": 1, "folded_into": "ent:other"},
        "pos:o": {"spans": 1, "folded_into": None},  # pos:other would hold one span: still too rare, dropped
    }


def test_two_rare_types_on_one_span_become_one_catch_all_span_and_nothing_else_changes():
    rows = [row((0, 2, "ent:甲"), (0, 2, "ent:乙"), (3, 4, "seg:word")), row((0, 2, "ent:丙"), (3, 4, "seg:word")), row((3, 4, "seg:word"))]
    folded, report = fold_rare_labels(rows, min_count=3)
    assert labels_of(folded) == [[(0, 2, "ent:other"), (3, 4, "seg:word")], [(0, 2, "ent:other"), (3, 4, "seg:word")], [(3, 4, "seg:word")]]
    assert set(report) == {"ent:甲", "ent:乙", "ent:丙"}


def test_a_count_of_one_keeps_every_label():
    rows = [row((0, 2, "ent:甲"), (3, 4, "pos:o"))]
    assert fold_rare_labels(rows, min_count=1) == (rows, {})
