import re
import unicodedata

import pytest
import torch
from conftest import tiny_model, training_rows
from recorded_replies import recorded

from augment.offline_annotator import OfflineAnnotator
from augment.prompts import render
from augment.synthesis import (
    EchoReference,
    LabelMarks,
    SynthesisCounts,
    annotate_synthetic,
    clean_text,
    echo_key,
    echoes,
    explanation_request,
    is_degenerate,
    pack_sentences,
    request_explanations,
    split_sentences,
    strip_headers,
    synthetic_texts,
)
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
    assert texts == [(0, "这句话值得细读。其中的马云是理解全句的关键。")]  # the second identical reply adds nothing new
    assert counts.counts["reply_failed"] == 1 and counts.counts["reply_echo"] == 1 and counts.counts["reply_repetitive"] == 1
    assert counts.counts["header_removed"] == 2  # the '## 讲解' heading of each reply
    assert counts.counts["sentence_sample_echo"] == 2 + 2  # the sample twice in each reply
    assert counts.counts["sentence_duplicate"] == 1 + 3  # one repeat in the first reply, the three other sentences of the second
    assert counts.counts["synthetic_rows"] == 1


WEIBO = {
    "text": "今天和女朋友在北京逛了一天街，好累啊",
    "entities": [{"start": 3, "end": 6, "label": "PER.NOM"}, {"start": 7, "end": 9, "label": "GPE.NAM"}],
    "extensions": [],
    "synthetic": False,
}
WEIBO_LABELS = ("PER.NAM", "PER.NOM", "GPE.NAM", "GPE.NOM", "LOC.NAM", "LOC.NOM", "ORG.NAM", "ORG.NOM")
KEPT = ["我们先去了王府井,又在胡同里吃了一碗炸酱面。", "晚上回到酒店,她说下次还想再来。"]  # NFKC folds the full-width comma
SYSTEM_LINE, INSTRUCTIONS = (message["content"] for message in explanation_request(WEIBO, "zh"))
LAST_INSTRUCTION = INSTRUCTIONS.splitlines()[-1]  # 直接输出续写和讲解的正文，不要使用标题、列表符号或 Markdown。
# What the 0.5b model wrote back, problem by problem: headers, the sample, the instruction, the entity list, label tags.
WEIBO_REPLY = (
    "续写：\n"
    "今天和女朋友在北京逛了一天街，好累啊。我们先去了王府井，又在胡同里吃了一碗炸酱面。晚上回到酒店，她说下次还想再来。\n"
    "讲解：\n"
    "女朋友（PER.NOM）在这段话里指的是说话人的恋人，是陪同逛街的人。\n"
    "北京(GPE.NAM)是中国的首都，在这里交代了逛街的地点。\n"
    '实体：["女朋友(PER.NOM)", "北京(GPE.NAM)"]\n'
    f"{LAST_INSTRUCTION}\n"
    "这两个实体分别属于PER.NOM和GPE.NAM。\n"
    "今天和女朋友在北京逛了一天街，好累啊"
)


def test_a_real_reply_loses_headers_echoes_and_label_names_but_keeps_its_prose():
    texts, counts = synthetic_texts([WEIBO], [WEIBO_REPLY], max_chars=200, min_chars=4, labels=WEIBO_LABELS)
    explained = ["女朋友在这段话里指的是说话人的恋人,是陪同逛街的人。", "北京是中国的首都,在这里交代了逛街的地点。"]
    assert texts == [(0, "".join(KEPT + explained))]
    assert counts.counts["header_removed"] == 3  # 续写：, 讲解： and the 实体： before the list
    assert counts.counts["sentence_sample_echo"] == 2  # inside the continuation and alone at the end
    assert counts.counts["sentence_entity_list_echo"] == 1
    assert counts.counts["sentence_prompt_echo"] == 1
    assert counts.counts["label_tag_removed"] == 2  # the mentions 女朋友 and 北京 stay
    assert counts.counts["sentence_label_name"] == 1
    assert "sentence_duplicate" not in counts.counts


def test_labels_invented_in_the_corpus_scheme_are_marked_too():
    marks = LabelMarks.of(WEIBO_LABELS)
    assert marks.tag.sub("", "没有接父亲回家(NEED.NOM):这是原因。") == "没有接父亲回家:这是原因。"  # 0.5b replies
    assert marks.name.search("组织.NAM:安大略省旅游局") and marks.name.search("是一个ORG.NOM")
    assert not marks.name.search("见 example.com 和 v2.0 版本") and not marks.name.search("PERSON.NAME")
    assert not LabelMarks.of(["NAME", "ORG"]).name.search("NEED.NOM")  # labels in no TYPE.SUFFIX scheme add nothing


LABEL_LIKE = re.compile(r"(?:[A-Za-z]{2,12}|[\u4e00-\u9fff]{1,8})\.(?:NAM|NOM)")


@pytest.mark.parametrize("fixture", ["qwen2.5-coder-0.5b-instruct-q4km-explanations.jsonl.gz", "qwen2.5-coder-1.5b-instruct-q4km-explanations.jsonl.gz"])
def test_real_explanations_leave_no_label_name_instruction_or_copied_sample(fixture):
    """The 54 explanation replies of the Weibo 10-shot workflow (seed 42) of each model, cleaned as the workflow does."""
    lines = recorded(fixture)
    rows = [line["row"] for line in lines]
    texts, counts = synthetic_texts(rows, [line["reply"] for line in lines], labels=WEIBO_LABELS)
    assert len(lines) == 54 and texts
    for index, text in texts:
        assert not LABEL_LIKE.search(text) and not any(label in text for label in WEIBO_LABELS)
        instructions = [line for line in explanation_request(rows[index], "zh")[-1]["content"].splitlines() if len(line) >= 12]
        assert not any(unicodedata.normalize("NFKC", line) in text for line in instructions)
        assert echo_key(rows[index]["text"]) not in {echo_key(sentence) for sentence in split_sentences(text)}
    assert counts.counts["sentence_sample_echo"] > 0 and counts.counts["label_tag_removed"] > 0 and counts.counts["header_removed"] > 0


def test_echoes_of_the_prompt_are_dropped_in_either_language_and_near_copies_too():
    reply = (
        f"{SYSTEM_LINE}\n"
        f"{INSTRUCTIONS.split('。')[0]}。\n"  # the first instruction sentence, 请你面向学生做讲解。
        f"好的，下面我{LAST_INSTRUCTION.split('，')[0]}。\n"  # the instruction wrapped in a few words of its own
        f"{explanation_request(WEIBO, 'en')[-1]['content'].splitlines()[-1]}\n"  # the English wording of the same prompt
        + "\n".join(KEPT)
    )
    texts, counts = synthetic_texts([WEIBO], [reply], max_chars=200, min_chars=4, labels=WEIBO_LABELS)
    assert texts == [(0, "".join(KEPT))]
    assert counts.counts["sentence_prompt_echo"] == 4


def test_a_reply_to_the_key_phrase_prompt_is_cleaned_the_same_way():
    plain = {"text": "这家店的咖啡很香，下次还要来", "entities": [], "extensions": [], "synthetic": False}
    instruction = explanation_request(plain, "zh")[-1]["content"].splitlines()[-1]  # 直接输出正文，不要使用标题……
    reply = f"关键短语：咖啡、店\n说明：咖啡是一种用咖啡豆冲泡的饮料，香气浓郁。\n{instruction}\n这家店的咖啡很香，下次还要来。"
    texts, counts = synthetic_texts([plain], [reply], max_chars=200, min_chars=4)
    assert texts == [(0, "咖啡、店咖啡是一种用咖啡豆冲泡的饮料,香气浓郁。")]
    assert counts.counts["header_removed"] == 2 and counts.counts["sentence_prompt_echo"] == 1 and counts.counts["sentence_sample_echo"] == 1


def test_sentences_sharing_a_few_words_with_the_prompt_or_sample_are_kept():
    own_words = [
        "北京在这段话里指的是首都。",  # 在这段话里指的是: eight characters of the prompt, in an explanation of its own
        "老师让学生把这段话再读一遍,想一想每个词起什么作用。",
        "女朋友陪他在北京住了三年,逛遍了大街小巷。",
        "今天和女朋友在北京逛了一天街,我们还去了故宫和天坛,拍了很多照片。",  # the sample opens a sentence that goes on with fourteen new characters
    ]
    texts, counts = synthetic_texts([WEIBO], ["\n".join(own_words)], max_chars=300, min_chars=4, labels=WEIBO_LABELS)
    assert texts == [(0, "".join(own_words))]
    assert not any(kind.endswith("_echo") for kind in counts.counts)


@pytest.mark.parametrize(
    "sentence, reference, expected",
    [
        ("今天和女朋友在北京逛了一天街。", WEIBO["text"], True),  # the sample with a full stop
        ("在北京逛了一天街", WEIBO["text"], True),  # a fragment lying wholly inside it
        ("今天和女朋友在北京逛了一整天街,好累。", WEIBO["text"], True),  # edited a little
        ("在北京逛街", WEIBO["text"], False),  # too short to be more than a shared phrase
        ("好累啊。", "今天下雨了。好累啊。", True),  # a short sentence of the reference, whole
        ("北京在这段话里指的是首都。", "然后逐个说明样例中每个实体在这段话里指的是什么、起什么作用。", False),
    ],
)
def test_the_echo_rule(sentence, reference, expected):
    assert echoes(sentence, EchoReference.of(reference)) is expected


@pytest.mark.parametrize(
    "sentence, kept, removed",
    [
        ("续写:她每天乘地铁上班。", "她每天乘地铁上班。", 1),
        ("讲解:", "", 1),
        ("讲解", "", 1),  # what '## 讲解' leaves after markup cleaning
        ("【解释】北京是中国的首都。", "北京是中国的首都。", 1),
        ("以下是续写和讲解:她说下次还想再来。", "她说下次还想再来。", 1),
        ("讲解部分:实体:北京是首都。", "北京是首都。", 2),
        ("Explanation: Beijing is the capital.", "Beijing is the capital.", 1),
        ("马云说:我们明天出发。", "马云说:我们明天出发。", 0),  # a speaker, not a header: the mention stays
        ("说明书:每天两次。", "说明书:每天两次。", 0),
        ("说明这个词的来历。", "说明这个词的来历。", 0),
    ],
)
def test_headers_are_cut_from_the_start_only(sentence, kept, removed):
    assert strip_headers(sentence) == (kept, removed)


def test_label_tags_go_with_their_brackets_and_the_mention_stays():
    marks = LabelMarks.of(["PER.NOM", "GPE.NAM", "PER"])
    text = clean_text("女朋友（类型：PER.NOM）和她的朋友在北京【GPE.NAM】见面,张三 (PER) 也来了,还有朋友(PER.NOM/GPE.NAM)。")
    assert marks.tag.subn("", text) == ("女朋友和她的朋友在北京见面,张三 也来了,还有朋友。", 4)
    assert not marks.name.search("PERSON and per-capita figures, SUPER.NOMINAL")  # only whole, case-exact names
    assert marks.name.search("它属于PER.NOM类型")


def test_a_label_named_only_in_the_corpus_labels_is_caught_when_they_are_passed():
    reply = "北京是一个LOC.NAM,也是中国的首都。\n" + "\n".join(KEPT)
    without, counts_without = synthetic_texts([PLAIN], [reply], max_chars=200, min_chars=4)
    with_labels, counts_with = synthetic_texts([PLAIN], [reply], max_chars=200, min_chars=4, labels=WEIBO_LABELS)
    assert "LOC.NAM" in without[0][1] and "sentence_label_name" not in counts_without.counts  # the row shows no label at all
    assert with_labels == [(0, "".join(KEPT))] and counts_with.counts["sentence_label_name"] == 1
    in_the_rows_scheme, counts = synthetic_texts([WEIBO], [reply], max_chars=200, min_chars=4)  # it shows PER.NOM and GPE.NAM
    assert in_the_rows_scheme == [(0, "".join(KEPT))] and counts.counts["sentence_label_name"] == 1


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
