from augment.alignment import lay_words, matching_form, mention_spans, occurrences, repair_segmentation


def test_occurrences_and_mentions():
    text = "北京人在北京"
    assert occurrences(text, "北京") == [(0, 2), (4, 6)]
    assert mention_spans(text, "北京") == [(0, 2), (4, 6)]
    assert mention_spans(text, " 北京 ", occurrence=2) == [(4, 6)]
    assert mention_spans(text, "北京", occurrence=5) == [(0, 2), (4, 6)]  # an invalid index keeps every occurrence
    assert mention_spans(text, "上海") == []
    assert occurrences("aaa", "aa") == [(0, 2), (1, 3)]


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


def test_ascii_and_cjk_punctuation_find_each_other():
    assert mention_spans("他说你好，世界。", "你好,世界") == [(2, 7)]
    assert mention_spans("他说你好,世界.", "你好，世界。") == [(2, 8)]
    assert mention_spans("他说“北京”很好", '"北京"') == [(2, 6)]
    assert mention_spans("苹果、香蕉（进口）", "苹果,香蕉(进口)") == [(0, 9)]
    tiling = lay_words("你好，世界！", ["你好", ",", "世界", "!"])
    assert tiling.spans == [(0, 2), (2, 3), (3, 5), (5, 6)] and tiling.gaps == []


def test_full_width_latin_and_digits_match_ascii_both_ways():
    assert mention_spans("我买了ＩＰｈｏｎｅ１５。", "IPhone15") == [(3, 11)]
    assert mention_spans("我买了IPhone15。", "ＩＰｈｏｎｅ１５") == [(3, 11)]
    assert mention_spans("我买了ＩＰｈｏｎｅ１５。", "iphone15") == []  # letter case is not folded


def test_characters_that_change_length_map_back_to_whole_source_characters():
    text = "重5㎏…好"  # ㎏ is "kg" and … is "..." in matching form
    assert occurrences(text, "5kg...") == [(1, 4)]
    assert occurrences(text, "...") == [(3, 4)]
    assert occurrences(text, "k") == [] and occurrences(text, "..") == []  # a part of one source character is no match
    assert lay_words(text, ["重", "5", "kg", "...", "好"]).spans == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]


def test_spans_are_source_offsets_whose_matching_form_is_the_needle():
    text = "（注）ＡＢＣ公司说：“５㎏…”"
    for needle in ["(注)", "ABC公司", '说:"5kg..."', "公司说:"]:
        (start, end), = occurrences(text, needle)
        assert matching_form(text[start:end]) == matching_form(needle)
    assert occurrences(text, "ABC公司") == [(3, 8)]
