import json

import pytest

pytestmark = pytest.mark.usefixtures("hub_online")

from augment.llm_client import CHAT_FORMS, NO_STRUCTURE, EndpointUnreachable, LLMClient, RetryPolicy, StructuredOutputUnsupported, usage_between
from augment.prompts import render
from augment.reply_cache import ReplyCache
from fake_llm_server import DROP, HANG, FakeLLM, closed_port_url, error, reply

FAST_RETRY = RetryPolicy(timeout=5.0, retries=2, backoff_seconds=0.0)


def sentence_messages(sentence: str):
    return render("segmentation", "zh", text=sentence)


def scripted(actions: dict[str, list]):
    """Serve each sentence's actions in order, then a reply echoing the sentence."""
    def script(prompt: str):
        for sentence, pending in actions.items():
            if sentence in prompt and pending:
                return pending.pop(0)
        return reply(f"answer: {prompt.split('句子：')[-1].strip()}")
    return script


@pytest.mark.parametrize("route", ["chat", "generate"])
def test_both_routes_answer_and_cache(route, tmp_path):
    with FakeLLM(scripted({})) as server:
        endpoint = server.url + ("/generate" if route == "generate" else "")
        client = LLMClient(endpoint=endpoint, route=route, retry=FAST_RETRY, cache=ReplyCache(tmp_path / "c.jsonl"))
        replies = client.complete_all([sentence_messages("甲"), sentence_messages("乙")])
    assert replies == ["answer: 甲", "answer: 乙"]
    assert {route_name for route_name, _ in server.requests} == {route}
    assert client.counts["sent"] == 2 and client.counts["answered"] == 2
    assert len(ReplyCache(tmp_path / "c.jsonl")) == 2


def test_transient_failures_are_retried_and_permanent_ones_counted(tmp_path):
    actions = {"五百": [error(500), reply("ok after 500")], "限流": [error(429), reply("ok after 429")], "断开": [DROP, reply("ok after drop")], "坏请求": [error(400)], "一直掉线": [DROP, DROP, DROP]}
    with FakeLLM(scripted(actions)) as server:
        client = LLMClient(endpoint=server.url, retry=FAST_RETRY, cache=ReplyCache(tmp_path / "c.jsonl"))
        replies = client.complete_all([sentence_messages(sentence) for sentence in ["五百", "限流", "断开", "坏请求", "一直掉线"]])
    assert replies == ["ok after 500", "ok after 429", "ok after drop", None, None]
    assert client.counts["failed_http_400"] == 1 and client.counts["failed_connection_dropped"] == 1
    assert client.counts["sent"] == 2 + 2 + 2 + 1 + 3  # the 400 is not retried
    assert len(ReplyCache(tmp_path / "c.jsonl")) == 3


def test_a_hanging_request_times_out_and_the_rest_finish(tmp_path):
    with FakeLLM(scripted({"卡住": [HANG, HANG]})) as server:
        client = LLMClient(endpoint=server.url, retry=RetryPolicy(timeout=0.5, retries=1, backoff_seconds=0.0), cache=ReplyCache(tmp_path / "c.jsonl"))
        replies = client.complete_all([sentence_messages("卡住"), sentence_messages("正常")])
    assert replies == [None, "answer: 正常"]
    assert client.counts["failed_timeout"] == 1


def test_cached_replies_are_never_requested_again(tmp_path):
    cache_path = tmp_path / "c.jsonl"
    with FakeLLM(scripted({})) as server:
        LLMClient(endpoint=server.url, retry=FAST_RETRY, cache=ReplyCache(cache_path)).complete_all([sentence_messages("甲")])
        second = LLMClient(endpoint=server.url, retry=FAST_RETRY, cache=ReplyCache(cache_path))
        assert second.complete_all([sentence_messages("甲"), sentence_messages("乙")]) == ["answer: 甲", "answer: 乙"]
    assert [prompt.split("句子：")[-1].strip() for _, prompt in server.requests] == ["甲", "乙"]
    assert second.counts["cached"] == 1 and second.counts["sent"] == 1


def test_an_unreachable_endpoint_is_one_clear_error():
    url = closed_port_url()
    client = LLMClient(endpoint=url, retry=RetryPolicy(timeout=2.0, retries=1, backoff_seconds=0.0))
    with pytest.raises(EndpointUnreachable, match=url.replace(".", r"\.")):
        client.complete_all([sentence_messages("甲"), sentence_messages("乙")])


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="endpoint URL or a model id"):
        LLMClient()
    with pytest.raises(ValueError, match="route"):
        LLMClient(endpoint="http://127.0.0.1:1", route="completions")


def test_offline_mode_is_refused_with_the_reason(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(EndpointUnreachable, match="HF_HUB_OFFLINE"):
        LLMClient(endpoint="http://127.0.0.1:1")


def entity_schema():
    from augment.reply_schemas import reply_schema

    return reply_schema("entities", "zh")


@pytest.mark.parametrize(
    ("server", "route", "expected_form", "field"),
    [
        ("tgi", "chat", "json_schema", ("response_format",)),
        ("llamacpp", "chat", "json_object_schema", ("response_format",)),
        ("vllm", "chat", "structured_outputs", ("structured_outputs",)),
        ("tgi", "generate", "grammar", ("parameters", "grammar")),
    ],
)
def test_auto_finds_the_schema_form_the_server_obeys_and_sends_it(server, route, expected_form, field, tmp_path):
    schema = entity_schema()
    with FakeLLM(scripted({}), schemas=server) as fake:
        endpoint = fake.url + ("/generate" if route == "generate" else "")
        client = LLMClient(endpoint=endpoint, route=route, retry=FAST_RETRY, cache=ReplyCache(tmp_path / "c.jsonl"), structured="auto")
        replies = client.complete_all([sentence_messages("甲")], schemas=[schema])
    assert client.structured_form == expected_form
    sent = fake.bodies[-1]
    for key in field:
        sent = sent[key]
    assert schema in (sent.get("value"), sent.get("schema"), sent.get("json"))
    assert json.loads(replies[0]) == []  # the constrained fake could not write its prose answer
    assert client.counts["answered"] == 1


def test_a_server_without_schemas_gets_plain_requests_and_on_refuses_it(tmp_path):
    with FakeLLM(scripted({})) as server:
        client = LLMClient(endpoint=server.url, retry=FAST_RETRY, cache=ReplyCache(tmp_path / "c.jsonl"), structured="auto")
        assert client.complete_all([sentence_messages("甲")], schemas=[entity_schema()]) == ["answer: 甲"]
        assert client.structured_form == NO_STRUCTURE and client.counts["probe_sent"] == len(CHAT_FORMS)
        assert "response_format" not in server.bodies[-1] or server.bodies[-1]["response_format"] is None
        strict = LLMClient(endpoint=server.url, retry=FAST_RETRY, cache=ReplyCache(tmp_path / "other.jsonl"), structured="on")
        with pytest.raises(StructuredOutputUnsupported, match="none of the structured-output forms"):
            strict.complete_all([sentence_messages("甲")], schemas=[entity_schema()])


def test_the_probe_is_asked_once_per_cache_and_off_never_probes(tmp_path):
    cache_path = tmp_path / "c.jsonl"
    with FakeLLM(scripted({}), schemas="llamacpp") as server:
        LLMClient(endpoint=server.url, retry=FAST_RETRY, cache=ReplyCache(cache_path), structured="auto").complete_all([sentence_messages("甲")], schemas=[entity_schema()])
        first = len(server.requests)
        again = LLMClient(endpoint=server.url, retry=FAST_RETRY, cache=ReplyCache(cache_path), structured="auto")
        again.complete_all([sentence_messages("甲"), sentence_messages("乙")], schemas=[entity_schema()] * 2)
        assert again.counts["probe_sent"] == 0 and again.counts["cached"] == 1 and len(server.requests) == first + 1
        off = LLMClient(endpoint=server.url, retry=FAST_RETRY, cache=ReplyCache(tmp_path / "off.jsonl"))
        assert off.complete_all([sentence_messages("丙")], schemas=[entity_schema()]) == ["answer: 丙"]
    assert off.counts["probe_sent"] == 0 and server.bodies[-1].get("response_format") is None


def test_cache_only_sends_nothing_and_counts_what_it_lacked(tmp_path):
    cache_path = tmp_path / "c.jsonl"
    with FakeLLM(scripted({})) as server:
        LLMClient(endpoint=server.url, retry=FAST_RETRY, cache=ReplyCache(cache_path)).complete_all([sentence_messages("甲")])
        before = len(server.requests)
        replay = LLMClient(endpoint=server.url, retry=FAST_RETRY, cache=ReplyCache(cache_path), cache_only=True)
        assert replay.complete_all([sentence_messages("甲"), sentence_messages("乙")]) == ["answer: 甲", None]
        assert len(server.requests) == before
    assert replay.counts["failed_not_cached"] == 1 and replay.counts["sent"] == 0


def test_checking_the_cache_never_probes(tmp_path):
    with FakeLLM(scripted({}), schemas="tgi") as server:
        client = LLMClient(endpoint=server.url, retry=FAST_RETRY, cache=ReplyCache(tmp_path / "c.jsonl"), structured="auto")
        assert not client.is_cached(sentence_messages("甲"), entity_schema())
        assert client.known_form() is None and server.requests == []


def test_an_unreachable_endpoint_is_one_clear_error_when_probing_too():
    url = closed_port_url()
    client = LLMClient(endpoint=url, retry=RetryPolicy(timeout=2.0, retries=1, backoff_seconds=0.0), structured="auto")
    with pytest.raises(EndpointUnreachable, match=url.replace(".", r"\.")):
        client.complete_all([sentence_messages("甲")], schemas=[entity_schema()])


def test_usage_is_kept_per_prompt_kind_with_tokens_and_time(tmp_path):
    with FakeLLM(scripted({})) as server:
        client = LLMClient(endpoint=server.url, retry=FAST_RETRY, cache=ReplyCache(tmp_path / "c.jsonl"))
        client.complete_all([sentence_messages("甲"), sentence_messages("乙")], "segmentation")
        before = client.usage_snapshot()
        client.complete_all([sentence_messages("甲"), sentence_messages("丙")], "entities")
    assert before["segmentation"]["answered"] == 2 and before["segmentation"]["completion_tokens"] == 2
    assert before["segmentation"]["request_seconds"] > 0
    delta = usage_between(before, client.usage_snapshot())
    assert set(delta) == {"entities"} and delta["entities"]["cached"] == 1 and delta["entities"]["answered"] == 1
