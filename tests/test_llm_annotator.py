import json

import pytest

from augment.llm_annotator import LLMAnnotator, read_pos, read_segmentation, read_synonym_groups
from augment.annotation import RowAnnotation
from augment.llm_client import LLMClient, RetryPolicy
from augment.reply_cache import ReplyCache
from fake_llm_server import DROP, HANG, FakeLLM, error
from scripted_annotator import ScriptedAnnotator

pytestmark = pytest.mark.usefixtures("hub_online")

WELL_FORMED = "马云在杭州创办了阿里巴巴。"
IN_PROSE = "北京大学的张老师去上海开会。"
GARBAGE = "我爱北京天安门。"
ABSENT = "张三在上海。"
ERROR_THEN_OK = "五百错误后成功。"
TIMES_OUT = "这一句会超时。"
DROPPED = "这一句会断线。"
SENTENCES = [WELL_FORMED, IN_PROSE, GARBAGE, ABSENT, ERROR_THEN_OK, TIMES_OUT, DROPPED]

ENTITY_REPLIES = {
    WELL_FORMED: json.dumps([{"entity": "马云", "type": "人物"}, {"entity": "杭州", "type": "城市"}], ensure_ascii=False),
    IN_PROSE: '好的，识别结果如下：\n```json\n[{"entity": "北京大学", "type": "学校"}, {"entity": "上海", "type": "城市"},]\n```',
    GARBAGE: "抱歉，我无法完成这个任务。",
    ABSENT: json.dumps([{"entity": "李四", "type": "人物"}, {"entity": "上海", "type": "地点"}], ensure_ascii=False),
    ERROR_THEN_OK: json.dumps([{"entity": "五百", "type": "数字"}], ensure_ascii=False),
}
FAILURES = {
    ("entities", ERROR_THEN_OK): [error(500)],
    ("segmentation", TIMES_OUT): [HANG, HANG],
    ("pos", DROPPED): [DROP, DROP],
}


@pytest.fixture
def annotated(tmp_path):
    cache = ReplyCache(tmp_path / "cache.jsonl")
    with FakeLLM(ScriptedAnnotator(ENTITY_REPLIES, FAILURES)) as server:
        client = LLMClient(endpoint=server.url, retry=RetryPolicy(timeout=0.5, retries=1, backoff_seconds=0.0), concurrency=3, cache=cache)
        annotations = LLMAnnotator(client, "zh").annotate_texts(SENTENCES)
    return dict(zip(SENTENCES, annotations)), client, tmp_path / "cache.jsonl"


def test_every_scripted_reply_is_read_or_counted(annotated):
    rows, client, _ = annotated
    assert rows[WELL_FORMED].entities == [(0, 2, "人物"), (3, 5, "城市")]
    assert rows[IN_PROSE].entities == [(0, 4, "学校"), (9, 11, "城市")]
    assert rows[GARBAGE].entities == [] and rows[GARBAGE].counts["entities_reply_unparsable"] == 1
    assert rows[ABSENT].entities == [(3, 5, "地点")] and rows[ABSENT].counts["entity_not_in_text"] == 1
    assert rows[ERROR_THEN_OK].entities == [(0, 2, "数字")]
    assert rows[TIMES_OUT].counts == {"segmentation_request_failed": 1, "pos_skipped_no_segmentation": 1}
    assert rows[TIMES_OUT].words == [] and rows[TIMES_OUT].pos == []
    assert rows[DROPPED].counts == {"pos_request_failed": 1} and rows[DROPPED].pos == []
    assert rows[DROPPED].words == [(index, index + 1) for index in range(len(DROPPED))]
    for sentence in (WELL_FORMED, IN_PROSE, GARBAGE, ABSENT, ERROR_THEN_OK):
        assert rows[sentence].pos == [(index, index + 1, "n") for index in range(len(sentence))]
    assert client.counts["failed_timeout"] == 1 and client.counts["failed_connection_dropped"] == 1


def test_the_cache_holds_exactly_one_entry_per_successful_request(annotated):
    _, client, cache_path = annotated
    successful = len(SENTENCES) + (len(SENTENCES) - 1) + (len(SENTENCES) - 2)  # entities, segmentations, POS
    assert client.counts["answered"] == successful
    keys = [json.loads(line)["key"] for line in cache_path.read_text(encoding="utf-8").splitlines()]
    assert len(keys) == len(set(keys)) == successful


def segmented(text: str, words: list[str]) -> RowAnnotation:
    """A row whose accepted segmentation is `words`, as read_pos finds it."""
    annotation = RowAnnotation()
    read_segmentation(text, json.dumps(words, ensure_ascii=False), annotation)
    assert annotation.counts == {}
    return annotation


def pos_reply(*pairs: tuple[str, str]) -> str:
    return json.dumps([{"word": word, "pos": tag} for word, tag in pairs], ensure_ascii=False)


def test_a_pos_word_not_in_the_text_is_counted_and_the_others_are_kept():
    annotation = segmented("我爱北京", ["我", "爱", "北京"])
    read_pos("我爱北京", pos_reply(("我", "r"), ("喜欢", "v"), ("爱", "v"), ("北京", "ns")), annotation)
    assert annotation.pos == [(0, 1, "r"), (1, 2, "v"), (2, 4, "n")]
    assert annotation.counts == {"pos_word_unaligned": 1}


def test_pos_words_are_found_through_punctuation_variants():
    text = "你好，世界！"
    annotation = segmented(text, ["你好", "，", "世界", "！"])
    read_pos(text, pos_reply(("你好", "l"), (",", "x"), ("世界", "n"), ("!", "x")), annotation)
    assert annotation.pos == [(0, 2, "l"), (2, 3, "x"), (3, 5, "n"), (5, 6, "x")] and annotation.counts == {}


def test_a_clause_tagged_as_one_word_is_counted_and_the_words_after_it_still_align():
    text = "你好，世界。我爱北京"
    annotation = segmented(text, ["你好", "，", "世界", "。", "我", "爱", "北京"])
    read_pos(text, pos_reply(("你好,世界", "n"), ("。", "x"), ("我", "r"), ("爱", "v"), ("北京", "n")), annotation)
    assert annotation.pos == [(5, 6, "x"), (6, 7, "r"), (7, 8, "v"), (8, 10, "n")]
    assert annotation.counts == {"pos_clause": 1, "pos_words_untagged": 3}


def test_a_long_run_of_words_is_a_clause_and_a_short_one_a_compound():
    text = "我们明天去北京大学参观"
    annotation = segmented(text, ["我们", "明天", "去", "北京", "大学", "参观"])
    read_pos(text, pos_reply(("我们明天去北京大学", "v"), ("参观", "v")), annotation)
    assert annotation.counts == {"pos_clause": 1, "pos_words_untagged": 5}
    compound = segmented(text, ["我们", "明天", "去", "北京", "大学", "参观"])
    read_pos(text, pos_reply(("我们", "r"), ("明天", "t"), ("去", "v"), ("北京大学", "nt"), ("参观", "v")), compound)
    assert compound.pos == [(0, 2, "r"), (2, 4, "t"), (4, 5, "v"), (5, 9, "n"), (9, 11, "v")] and compound.counts == {}


def test_a_number_with_a_point_is_not_a_clause():
    text = "涨了3.5倍"
    annotation = segmented(text, ["涨", "了", "3", ".", "5", "倍"])
    read_pos(text, pos_reply(("涨", "v"), ("了", "u"), ("3.5", "m"), ("倍", "q")), annotation)
    assert annotation.pos == [(0, 1, "v"), (1, 2, "u"), (2, 5, "m"), (5, 6, "q")] and annotation.counts == {}


def test_a_pos_word_cutting_a_segmentation_word_is_dropped():
    text = "北京大学在北京"
    annotation = segmented(text, ["北京大学", "在", "北京"])
    read_pos(text, pos_reply(("北京", "ns"), ("大学", "n"), ("在", "p"), ("北京", "ns")), annotation)
    assert annotation.pos == [(4, 5, "p"), (5, 7, "n")]
    assert annotation.counts == {"pos_word_off_segmentation": 2, "pos_words_untagged": 1}


def test_tags_from_mixed_tag_sets_become_one_inventory():
    text = "猫、狗和鸟，吃。"
    annotation = segmented(text, ["猫", "、", "狗", "和", "鸟", "，", "吃", "。"])
    reply = pos_reply(("猫", "NOUN"), ("、", "punct"), ("狗", "n"), ("和", "连词"), ("鸟", "名词"), ("，", "标点符号"), ("吃", "VERB"), ("。", ","))
    read_pos(text, reply, annotation)
    assert [tag for _, _, tag in annotation.pos] == ["n", "x", "n", "c", "n", "x", "v", "x"] and annotation.counts == {}


def test_an_unknown_or_missing_tag_drops_only_its_word():
    text = "我爱北京"
    annotation = segmented(text, ["我", "爱", "北京"])
    read_pos(text, json.dumps([{"word": "我", "pos": "代名"}, {"word": "爱"}, {"word": "北京", "pos": "ns"}], ensure_ascii=False), annotation)
    assert annotation.pos == [(2, 4, "n")]
    assert annotation.counts == {"pos_tag_unknown": 2, "pos_words_untagged": 2}


def test_malformed_items_are_counted_and_skipped():
    annotation = segmented("我爱", ["我", "爱"])
    read_pos("我爱", json.dumps(["我", {"pos": "v"}, {"word": "爱", "pos": "v"}], ensure_ascii=False), annotation)
    assert annotation.pos == [(1, 2, "v")] and annotation.counts == {"pos_item_malformed": 2, "pos_words_untagged": 1}


def test_english_replies_are_read_into_upos():
    text = "Alice saw two cats."
    annotation = segmented(text, ["Alice", "saw", "two", "cats", "."])
    read_pos(text, pos_reply(("Alice", "NNP"), ("saw", "VBD"), ("two", "num"), ("cats", "NOUN"), (".", ".")), annotation, "en")
    assert [tag for _, _, tag in annotation.pos] == ["PROPN", "VERB", "NUM", "NOUN", "PUNCT"] and annotation.counts == {}


def test_synonym_groups_keep_only_known_types():
    reply = '{"地点": ["城市", "地点", "星球"], "人物": "人物", "机构": []}'
    assert read_synonym_groups(reply, ["城市", "地点", "人物"]) == {"地点": ["城市", "地点"]}
    assert read_synonym_groups("无法回答", ["城市"]) == {}


def test_a_standard_name_that_is_one_of_the_types_joins_its_group():
    """Qwen2.5-Coder-1.5B's answer to the merge prompt for the 63 Weibo types (2026-11-30), cut to three types."""
    reply = '{"人名": ["人", "人物"], "品牌": ["产品"]}'
    assert read_synonym_groups(reply, ["人", "人名", "人物", "产品"]) == {"人名": ["人", "人物", "人名"], "品牌": ["产品"]}
    assert read_synonym_groups('{"地名": ["地点"]}', ["地点"]) == {"地名": ["地点"]}  # a new name joins nothing


def test_a_synonym_group_that_is_the_whole_type_list_is_dropped(caplog):
    """What Qwen2.5-Coder-1.5B answered for 63 Weibo types: one group holding every type."""
    types = ["人", "人名", "时间", "地点"]
    with caplog.at_level("WARNING", logger="augment.llm_annotator"):
        assert read_synonym_groups('{"同义词组": ["人", "人名", "时间", "地点"], "人物": ["人", "人名"]}', types) == {"人物": ["人", "人名"]}
    assert "同义词组" in caplog.text and "dropped" in caplog.text
    assert read_synonym_groups('{"人": ["人", "人名"]}', ["人", "人名"]) == {"人": ["人", "人名"]}, "two types may be one group"


def test_a_segmentation_word_that_is_a_clause_is_cut_at_its_marks():
    from augment.llm_annotator import read_segmentation

    text = "今天天气好，我们去公园。"
    annotation = RowAnnotation()
    read_segmentation(text, json.dumps(["今天天气好，我们去公园", "。"], ensure_ascii=False), annotation)
    assert [text[start:end] for start, end in annotation.words] == ["今天天气好", "，", "我们去公园", "。"]
    assert annotation.counts == {"segmentation_clause_split": 1}
    numbers = RowAnnotation()
    read_segmentation("3.5元", json.dumps(["3.5", "元"]), numbers)
    assert numbers.words == [(0, 3), (3, 4)] and "segmentation_clause_split" not in numbers.counts  # a decimal point is no clause mark
