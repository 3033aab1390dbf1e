from pathlib import Path

import jieba
import pytest

from augment.offline_annotator import major_class
from augment.pos_tags import TAG_MEANINGS, TAG_SETS, describe_tags, normalize_tag
from augment.prompts import render


def jieba_dictionary_tags() -> set[str]:
    """Every POS tag in jieba's dictionary, plus the two its tagger adds (eng for Latin words, x)."""
    lines = (Path(jieba.__file__).parent / "dict.txt").read_text(encoding="utf-8").splitlines()
    return {line.split()[2] for line in lines if len(line.split()) > 2} | {"eng", "x"}


def test_the_inventories_are_fixed_and_glossed():
    assert TAG_SETS["en"] == ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")
    assert TAG_SETS["zh"][:5] == ("n", "t", "s", "f", "v") and TAG_SETS["zh"][-2:] == ("eng", "x")
    for language, tags in TAG_SETS.items():
        assert len(set(tags)) == len(tags) and tuple(TAG_MEANINGS[language]) == tags
        assert all(TAG_MEANINGS[language][tag].strip() for tag in tags)


def test_llm_and_offline_annotations_share_the_chinese_labels():
    tags = jieba_dictionary_tags()
    assert {major_class(tag) for tag in tags} == set(TAG_SETS["zh"])
    assert all(normalize_tag(tag, "zh") == major_class(tag) for tag in tags)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("n", "n"), ("NOUN", "n"), ("名词", "n"), ("PROPN", "n"), ("nr", "n"), ("nrfg", "n"), ("ns", "n"), ("专有名词", "n"),
        ("VERB", "v"), ("AUX", "v"), ("vn", "v"), ("动词", "v"), ("ADJ", "a"), ("形容词", "a"), ("ADV", "d"), ("副词", "d"),
        ("PRON", "r"), ("代词", "r"), ("ADP", "p"), ("介词", "p"), ("CCONJ", "c"), ("SCONJ", "c"), ("连词", "c"),
        ("PART", "u"), ("uj", "u"), ("助词", "u"), ("NUM", "m"), ("数词", "m"), ("量词", "q"), ("叹词", "e"),
        ("语气词", "y"), ("方位词", "f"), ("时间词", "t"), ("处所词", "s"), ("eng", "eng"), ("w", "x"),
        ("PUNCT", "x"), ("punct", "x"), ("标点", "x"), ("标点符号", "x"), ("punctuation", "x"), ("noun", "n"), ("verb", "v"),
    ],
)  # fmt: skip
def test_chinese_tags_from_every_tag_set(written, expected):
    assert normalize_tag(written, "zh") == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("NN", "NOUN"), ("NNS", "NOUN"), ("NNP", "PROPN"), ("VBZ", "VERB"), ("MD", "AUX"), ("JJ", "ADJ"), ("RB", "ADV"),
        ("IN", "ADP"), ("DT", "DET"), ("PRP$", "PRON"), ("CD", "NUM"), ("TO", "PART"), ("UH", "INTJ"), ("$", "SYM"),
        ("-LRB-", "PUNCT"), ("NOUN", "NOUN"), ("propn", "PROPN"), ("noun", "NOUN"), ("verb", "VERB"),
        ("punctuation", "PUNCT"), ("proper noun", "PROPN"), ("determiner", "DET"),
    ],
)  # fmt: skip
def test_english_tags_from_ptb_and_names(written, expected):
    assert normalize_tag(written, "en") == expected


def test_case_width_whitespace_and_surrounding_brackets_are_ignored():
    for written in [" N ", "Noun", "[n]", "（名词）", "<NOUN>", "Ｎ", '"n"', "n：名词", "NOUN (名词)", "名词/n"]:
        assert normalize_tag(written, "zh") == "n", written
    assert normalize_tag("  Proper   Noun ", "en") == "PROPN"


def test_a_tag_that_is_punctuation_means_the_punctuation_class():
    assert [normalize_tag(tag, "zh") for tag in [",", "，", "。", "“", "…", "("]] == ["x"] * 6
    assert [normalize_tag(tag, "en") for tag in [",", ".", "``", "''", "!"]] == ["PUNCT"] * 5


def test_unknown_and_ambiguous_tags_map_to_nothing():
    for written in ["", "代名", "nonsense", "verbal", "n, v", "名词/v", "auxiliary"]:
        assert normalize_tag(written, "zh") is None, written
    for written in ["conjunction", "名词", "n", "XYZ"]:
        assert normalize_tag(written, "en") is None, written
    with pytest.raises(ValueError, match="no POS tag inventory"):
        normalize_tag("n", "fr")


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_pos_prompt_lists_every_allowed_tag_with_its_gloss(language):
    prompt = render("pos", language, text="我爱北京", words=["我", "爱", "北京"])[1]["content"]
    assert describe_tags(language) in prompt
    separator = "：" if language == "zh" else ": "
    assert all(f"{tag}{separator}{meaning}" in prompt.splitlines() for tag, meaning in TAG_MEANINGS[language].items())
