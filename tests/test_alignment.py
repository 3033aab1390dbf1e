from augment.alignment import lay_words, mention_spans, occurrences, repair_segmentation


def test_occurrences_and_mentions():
    text = "北京人在北京"
    assert occurrences(text, "北京") == [0, 4]
    assert mention_spans(text, "北京") == [(0, 2), (4, 6)]
    assert mention_spans(text, " 北京 ", occurrence=2) == [(4, 6)]
    assert mention_spans(text, "北京", occurrence=5) == [(0, 2), (4, 6)]  # an invalid index keeps every occurrence
    assert mention_spans(text, "上海") == []
    assert occurrences("aaa", "aa") == [0, 1]


def test_words_tile_with_spaces_ignored():
    text = "我 爱北京。"
    tiling = lay_words(text, ["我", "爱", "北京", "。"])
    assert tiling.spans == [(0, 1), (2, 3), (3, 5), (5, 6)]
    assert tiling.gaps == []


def test_skipped_characters_become_repaired_words():
    text = "我爱北京天安门，天安门上太阳升。"  # 16 characters, 3 of them skipped: within the 20 % repair limit
    tiling = lay_words(text, ["我", "爱", "天安门", "，", "天安门", "上", "太阳", "升"])
    assert tiling.gaps == [(2, 4), (15, 16)]
    assert repair_segmentation(text, tiling) == [(0, 1), (1, 2), (2, 4), (4, 7), (7, 8), (8, 11), (11, 12), (12, 14), (14, 15), (15, 16)]


def test_large_gaps_and_unknown_words_are_rejected():
    text = "我爱北京天安门。"
    assert repair_segmentation(text, lay_words(text, ["我", "。"])) is None
    assert lay_words(text, ["我", "上海"]) is None
    assert lay_words(text, ["北京", "我"]) is None  # order matters: 我 is not ahead of 北京
