import pytest
import torch
from conftest import tiny_model, training_rows

from augment.offline_annotator import OfflineAnnotator
from augment.prompts import render
from augment.synthesis import SynthesisCounts, annotate_synthetic, clean_text, explanation_request, is_degenerate, pack_sentences, request_explanations, synthetic_texts
from augment.llm_client import LLMClient, RetryPolicy
from augment.reply_cache import ReplyCache
from fake_llm_server import FakeLLM, error
from knowfree.collate import SpanCollator
from scripted_annotator import ScriptedAnnotator, explanation

SOURCE = {"text": "马云在杭州创办了阿里巴巴。", "entities": [{"start": 0, "end": 2, "label": "PER"}, {"start": 3, "end": 5, "label": "LOC"}], "extensions": [], "synthetic": False}
PLAIN = {"text": "今天天气很好。", "entities": [], "extensions": [], "synthetic": False}


def test_entity_rows_get_p_exp_and_the_others_p_ext():
    with_entities = explanation_request(SOURCE, "zh")[-1]["content"]
    assert '["马云(PER)", "杭州(LOC)"]' in with_entities and SOURCE["text"] in with_entities
    assert explanation_request(PLAIN, "zh") == render("explain_key_phrases", "zh", text=PLAIN["text"])
    assert "key phrases" in explanation_request(PLAIN, "en")[-1]["content"]


def test_cleaning_removes_markup_and_normalises():
    assert clean_text("## 标题\n- **马云** 是`企业家`。\n1. 第二点ＡＢＣ\n```\n") == "标题\n马云 是企业家。\n第二点ABC"


@pytest.mark.parametrize("reply, problem", [("", "empty"), ("  \n ", "empty"), ("马云 在杭州创办了阿里巴巴。", "echo"), ("哈哈哈哈哈哈哈哈", "repetitive"), ("好的好的好的好的好的好的", "repetitive"), ("马云是一位企业家。", None)])
def test_degenerate_replies(reply, problem):
    assert is_degenerate(reply, SOURCE["text"]) == problem


def test_sentences_are_packed_and_long_ones_clipped():
    counts = SynthesisCounts()
    assert pack_sentences(["一二三。", "四五六。", "七八九十一二三四五六。"], 8, counts) == ["一二三。四五六。", "七八九十一二三四"]
    assert counts.counts["sentence_clipped"] == 1
    assert pack_sentences(["First one.", "Second."], 40, SynthesisCounts()) == ["First one. Second."]


def test_replies_become_clean_deduplicated_rows_with_every_drop_counted():
    rows = [SOURCE, PLAIN, SOURCE, PLAIN, PLAIN]
    replies = [explanation(SOURCE["text"]), None, explanation(SOURCE["text"]), "今天天气很好。", "啊啊啊啊啊啊啊啊啊啊"]
    texts, counts = synthetic_texts(rows, replies, max_chars=30, min_chars=4)
    assert texts == [(0, "讲解这句话值得细读。其中的马云是理解全句的关键。")]  # the second identical reply adds nothing new
    assert counts.counts["reply_failed"] == 1 and counts.counts["reply_echo"] == 1 and counts.counts["reply_repetitive"] == 1
    assert counts.counts["sentence_duplicate"] == 3 + 6  # the sample twice and one repeat in the first reply, all six of the second
    assert counts.counts["synthetic_rows"] == 1


def test_explanations_through_the_fake_server(hub_online, tmp_path):
    rows = [SOURCE, PLAIN]
    with FakeLLM(ScriptedAnnotator(failures={("explain", PLAIN["text"]): [error(503)]})) as server:
        client = LLMClient(endpoint=server.url, retry=RetryPolicy(timeout=5, retries=1, backoff_seconds=0), cache=ReplyCache(tmp_path / "c.jsonl"))
        replies = request_explanations(client, rows, "zh")
    assert replies == [explanation(SOURCE["text"]), explanation(PLAIN["text"])]
    assert client.counts["retried"] == 1


def test_the_frozen_model_labels_targets_and_the_annotator_extensions(bert_tokenizer):
    model = tiny_model(bert_tokenizer, seed=3)
    with torch.no_grad():
        model.span_head.classifier.weight.zero_()
        model.span_head.classifier.bias.fill_(-20.0)
        model.span_head.classifier.bias[2] = 20.0  # PER on every span: a confident, known model
    texts = ["马云去上海开会。", "北京大学的张老师。"]
    rows = annotate_synthetic(texts, model, OfflineAnnotator(), {"地名": "地点"}, batch_size=2)
    expected = model.predict(texts)
    assert [[(s["start"], s["end"], s["label"]) for s in row["entities"]] for row in rows] == [sorted((s["start"], s["end"], s["label"]) for s in spans) for spans in expected]
    assert all(row["synthetic"] is True for row in rows) and rows[0]["entities"]
    assert {"start": 3, "end": 5, "label": "ent:地点"} in rows[0]["extensions"]


def test_synthetic_rows_are_weighted_by_beta(bert_tokenizer):
    model = tiny_model(bert_tokenizer, extension_labels=["ent:地点"], seed=1)  # eval mode: no dropout between the two passes
    rows = [{**row, "extensions": [], "synthetic": True} for row in training_rows()[:4]]
    batch = SpanCollator(bert_tokenizer, model.config)(rows)
    assert batch["synthetic"].all()
    with torch.no_grad():
        model.config.synthetic_weight = 1.0
        full = model(**batch).loss.item()
        model.config.synthetic_weight = 0.4
        scaled = model(**batch).loss.item()
    assert scaled == pytest.approx(0.4 * full, rel=1e-5)
