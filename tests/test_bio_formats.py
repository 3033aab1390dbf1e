"""knowfree.bio_formats: joining tokens, reading each tag scheme strictly, and writing spans back as tags."""

import random

import pytest

from knowfree.bio_formats import BioTagging, TagError, detect_scheme, join_tokens, spans_to_tags, tag_label, tags_to_spans

CHARACTERS = list("张三在北京大学读书")


def span(start: int, end: int, label: str) -> dict:
    return {"start": start, "end": end, "label": label}


@pytest.mark.parametrize(
    ("tokens", "text"),
    [
        (list("张三去iPhone店"), "张三去iPhone店"),
        (["我", "买了", "iPhone", "15", "和", "MacBook", "Pro"], "我买了iPhone 15和MacBook Pro"),
        (["2024", "年", "在", "São", "Paulo"], "2024年在São Paulo"),
        (["北京", "大学", "，", "ABC", "。"], "北京大学，ABC。"),
        (["Ｈｉ", "ｙｏｕ"], "Ｈｉｙｏｕ"),
    ],
)
def test_join_tokens_spaces_only_between_latin_or_digit_words(tokens, text):
    joined, ranges = join_tokens(tokens)
    assert joined == text
    assert [joined[start:end] for start, end in ranges] == tokens


@pytest.mark.parametrize(
    ("tags", "scheme", "entities"),
    [
        (["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "B-LOC", "I-LOC", "O", "O"], "BIO", [span(0, 2, "PER"), span(3, 5, "LOC"), span(5, 7, "LOC")]),
        (["B-PER", "E-PER", "O", "S-LOC", "S-LOC", "B-ORG", "I-ORG", "E-ORG", "O"], "BIOES", [span(0, 2, "PER"), span(3, 4, "LOC"), span(4, 5, "LOC"), span(5, 8, "ORG")]),
        (["B-PER", "L-PER", "O", "U-LOC", "O", "B-ORG", "I-ORG", "L-ORG", "O"], "BIOES", [span(0, 2, "PER"), span(3, 4, "LOC"), span(5, 8, "ORG")]),
        (["B-PER", "E-PER", "O", "B-ORG", "M-ORG", "M-ORG", "E-ORG", "O", "S-LOC"], "BIOES", [span(0, 2, "PER"), span(3, 7, "ORG"), span(8, 9, "LOC")]),
        (["I-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-ORG", "O", "I-PER"], "IOB1", [span(0, 2, "PER"), span(3, 5, "LOC"), span(5, 6, "LOC"), span(6, 7, "ORG"), span(8, 9, "PER")]),
    ],
)  # fmt: skip
def test_each_scheme_reads_into_character_spans(tags, scheme, entities):
    assert tags_to_spans(CHARACTERS, tags, scheme) == {"text": "".join(CHARACTERS), "entities": entities}


def test_spans_of_word_tokens_cover_their_characters_and_the_spaces_inside():
    tokens = ["我", "在", "New", "York", "用", "iPhone", "15"]
    row = tags_to_spans(tokens, ["O", "O", "B-LOC", "I-LOC", "O", "B-PRODUCT", "I-PRODUCT"])
    assert row["text"] == "我在New York用iPhone 15"
    assert [row["text"][entity["start"] : entity["end"]] for entity in row["entities"]] == ["New York", "iPhone 15"]


@pytest.mark.parametrize(
    ("tags", "scheme", "index", "message"),
    [
        (["I-PER", "O"], "BIO", 0, "tag 'I-PER' at the sentence start continues no PER span (IOB1 data needs the IOB1 scheme)"),
        (["B-PER", "I-LOC"], "BIO", 1, "tag 'I-LOC' after 'B-PER' continues no LOC span (IOB1 data needs the IOB1 scheme)"),
        (["O", "E-PER"], "BIO", 1, "tag 'E-PER' is not in the BIO scheme ('O', or B-, I- followed by a label)"),
        (["O", "S-PER"], "IOB1", 1, "tag 'S-PER' is not in the IOB1 scheme ('O', or B-, I- followed by a label)"),
        (["B-PER", "O"], "BIOES", 1, "tag 'O' after 'B-PER' leaves the PER span open (BIOES ends it with E-PER)"),
        (["B-PER", "S-LOC"], "BIOES", 1, "tag 'S-LOC' after 'B-PER' leaves the PER span open (BIOES ends it with E-PER)"),
        (["O", "B-PER"], "BIOES", 1, "the sentence ends inside a PER span (BIOES ends it with E-PER)"),
        (["O", "E-PER"], "BIOES", 1, "tag 'E-PER' after 'O' ends no PER span"),
        (["S-PER", "I-PER"], "BIOES", 1, "tag 'I-PER' after 'S-PER' continues no PER span"),
        (["o", "O"], "BIOES", 0, "tag 'o' is not in the BIOES scheme ('O', or B-, I-/M-, E-/L-, S-/U- followed by a label)"),
        (["B-", "O"], "BIO", 0, "tag 'B-' is not in the BIO scheme ('O', or B-, I- followed by a label)"),
        (["O", None], "BIO", 1, "tag None is not in the BIO scheme ('O', or B-, I- followed by a label)"),
    ],
)
def test_a_sequence_the_scheme_forbids_is_rejected_at_its_token(tags, scheme, index, message):
    with pytest.raises(TagError) as raised:
        tags_to_spans(["张", "三"], tags, scheme)
    assert (raised.value.index, str(raised.value)) == (index, message)


def test_tokens_must_be_non_empty_strings_and_match_the_tags():
    with pytest.raises(TagError, match=r"^a token must be a non-empty string, got ''$") as raised:
        tags_to_spans(["张", ""], ["O", "O"])
    assert raised.value.index == 1
    with pytest.raises(ValueError, match=r"^2 tokens but 1 tags$"):
        tags_to_spans(["张", "三"], ["O"])
    with pytest.raises(ValueError, match="unknown tag scheme 'IOBES'"):
        tags_to_spans(["张"], ["O"], "IOBES")


def test_tag_label_and_scheme_detection():
    assert [tag_label(tag) for tag in ("B-GPE.NAM", "I-A-B", "O", "PER", "X-PER", None)] == ["GPE.NAM", "A-B", None, None, None, None]
    assert detect_scheme(["O", "B-PER", "I-PER"]) == "BIO"
    assert detect_scheme(["O", "B-PER", "M-PER", "E-PER"]) == "BIOES"
    assert detect_scheme(["O", "U-PER"]) == "BIOES"
    assert detect_scheme(["O", "S"]) == "BIO"


def random_tags(rng: random.Random, length: int, scheme: str) -> list[str]:
    """A valid tag sequence: entities of 1 to 3 tokens, some adjacent, between runs of O."""
    tags: list[str] = []
    while len(tags) < length:
        width = min(rng.randint(1, 3), length - len(tags))
        label = rng.choice(["PER", "LOC", "ORG"])
        if rng.random() < 0.4:
            tags.append("O")
        elif scheme == "BIOES" and width == 1:
            tags.append(f"S-{label}")
        else:
            inside = ["B"] + ["I"] * (width - 1)
            if scheme == "BIOES":
                inside[-1] = "E"
            tags += [f"{role}-{label}" for role in inside]
    return tags


@pytest.mark.parametrize("scheme", ["BIO", "BIOES"])
def test_tags_to_spans_to_tags_is_exact(scheme):
    rng = random.Random(7)
    for _ in range(200):
        length = rng.randint(1, 12)
        tokens = [rng.choice(["张", "北京", "iPhone", "15", "大学", "A"]) for _ in range(length)]
        tags = random_tags(rng, length, scheme)
        row = tags_to_spans(tokens, tags, scheme)
        assert spans_to_tags(row["text"], row["entities"], tokens, scheme) == BioTagging(tags, [])


def test_spans_bio_cannot_hold_are_reported_and_the_rest_written():
    text = "张三在北京大学读书"
    spans = [span(3, 7, "ORG"), span(3, 5, "LOC"), span(0, 2, "PER"), span(6, 9, "X"), span(7, 9, "ORG")]
    tagging = spans_to_tags(text, spans)
    assert tagging.tags == ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "I-ORG", "I-ORG", "B-ORG", "I-ORG"]
    assert tagging.unrepresentable == [
        {**span(3, 5, "LOC"), "reason": "overlaps the ORG span [3, 7)"},
        {**span(6, 9, "X"), "reason": "overlaps the ORG span [3, 7)"},
    ]
    words = spans_to_tags(text, [span(0, 1, "PER"), span(3, 7, "ORG")], tokens=["张三", "在", "北京", "大学", "读书"], scheme="BIOES")
    assert words.tags == ["O", "O", "B-ORG", "E-ORG", "O"]
    assert words.unrepresentable == [{**span(0, 1, "PER"), "reason": "not on token boundaries"}]


def test_default_tokens_skip_whitespace_and_given_tokens_must_spell_the_text():
    assert spans_to_tags("New York", [span(0, 8, "LOC")]).tags == ["B-LOC"] + ["I-LOC"] * 6
    assert spans_to_tags("New York", [span(0, 8, "LOC")], tokens=["New", "York"]).tags == ["B-LOC", "I-LOC"]
    with pytest.raises(ValueError, match=r"^token 1 'Jersey' is not at character 4 of the text$"):
        spans_to_tags("New York", [], tokens=["New", "Jersey"])
    with pytest.raises(ValueError, match=r"^the text goes on after the last token: ' York'$"):
        spans_to_tags("New York", [], tokens=["New"])
    with pytest.raises(ValueError, match="BIO or BIOES"):
        spans_to_tags("张三", [], scheme="IOB1")
