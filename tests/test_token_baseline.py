"""The BIO token-classification baseline: tagging and decoding round trip, what tagging loses, the
collator's windows, learning, long-text prediction, the input contract, and building from a folder."""

import pytest
import torch
from conftest import build_bert_char_tokenizer, tiny_config, write_tiny_encoder
from transformers import BertForTokenClassification, BertModel

from knowfree.token_baseline import (
    IGNORE_INDEX,
    TokenClassificationCollator,
    alignment_report,
    bio_labels,
    build_token_classifier,
    decode_bio,
    predict_token_spans,
    token_char_ranges,
    token_tags,
    window_token_limit,
)
from processing_knowfree import KnowFreeProcessor, split_into_windows

LABELS = ["LOC", "ORG", "PER"]
TAGS = bio_labels(LABELS)
TAG_TO_ID = {tag: index for index, tag in enumerate(TAGS)}


def span(start: int, end: int, label: str) -> dict:
    return {"start": start, "end": end, "label": label}


def spans_of(predictions: list[dict]) -> set[tuple[int, int, str]]:
    return {(prediction["start"], prediction["end"], prediction["label"]) for prediction in predictions}


def offsets(tokenizer, text: str) -> list[tuple[int, int]]:
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return [tuple(pair) for pair in encoding["offset_mapping"]]


def decode_one_hot(tag_ids: list[int], text: str, token_offsets: list[tuple[int, int]]) -> list[dict]:
    """Decode tags the way `predict_token_spans` decodes logits, from one-hot logits built from them."""
    logits = torch.full((len(tag_ids), len(TAGS)), -20.0)
    for index, tag_id in enumerate(tag_ids):
        logits[index, max(tag_id, 0)] = 20.0
    scores, predicted = logits.softmax(-1).max(-1)
    return decode_bio(predicted.tolist(), scores.tolist(), token_char_ranges(text, token_offsets), TAGS)


# --- tags --------------------------------------------------------------------------------------------


def test_bio_labels_order_and_validation():
    assert bio_labels(["LOC", "PER"]) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    with pytest.raises(ValueError):
        bio_labels(["LOC", "LOC"])
    with pytest.raises(ValueError):
        bio_labels([])


ALIGNED_ROWS = [
    ("北京大学的张老师去上海开会。", [span(0, 4, "ORG"), span(5, 8, "PER"), span(9, 11, "LOC")]),
    ("马云在杭州创办了阿里巴巴集团。", [span(0, 2, "PER"), span(3, 5, "LOC"), span(8, 14, "ORG")]),
    ("Hello world 你好世界 2024年", [span(6, 11, "PER"), span(12, 16, "LOC")]),
    ("Hello world 你好世界", [span(6, 14, "ORG")]),
]


@pytest.mark.parametrize("text, entities", ALIGNED_ROWS)
def test_token_aligned_spans_round_trip(any_tokenizer, text, entities):
    token_offsets = offsets(any_tokenizer, text)
    tag_ids, loss = token_tags(text, entities, token_offsets, TAG_TO_ID)
    assert len(tag_ids) == len(token_offsets)
    assert (loss.spans, loss.misaligned, loss.overlapping_dropped, loss.untokenized) == (len(entities), 0, 0, 0)
    decoded = decode_one_hot(tag_ids, text, token_offsets)
    assert spans_of(decoded) == spans_of(entities)
    assert all(prediction["score"] == pytest.approx(1.0) for prediction in decoded)


def test_pieces_that_stand_for_no_character_carry_no_tag(unigram_tokenizer):
    text = "北京大学的张老师"
    token_offsets = offsets(unigram_tokenizer, text)
    assert token_offsets[:2] == [(0, 1), (0, 2)]  # "▁" is mapped onto the first character of "北京"
    tag_ids, _ = token_tags(text, [span(0, 2, "LOC")], token_offsets, TAG_TO_ID)
    assert tag_ids[:3] == [IGNORE_INDEX, TAG_TO_ID["B-LOC"], TAG_TO_ID["O"]]


def test_decode_bio_repairs_stray_inside_tags():
    ranges = [(0, 1), (1, 2), (2, 3), None, (4, 5), (5, 6), (6, 7)]
    tags = ["O", "I-LOC", "I-LOC", "O", "B-PER", "I-LOC", "I-LOC"]
    scores = [0.9, 0.8, 0.6, 0.1, 0.7, 0.5, 0.3]
    decoded = decode_bio([TAG_TO_ID[tag] for tag in tags], scores, ranges, TAGS, char_offset=100)
    assert [(item["start"], item["end"], item["label"]) for item in decoded] == [
        (101, 103, "LOC"),
        (104, 105, "PER"),
        (105, 107, "LOC"),
    ]
    assert decoded[0]["score"] == pytest.approx(0.7)
    assert decode_bio([TAG_TO_ID["B-LOC"], TAG_TO_ID["I-LOC"]], [1.0, 1.0], [(0, 1), None], TAGS) == [
        {"start": 0, "end": 1, "label": "LOC", "score": 1.0}
    ]


def test_spans_inside_a_piece_are_widened_and_counted(unigram_tokenizer, bert_tokenizer):
    text = "我爱北京天安门"
    entities = [span(2, 3, "LOC")]  # "北" alone, but "北京" is one SentencePiece piece
    tag_ids, loss = token_tags(text, entities, offsets(unigram_tokenizer, text), TAG_TO_ID)
    assert (loss.spans, loss.misaligned) == (1, 1)
    assert spans_of(decode_one_hot(tag_ids, text, offsets(unigram_tokenizer, text))) == {(2, 4, "LOC")}
    _, loss = token_tags(text, entities, offsets(bert_tokenizer, text), TAG_TO_ID)
    assert loss.misaligned == 0
    crossing = [span(3, 5, "LOC")]  # "京天" ends inside "天安门" and starts inside "北京"
    tag_ids, loss = token_tags(text, crossing, offsets(unigram_tokenizer, text), TAG_TO_ID)
    assert loss.misaligned == 1
    assert spans_of(decode_one_hot(tag_ids, text, offsets(unigram_tokenizer, text))) == {(2, 7, "LOC")}


def test_overlapping_spans_keep_a_flat_subset_and_are_counted(any_tokenizer):
    text = "北京大学的张老师去上海开会。"
    entities = [
        span(0, 2, "LOC"),  # nested in the ORG
        span(0, 4, "ORG"),
        span(3, 6, "PER"),  # crosses the ORG
        span(9, 11, "LOC"),
        span(9, 11, "LOC"),  # an exact duplicate is the same span, nothing lost
        span(9, 11, "ORG"),  # same characters, another label
    ]
    token_offsets = offsets(any_tokenizer, text)
    tag_ids, loss = token_tags(text, entities, token_offsets, TAG_TO_ID)
    assert (loss.spans, loss.overlapping_dropped, loss.token_collisions, loss.misaligned) == (5, 3, 0, 0)
    assert spans_of(decode_one_hot(tag_ids, text, token_offsets)) == {(0, 4, "ORG"), (9, 11, "LOC")}


def test_two_spans_in_one_piece_collide(unigram_tokenizer, bert_tokenizer):
    text = "我爱北京"
    entities = [span(2, 3, "LOC"), span(3, 4, "PER")]  # disjoint characters, one piece "北京"
    _, loss = token_tags(text, entities, offsets(unigram_tokenizer, text), TAG_TO_ID)
    assert (loss.spans, loss.misaligned, loss.token_collisions, loss.overlapping_dropped) == (2, 1, 1, 0)
    _, loss = token_tags(text, entities, offsets(bert_tokenizer, text), TAG_TO_ID)
    assert (loss.misaligned, loss.token_collisions) == (0, 0)


def test_bad_spans_fail_loudly(bert_tokenizer):
    text = "我爱北京"
    with pytest.raises(ValueError):
        token_tags(text, [span(2, 9, "LOC")], offsets(bert_tokenizer, text), TAG_TO_ID)
    with pytest.raises(ValueError):
        token_tags(text, [span(2, 4, "TIME")], offsets(bert_tokenizer, text), TAG_TO_ID)


# --- the collator ------------------------------------------------------------------------------------


def test_collator_masks_specials_and_padding(any_tokenizer):
    rows = [{"text": "马云去北京开会。", "entities": [span(0, 2, "PER"), span(3, 5, "LOC")]}, {"text": "我爱上海", "entities": []}]
    batch = TokenClassificationCollator(any_tokenizer, LABELS)(rows)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()
    for row in range(2):
        length = int(batch["attention_mask"][row].sum())
        assert batch["labels"][row, 0] == IGNORE_INDEX and batch["labels"][row, length - 1] == IGNORE_INDEX
    assert (batch["labels"][1] <= TAG_TO_ID["O"]).all()  # no entities: only O and ignored tokens


def test_collator_windows_long_rows_like_knowfree(any_tokenizer):
    text = "马云去北京开会。" * 12
    entities = [span(8 * index + 3, 8 * index + 5, "LOC") for index in range(12)]
    collator = TokenClassificationCollator(any_tokenizer, LABELS, max_tokens=20)
    examples = collator.examples([{"text": text, "entities": entities}])
    windows = KnowFreeProcessor(any_tokenizer, tiny_config(len(any_tokenizer), LABELS)).windows([text], max_tokens=20)
    assert len(examples) == len(windows) > 3  # the windows of a KnowFREE model without a span width limit
    for (window, tag_ids, loss), expected in zip(examples, windows):
        assert (window.char_start, window.char_end, window.token_ids) == (expected.char_start, expected.char_end, expected.token_ids)
        inside = {(item["start"], item["end"], item["label"]) for item in entities if window.char_start <= item["start"] and item["end"] <= window.char_end}
        decoded = decode_one_hot(tag_ids, window.text, window.token_offsets)
        assert {(start + window.char_start, end + window.char_start, label) for start, end, label in spans_of(decoded)} == inside
        assert loss.spans == len(inside)
    report = alignment_report([{"text": text, "entities": entities}], any_tokenizer, LABELS, max_tokens=20)
    assert report["windows"] == len(examples) and report["spans"] >= len(entities)
    assert report["misaligned"] == report["overlapping_dropped"] == report["token_collisions"] == report["untokenized"] == 0
    batch = collator([{"text": text, "entities": entities}])
    assert batch["input_ids"].shape[0] == len(examples)
    assert batch["attention_mask"].sum(1).max() <= 20 + 2


def test_collator_refuses_spans_no_window_holds(bert_tokenizer):
    text = "马云去北京开会。" * 12
    collator = TokenClassificationCollator(bert_tokenizer, LABELS, max_tokens=20)
    with pytest.raises(ValueError, match="fit in no encoder window"):
        collator([{"text": text, "entities": [span(0, 40, "ORG")]}])
    with pytest.raises(ValueError):
        collator([{"text": "", "entities": []}])


def test_alignment_report_totals(unigram_tokenizer):
    rows = [
        {"text": "我爱北京天安门", "entities": [span(2, 3, "LOC"), span(4, 7, "LOC")]},
        {"text": "北京大学的张老师", "entities": [span(0, 4, "ORG"), span(0, 2, "LOC"), span(5, 6, "PER"), span(6, 8, "PER")]},
    ]
    report = alignment_report(rows, unigram_tokenizer, LABELS)
    assert report == {
        "rows": 2,
        "windows": 2,
        "spans": 6,
        "misaligned": 1,
        "overlapping_dropped": 1,
        "token_collisions": 0,
        "untokenized": 0,
    }


def test_default_window_fits_the_encoder(any_tokenizer):
    assert window_token_limit(any_tokenizer) == 510
    assert TokenClassificationCollator(any_tokenizer, LABELS).max_tokens == 510


# --- learning and prediction -------------------------------------------------------------------------

TRAINING_TEXTS = [
    ("马云去北京开会。", [span(0, 2, "PER"), span(3, 5, "LOC")]),
    ("张老师在上海创办了集团。", [span(0, 3, "PER"), span(4, 6, "LOC")]),
    ("我爱北京天安门。", [span(2, 4, "LOC")]),
    ("马云在杭州创办了阿里巴巴集团。", [span(0, 2, "PER"), span(3, 5, "LOC"), span(8, 14, "ORG")]),
    ("张老师去北京开会。", [span(0, 3, "PER"), span(4, 6, "LOC")]),
    ("我爱上海。", [span(2, 4, "LOC")]),
    ("马云在北京。", [span(0, 2, "PER"), span(3, 5, "LOC")]),
    ("天安门上太阳升。", []),
    ("现任中国科技大学商学院院长。", [span(2, 8, "ORG")]),
    ("张老师去杭州。", [span(0, 3, "PER"), span(4, 6, "LOC")]),
]


def tiny_token_classifier(tokenizer, seed: int = 0) -> BertForTokenClassification:
    torch.manual_seed(seed)
    config = tiny_config(len(tokenizer), ["A"]).encoder_config
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    config.num_labels = len(TAGS)
    config.id2label, config.label2id = dict(enumerate(TAGS)), TAG_TO_ID
    return BertForTokenClassification(config)


@pytest.fixture(scope="module")
def trained_classifier():
    """A tiny BIO tagger that has memorised the ten training sentences (100 AdamW steps).

    One intra-op thread: on shared cores, threads of a model this small mostly wait on each other
    (seconds instead of well under one)."""
    tokenizer = build_bert_char_tokenizer()
    model = tiny_token_classifier(tokenizer)
    rows = [{"text": text, "entities": entities} for text, entities in TRAINING_TEXTS]
    batch = TokenClassificationCollator(tokenizer, LABELS)(rows)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.train()
        for _ in range(100):
            loss = model(**batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    return model, tokenizer


def test_model_learns_the_training_sentences(trained_classifier):
    model, tokenizer = trained_classifier
    texts = [text for text, _ in TRAINING_TEXTS]
    predictions = predict_token_spans(model, tokenizer, texts, batch_size=4)
    for (_, entities), predicted in zip(TRAINING_TEXTS, predictions):
        assert spans_of(predicted) == spans_of(entities)
    assert all(0.0 < item["score"] <= 1.0 for predicted in predictions for item in predicted)


def test_long_text_is_windowed_and_finds_spans_near_its_end(trained_classifier):
    model, tokenizer = trained_classifier
    filler = "我爱天安门。" * 500
    text = filler + "马云去北京开会。"
    assert len(text) > 3000
    windows = split_into_windows(text, 0, tokenizer, 510, 128)
    assert len(windows) > 1
    predicted = predict_token_spans(model, tokenizer, text)
    assert (len(filler) + 3, len(filler) + 5, "LOC") in spans_of(predicted)
    assert (len(filler), len(filler) + 2, "PER") in spans_of(predicted)
    assert all(item["text"] == text[item["start"] : item["end"]] for item in predicted)
    ordered = sorted((item["start"], item["end"]) for item in predicted)
    assert all(left_end <= right_start for (_, left_end), (right_start, _) in zip(ordered, ordered[1:]))


def test_predict_input_contract(trained_classifier):
    model, tokenizer = trained_classifier
    assert predict_token_spans(model, tokenizer, "") == []
    assert predict_token_spans(model, tokenizer, []) == []
    batch = predict_token_spans(model, tokenizer, ["", "马云去上海开会。"])
    assert isinstance(batch, list) and batch[0] == [] and isinstance(batch[1], list)
    single = predict_token_spans(model, tokenizer, "马云去上海开会。")
    assert single == batch[1]
    assert {"start", "end", "label", "score", "text"} <= set(single[0])
    with pytest.raises(TypeError):
        predict_token_spans(model, tokenizer, 42)
    with pytest.raises(TypeError):
        predict_token_spans(model, tokenizer, ["ok", None])


def test_predict_restores_the_training_mode(trained_classifier):
    model, tokenizer = trained_classifier
    model.train()
    try:
        predict_token_spans(model, tokenizer, "马云去北京开会。")
        assert model.training
    finally:
        model.eval()
    predict_token_spans(model, tokenizer, "马云去北京开会。")
    assert not model.training


# --- building ----------------------------------------------------------------------------------------


def test_build_token_classifier_from_a_local_folder(tmp_path, bert_tokenizer):
    write_tiny_encoder(tmp_path, bert_tokenizer)
    encoder = BertModel.from_pretrained(tmp_path)
    model, tokenizer = build_token_classifier(tmp_path, ["LOC", "PER"])
    assert isinstance(model, BertForTokenClassification)
    assert model.config.num_labels == 5
    assert model.config.id2label == {0: "O", 1: "B-LOC", 2: "I-LOC", 3: "B-PER", 4: "I-PER"}
    assert model.config.label2id["I-PER"] == 4
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, encoder.embeddings.word_embeddings.weight)
    assert tokenizer("北京")["input_ids"] == bert_tokenizer("北京")["input_ids"]
