"""The KnowFREE processor: character alignment, windows and their overlap, the model's tensors, the
label grid, decoding back to spans (a round trip from gold spans), batching, and saving and loading."""

import pytest
import torch
from conftest import tiny_config, tiny_model, training_rows

import processing_knowfree
from processing_knowfree import (
    KnowFreeProcessor,
    SpanCandidate,
    TokenFrame,
    align_characters,
    decode_spans,
    split_into_windows,
    window_overlap,
)

LONG_TEXT = "中国科学技术大学位于合肥市。" * 40


def make_processor(tokenizer, extension_labels=(), **overrides) -> KnowFreeProcessor:
    return KnowFreeProcessor(tokenizer, tiny_config(len(tokenizer), ["LOC", "ORG", "PER"], extension_labels, **overrides))


def span(start: int, end: int, label: str) -> dict:
    return {"start": start, "end": end, "label": label}


def decoded(processor: KnowFreeProcessor, texts: list[str], span_labels: torch.Tensor, nested: bool, max_tokens: int | None = None) -> list[list[dict]]:
    """Spans decoded from a label grid read as confident logits: +20 on gold cells, -20 elsewhere."""
    windows = processor.windows(texts, max_tokens)
    logits = span_labels * 40.0 - 20.0
    everywhere = torch.ones(span_labels.shape[:3], dtype=torch.bool)
    candidates: list[list[SpanCandidate]] = [[] for _ in texts]
    for window, found in zip(windows, processor.window_candidates(logits, everywhere, windows, min_score=0.5)):
        candidates[window.text_index].extend(found)
    return processor.post_process(texts, candidates, processor.label_thresholds(), nested)


# --- character alignment ------------------------------------------------------------------------


def test_unigram_tokenizer_merges_characters(unigram_tokenizer):
    pieces = unigram_tokenizer.tokenize("中国科学技术大学")
    assert any(len(piece.lstrip("▁")) > 1 for piece in pieces), pieces


@pytest.mark.parametrize("text", ["中国科学技术大学位于合肥市。", "马云 在杭州  创办了 阿里巴巴集团", "Hello world 你好"])
def test_every_character_gets_its_own_grid_position(any_tokenizer, text):
    features = make_processor(any_tokenizer)(text)
    assert features["char_mask"].sum().item() == len(text)
    token_index = features["char_token_index"][0].tolist()
    piece_positions = list(zip(token_index, features["char_piece_start"][0].tolist(), features["char_piece_end"][0].tolist()))
    covered = [i for i, char in enumerate(text) if not char.isspace()]
    assert len({piece_positions[i] for i in covered}) == len(covered), "two characters share a grid representation"
    ids = features["input_ids"][0].tolist()
    for char_position in covered:
        token = any_tokenizer.convert_ids_to_tokens(ids[token_index[char_position]])
        assert token not in (any_tokenizer.cls_token, any_tokenizer.sep_token, any_tokenizer.pad_token)


def test_alignment_rule_on_hand_made_offsets():
    # <s>, "▁" mapped onto char 0, "中国" (0, 2), a dropped space at 2, "人" (3, 4), </s>
    token_of_char, from_start, from_end = align_characters(4, [(0, 0), (0, 1), (0, 2), (3, 4), (0, 0)])
    assert token_of_char == [2, 2, 3, 3]
    assert from_start == [0, 1, 7, 0] and from_end == [1, 0, 7, 0]


def test_character_ids_fall_back_to_the_nfkc_form_then_to_unknown(bert_tokenizer):
    processor = make_processor(bert_tokenizer)
    ids = processor.character_ids("中ｈ龘")  # full-width h reads as h; 龘 is in no vocabulary here
    assert ids == bert_tokenizer.convert_tokens_to_ids(["中", "h"]) + [bert_tokenizer.unk_token_id]


# --- windows and their overlap ---------------------------------------------------------------------


def test_one_overlap_rule_twice_the_widest_span_at_most_half_a_window():
    assert window_overlap(510, None) == 128
    assert window_overlap(510, 19) == 38
    assert window_overlap(50, None) == 25 and window_overlap(50, 10) == 20


def test_windows_partition_the_text(unigram_tokenizer):
    windows = split_into_windows(LONG_TEXT, 0, unigram_tokenizer, max_tokens=50, overlap_tokens=10)
    assert len(windows) > 3
    assert windows[0].own_start == 0 and windows[-1].own_end == len(LONG_TEXT)
    for left, right in zip(windows, windows[1:]):
        assert left.own_end == right.own_start
        assert right.char_start < left.char_end
        assert left.own_end - right.char_start >= 5 and left.char_end - left.own_end >= 5
    for window in windows:
        assert LONG_TEXT[window.char_start : window.char_end] == window.text
        assert len(window.token_ids) <= 50


@pytest.mark.parametrize("max_span_width", [None, 6])
def test_processor_windows_share_the_overlap_of_the_rule(any_tokenizer, max_span_width):
    processor = make_processor(any_tokenizer, max_span_width=max_span_width)
    windows = processor.windows([LONG_TEXT, "马云去上海开会。"], max_tokens=40)
    overlap = window_overlap(40, max_span_width)
    long_windows = [window for window in windows if window.text_index == 0]
    assert len(long_windows) > 3 and [window.text_index for window in windows[len(long_windows) :]] == [1]
    for left, right in zip(long_windows[:-1], long_windows[1:-1]):
        assert len(left.token_ids) == 40 and left.token_ids[-overlap:] == right.token_ids[:overlap]


def test_default_window_is_the_encoder_limit_less_the_special_tokens(any_tokenizer):
    assert make_processor(any_tokenizer).max_tokens == 510
    assert make_processor(any_tokenizer, max_span_width=4).max_tokens == 510


def test_windows_refuse_what_is_not_a_list_of_strings(bert_tokenizer):
    processor = make_processor(bert_tokenizer)
    with pytest.raises(TypeError):
        processor.windows("马云")
    with pytest.raises(TypeError):
        processor.windows(["ok", None])


def test_batches_follow_the_token_count(unigram_tokenizer):
    processor = make_processor(unigram_tokenizer)
    texts = ["北京天安门阿里巴巴杭州大学", "马云去上海开会了", "我爱你去了马云会开", "北京杭州上海"]
    batches = processor.batches(processor.windows(texts), batch_size=3)
    counts = [len(window.token_ids) for batch in batches for window in batch]
    assert [len(batch) for batch in batches] == [3, 1] and counts == sorted(counts)


# --- tensors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("tokenizer_name", ["bert", "unigram"])
def test_tensors_frame_pad_and_mask_every_window(request, tokenizer_name):
    tokenizer = request.getfixturevalue(f"{tokenizer_name}_tokenizer")
    processor = make_processor(tokenizer)
    frame = TokenFrame.of(tokenizer)
    assert frame.prefix == (tokenizer.cls_token_id,) and frame.suffix == (tokenizer.sep_token_id,)
    texts = ["马云去上海开会。", "北京", LONG_TEXT]
    windows = processor.windows(texts, max_tokens=30)
    features = processor(texts, max_tokens=30)
    batch, tokens = features["input_ids"].shape
    assert batch == len(windows) > len(texts)
    assert features["char_mask"].shape == features["char_ids"].shape == (batch, max(len(window.text) for window in windows))
    for row, window in enumerate(windows):
        length = len(window.token_ids) + 2
        assert features["input_ids"][row, :length].tolist() == [*frame.prefix, *window.token_ids, *frame.suffix]
        assert (features["input_ids"][row, length:] == frame.pad_id).all()
        assert features["attention_mask"][row].sum().item() == length
        assert features["char_mask"][row].sum().item() == len(window.text)
        assert (features["char_token_index"][row, : len(window.text)] < length - 1).all()


def test_encoding_nothing_is_an_error(bert_tokenizer):
    with pytest.raises(ValueError, match="nothing to encode"):
        make_processor(bert_tokenizer)(["", ""])


# --- the label grid -------------------------------------------------------------------------------


def test_label_grid_marks_each_span_in_the_band(bert_tokenizer):
    processor = make_processor(bert_tokenizer, extension_labels=["WORD"], max_span_width=4)
    rows = [
        {"text": "北京大学", "entities": [span(0, 4, "ORG"), span(0, 2, "LOC")], "extensions": [span(2, 4, "WORD")]},
        {"text": "马云去上海开会。", "entities": [span(0, 2, "PER")], "synthetic": True},
    ]
    batch = processor.training_batch(rows)
    grid = batch["span_labels"]
    assert grid.shape == (2, 8, 4, 4)  # 2 rows, 8 characters, width 4, 3 targets + 1 extension
    assert grid.sum().item() == 4
    assert grid[0, 0, 3, 1] == grid[0, 0, 1, 0] == grid[0, 2, 1, 3] == grid[1, 0, 1, 2] == 1.0
    assert batch["synthetic"].tolist() == [False, True]
    with pytest.raises(ValueError, match="wider than the band"):
        processor.label_grid([[span(0, 5, "ORG")]], length=6)


def test_label_grid_skips_or_refuses_wider_spans_and_refuses_unknown_labels(bert_tokenizer):
    processor = make_processor(bert_tokenizer, max_span_width=2)
    row = {"text": "北京大学", "entities": [span(0, 4, "ORG"), span(0, 2, "LOC")]}
    assert processor.training_batch([row], skip_wider_spans=True)["span_labels"].sum().item() == 1
    with pytest.raises(ValueError, match="wider than the band"):
        processor.training_batch([row])
    with pytest.raises(ValueError, match="not in the model's labels"):
        processor.training_batch([{"text": "北京", "entities": [span(0, 2, "CITY")]}])


def test_long_rows_are_trained_window_by_window(bert_tokenizer):
    processor = make_processor(bert_tokenizer)
    text = "马云去北京开会。" * 12
    row = {"text": text, "entities": [span(8 * index + 3, 8 * index + 5, "LOC") for index in range(12)]}
    batch = processor.training_batch([row], max_tokens=20)
    windows = processor.windows([text], max_tokens=20)
    assert batch["span_labels"].shape[0] == len(windows) > 3
    for row_grid, window in zip(batch["span_labels"], windows):
        inside = [start for start in range(3, len(text), 8) if window.char_start <= start and start + 2 <= window.char_end]
        assert row_grid.sum().item() == len(inside)


# --- back to spans -------------------------------------------------------------------------------


@pytest.mark.parametrize("nested", [False, True])
def test_gold_spans_survive_grid_and_decoding(bert_tokenizer, nested):
    processor = make_processor(bert_tokenizer, extension_labels=["WORD"])
    rows = training_rows()
    for row in rows:
        row["extensions"] = [span(0, 1, "WORD")]  # in the grid, never decoded
        if not nested:
            row["entities"] = [entity for entity in row["entities"] if not any(
                other is not entity and other["start"] <= entity["start"] and entity["end"] <= other["end"] for other in row["entities"]
            )]  # fmt: skip
    texts = [row["text"] for row in rows]
    spans = decoded(processor, texts, processor.training_batch(rows)["span_labels"], nested)
    for row, text_spans in zip(rows, spans):
        expected = [{**entity, "text": row["text"][entity["start"] : entity["end"]]} for entity in row["entities"]]
        assert sorted((item["start"], item["end"], item["label"], item["text"]) for item in text_spans) == sorted(
            (item["start"], item["end"], item["label"], item["text"]) for item in expected
        )
        assert all(item["score"] > 0.99 for item in text_spans)


def test_spans_in_the_overlap_of_windows_come_back_once(bert_tokenizer):
    processor = make_processor(bert_tokenizer)
    text = "马云去北京开会。" * 12
    gold = [span(8 * index, 8 * index + 2, "PER") for index in range(12)] + [span(8 * index + 3, 8 * index + 5, "LOC") for index in range(12)]
    grid = processor.training_batch([{"text": text, "entities": gold}], max_tokens=20)["span_labels"]
    assert grid.shape[0] > 3 and grid.sum().item() > len(gold)  # spans in an overlap are in two windows
    (spans,) = decoded(processor, [text], grid, nested=False, max_tokens=20)
    assert [(item["start"], item["end"], item["label"]) for item in spans] == sorted(
        (item["start"], item["end"], item["label"]) for item in gold
    )


def test_decode_spans_rules():
    candidates = [
        SpanCandidate(0, 4, 0, 0.9),
        SpanCandidate(0, 2, 1, 0.8),
        SpanCandidate(3, 6, 2, 0.85),
        SpanCandidate(0, 4, 1, 0.7),
        SpanCandidate(6, 8, 1, 0.6),
    ]
    nested = [(span.start, span.end, span.label) for span in decode_spans(candidates, nested=True)]
    flat = [(span.start, span.end, span.label) for span in decode_spans(candidates, nested=False)]
    assert nested == [(0, 4, 0), (0, 2, 1), (6, 8, 1)]
    assert flat == [(0, 4, 0), (6, 8, 1)]


def test_thresholds_and_decoding_come_from_the_config_unless_given(bert_tokenizer):
    processor = make_processor(bert_tokenizer, label_thresholds={"PER": 0.7}, decoding="nested")
    assert processor.label_thresholds() == [0.5, 0.5, 0.7]
    assert processor.label_thresholds(0.3) == [0.3, 0.3, 0.3]
    assert processor.is_nested() and not processor.is_nested("flat")
    with pytest.raises(ValueError, match="'flat' or 'nested'"):
        processor.is_nested("greedy")


# --- saving and loading --------------------------------------------------------------------------


def test_save_and_load_give_the_same_tensors(tmp_path, unigram_tokenizer):
    processor = make_processor(unigram_tokenizer, extension_labels=["WORD"], max_span_width=5)
    processor.save_pretrained(tmp_path / "processor")
    loaded = KnowFreeProcessor.from_pretrained(tmp_path / "processor")
    assert loaded.config.labels == processor.config.labels and loaded.config.max_span_width == 5
    assert (loaded.max_tokens, loaded.frame, loaded.label_index) == (processor.max_tokens, processor.frame, processor.label_index)
    texts = ["中国科学技术大学位于合肥市。", "Hello world 你好"]
    expected, actual = processor(texts), loaded(texts)
    assert expected.keys() == actual.keys() and all(torch.equal(expected[key], actual[key]) for key in expected)
    with pytest.raises(TypeError, match="unexpected options"):
        KnowFreeProcessor.from_pretrained(tmp_path / "processor", local_file_only=True)


def test_the_model_saves_and_reloads_its_processor(tmp_path, bert_tokenizer):
    from modeling_knowfree import KnowFreeModel

    model = tiny_model(bert_tokenizer, max_span_width=4)
    model.save_pretrained(tmp_path / "model")
    assert (tmp_path / "model" / "processing_knowfree.py").is_file()
    loaded = KnowFreeModel.from_pretrained(tmp_path / "model")
    assert loaded.processor.config is loaded.config  # thresholds calibrated later reach the processor
    assert loaded.tokenizer is loaded.processor.tokenizer
    text = "马云去上海开会。"
    assert all(torch.equal(value, loaded.processor(text)[key]) for key, value in model.processor(text).items())



def quadratic_decoding(candidates, nested):
    """The rule of decode_spans written as the plain pairwise comparison it replaces."""
    kept = []
    for candidate in sorted(candidates, key=lambda span: (-span.score, span.start, span.end)):
        def conflicts(other):
            if not (candidate.start < other.end and other.start < candidate.end):
                return False
            same = (candidate.start, candidate.end) == (other.start, other.end)
            inside = other.start <= candidate.start and candidate.end <= other.end
            outside = candidate.start <= other.start and other.end <= candidate.end
            return not nested or same or not (inside or outside)

        if not any(conflicts(other) for other in kept):
            kept.append(candidate)
    return sorted(kept, key=lambda span: (span.start, -span.end))


@pytest.mark.parametrize("nested", [False, True])
def test_windowed_decoding_keeps_exactly_what_pairwise_comparison_keeps(nested):
    import random

    from processing_knowfree import SpanCandidate, decode_spans

    generator = random.Random(11)
    for _ in range(200):
        length, width = generator.randint(1, 40), generator.randint(1, 8)
        candidates = []
        for _ in range(generator.randint(0, 60)):
            start = generator.randrange(length)
            end = min(length, start + generator.randint(1, width))
            candidates.append(SpanCandidate(start, end, generator.randrange(3), round(generator.random(), 2)))
        assert decode_spans(candidates, nested) == quadratic_decoding(candidates, nested)


def test_decoding_time_grows_linearly_with_the_candidates():
    """Counted, not timed: the kept spans examined per candidate stay bounded by the width."""
    from processing_knowfree import SpanCandidate, decode_spans

    def examined(length: int) -> int:
        candidates = [SpanCandidate(start, start + width, 0, 0.5 + 0.001 * ((start * 7 + width) % 400)) for start in range(length) for width in (1, 2, 3) if start + width <= length]
        calls = 0
        original = processing_knowfree._conflicts

        def counting(*arguments):
            nonlocal calls
            calls += 1
            return original(*arguments)

        processing_knowfree._conflicts = counting
        try:
            decode_spans(candidates, nested=False)
        finally:
            processing_knowfree._conflicts = original
        return calls

    small, large = examined(2_000), examined(8_000)
    assert large <= 4.5 * small  # 4x the text: about 4x the comparisons (the old rule: about 16x)


def test_text_the_tokenizer_deletes_entirely_predicts_nothing_and_spares_the_rest(bert_tokenizer):
    model = tiny_model(bert_tokenizer)  # BERT's normaliser deletes control characters and spaces
    assert model.predict("\x01") == [] and model.predict(" \x02 ") == []
    mixed = model.predict(["马云在杭州", "\x01", ""], threshold=0.0)
    assert mixed[1] == [] and mixed[2] == [] and mixed[0] == model.predict("马云在杭州", threshold=0.0)


def test_a_time_limit_stops_prediction_between_batches(bert_tokenizer):
    model = tiny_model(bert_tokenizer)
    texts = [row["text"] for row in training_rows()]
    assert model.predict(texts, batch_size=2, time_limit=60.0) == model.predict(texts, batch_size=2)
    with pytest.raises(TimeoutError, match="time limit of 1e-09 s"):
        model.predict(texts, batch_size=2, time_limit=1e-9)
