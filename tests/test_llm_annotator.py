import json

import pytest

from augment.llm_annotator import LLMAnnotator, read_pos, read_synonym_groups
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


def test_pos_words_that_do_not_tile_are_rejected():
    annotation = RowAnnotation()
    read_pos("我爱北京", json.dumps([{"word": "我", "pos": "r"}, {"word": "北京", "pos": "ns"}]), annotation)
    assert annotation.pos == [] and annotation.counts == {"pos_rejected_not_tiling": 1}
    untagged = RowAnnotation()
    read_pos("我爱", json.dumps([{"word": "我", "pos": "r"}, {"word": "爱"}]), untagged)
    assert untagged.pos == [] and untagged.counts == {"pos_rejected_not_tiling": 1}


def test_synonym_groups_keep_only_known_types():
    reply = '{"地点": ["城市", "地点", "星球"], "人物": "人物", "机构": []}'
    assert read_synonym_groups(reply, ["城市", "地点", "人物"]) == {"地点": ["城市", "地点"]}
    assert read_synonym_groups("无法回答", ["城市"]) == {}
