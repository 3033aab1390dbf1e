"""The KnowFREE model: band head vs. naive reference, loss weights, learning, predicting through the
processor, long text, the forward contract and the remote-code round trip (the processor's own rules
are tested in test_processing.py)."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import REPO_ROOT, assert_same_spans, tiny_config, tiny_model, training_rows
from transformers import BertModel

from knowfree.collate import SpanCollator
from knowfree.reference_head import band_to_grid, reference_span_logits
from modeling_knowfree import (
    KnowFreeModel,
    KnowFreeSpanHead,
    band_cell_count,
    band_span_mask,
    gather_band_rows,
    pad_band_rows,
)
from processing_knowfree import band_width


def spans_of(predictions: list[dict]) -> set[tuple[int, int, str]]:
    return {(span["start"], span["end"], span["label"]) for span in predictions}


def train(model: KnowFreeModel, rows: list[dict], steps: int, learning_rate: float = 3e-3) -> None:
    collator = SpanCollator(model.tokenizer, model.config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    model.train()
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        batch_rows = [rows[index] for index in torch.randperm(len(rows), generator=generator)[:10].tolist()]
        loss = model(**collator(batch_rows)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


@pytest.fixture(scope="module")
def trained_model(bert_tokenizer) -> KnowFreeModel:
    """A tiny model that has memorised the 20 training sentences (with extension labels present)."""
    rows = training_rows()
    for row in rows:
        row["extensions"] = [{"start": 0, "end": 1, "label": "FIRST_CHAR"}]
    model = tiny_model(bert_tokenizer, extension_labels=["FIRST_CHAR"], seed=1, decoding="nested")
    train(model, rows, steps=220)
    return model


# --- fast band head vs naive reference ----------------------------------------------------------


def padded_mask(lengths: list[int]) -> torch.Tensor:
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.bool)
    for row, length in enumerate(lengths):
        mask[row, :length] = True
    return mask


@pytest.mark.parametrize(
    "lengths,window,heads",
    [
        ([9, 6, 2], 2, 4),
        ([17, 17, 11], 3, 2),
        ([12, 5, 1], 0, 4),
        ([33, 20, 30], 5, 5),
        ([37, 12], 2, 4),
        ([7, 7, 7], 10, 10),
        ([45, 30], 20, 4),
    ],
)
def test_band_head_equals_reference_without_width_limit(lengths, window, heads):
    torch.manual_seed(len(lengths) + window)
    head = KnowFreeSpanHead(tiny_config(50, ["A", "B"], ["x"], local_attention_window=window, local_attention_heads=heads), 32)
    states, mask = torch.randn(len(lengths), max(lengths), 32), padded_mask(lengths)
    band_logits, band_mask = head(states, mask)
    reference, valid = reference_span_logits(head, states, mask)
    assert torch.equal(band_to_grid(band_mask, max(lengths)), valid)
    difference = (band_to_grid(band_logits, max(lengths)) - reference)[valid].abs().max().item()
    assert difference < 1e-5


@pytest.mark.parametrize("width_limit,window", [(6, 2), (4, 1), (10, 3)])
def test_band_head_equals_reference_inside_width_limit(width_limit, window):
    torch.manual_seed(width_limit)
    lengths = [21, 14]
    config = tiny_config(50, ["A"], [], local_attention_window=window, max_span_width=width_limit)
    head = KnowFreeSpanHead(config, 32)
    with torch.no_grad():
        head.width_bias.normal_()  # a bias per width, as the label priors set it
    states, mask = torch.randn(2, 21, 32), padded_mask(lengths)
    band_logits, band_mask = head(states, mask)
    assert band_logits.shape[2] == width_limit
    reference, valid = reference_span_logits(head, states, mask)
    offsets = torch.arange(21)[None, :] - torch.arange(21)[:, None]
    window_inside_band = valid & (offsets + window < width_limit)[None]
    assert window_inside_band.sum() > 0
    difference = (band_to_grid(band_logits, 21) - reference)[window_inside_band].abs().max().item()
    assert difference < 1e-5


def test_blocked_attention_with_padded_blocks_equals_reference_inside_width_limit():
    # a band of 29 > BLOCK + 2w cells is cut into blocks (2 of 15, one padding cell per row)
    torch.manual_seed(3)
    config = tiny_config(50, ["A", "B"], [], local_attention_window=2, max_span_width=29)
    head = KnowFreeSpanHead(config, 32)
    states, mask = torch.randn(3, 40, 32), padded_mask([40, 33, 5])
    band_logits, _ = head(states, mask)
    reference, valid = reference_span_logits(head, states, mask)
    offsets = torch.arange(40)[None, :] - torch.arange(40)[:, None]
    compared = valid & (offsets + 2 < 29)[None]
    assert (band_to_grid(band_logits, 40) - reference)[compared].abs().max().item() < 1e-5


@pytest.mark.parametrize("use_local_attention", [True, False])
def test_inference_in_chunks_of_rows_gives_the_logits_of_one_pass(monkeypatch, use_local_attention):
    torch.manual_seed(4)
    config = tiny_config(50, ["A"], ["x"], max_span_width=6, use_local_attention=use_local_attention)
    head = KnowFreeSpanHead(config, 32)
    states, mask = torch.randn(3, 15, 32), padded_mask([15, 9, 4])
    one_pass, span_mask = head(states, mask)
    chunk_sizes = []
    row_logits = head.row_logits

    def counting_row_logits(start, band_ends, width, row_mask, rows):
        chunk_sizes.append(len(rows[0]))
        return row_logits(start, band_ends, width, row_mask, rows)

    monkeypatch.setattr(head, "row_logits", counting_row_logits)
    monkeypatch.setattr(KnowFreeSpanHead, "INFERENCE_CHUNK_ROWS", 5)
    end_side_passes = []
    head.biaffine.end_affine.register_forward_hook(lambda *_: end_side_passes.append(1))
    with torch.no_grad():
        chunked, chunked_mask = head(states, mask)
    assert chunk_sizes == [5, 5, 5, 5, 5, 3]  # the 28 rows that start in a text, 5 per chunk
    assert len(end_side_passes) == 1  # W_e e[j] depends on the position alone: once per batch, not per chunk
    assert torch.equal(chunked_mask, span_mask)
    assert torch.allclose(chunked, one_pass.detach(), atol=1e-6)


@pytest.mark.parametrize("grad", [True, False])
def test_rows_outside_the_text_get_zero_logits_and_empty_batches_work(grad):
    head = KnowFreeSpanHead(tiny_config(50, ["A"], []), 32)
    states = torch.randn(2, 6, 32)
    with torch.set_grad_enabled(grad):
        logits, span_mask = head(states, padded_mask([6, 2]))
        empty_logits, empty_mask = head(states, torch.zeros(2, 6, dtype=torch.bool))
    assert torch.equal(logits[1, 2:], torch.zeros_like(logits[1, 2:]))
    assert span_mask[0].any() and not empty_mask.any()
    assert empty_logits.shape == (2, 6, 6, 1) and not empty_logits.any()


def test_band_rows_are_rows_of_the_band():
    features = torch.randn(2, 7, 3)
    rows = (torch.tensor([0, 1, 1, 0]), torch.tensor([6, 0, 3, 2]))
    band = torch.nn.functional.pad(features, (0, 0, 0, 3)).unfold(1, 4, 1).transpose(2, 3)  # (B, L, W, D)
    assert torch.equal(gather_band_rows(pad_band_rows(features, 4), 4, rows), band[rows])


def test_ablation_without_local_attention_matches_reference():
    head = KnowFreeSpanHead(tiny_config(50, ["A"], [], use_local_attention=False), 32)
    states, mask = torch.randn(2, 8, 32), padded_mask([8, 3])
    band_logits, _ = head(states, mask)
    reference, valid = reference_span_logits(head, states, mask)
    assert head.local_attention is None
    assert (band_to_grid(band_logits, 8) - reference)[valid].abs().max() < 1e-5


def random_band_head(use_local_attention: bool, seed: int) -> KnowFreeSpanHead:
    """A head whose width bias and residual LayerNorm are far from their initial values, so the
    bounds meet every term they have to cover."""
    torch.manual_seed(seed)
    config = tiny_config(50, ["A", "B", "C"], ["x"], max_span_width=7, use_local_attention=use_local_attention)
    head = KnowFreeSpanHead(config, 32)
    with torch.no_grad():
        head.width_bias.normal_()
        if use_local_attention:
            head.residual_norm.weight.uniform_(-0.3, 0.3)
            head.residual_norm.bias.normal_()
    return head


@pytest.mark.parametrize("use_local_attention", [True, False])
def test_target_logit_bounds_bound_every_target_logit_and_are_exact_without_local_attention(use_local_attention):
    head = random_band_head(use_local_attention, seed=5)
    states, mask = torch.randn(3, 15, 32), padded_mask([15, 9, 4])
    with torch.no_grad():
        logits, span_mask = head(states, mask)
        weights = head.target_bound_weights()
        end = head.end_projection(states)
        padded_ends = pad_band_rows(torch.cat([end, end @ weights[2].T], -1), 7)
        rows = mask.nonzero(as_tuple=True)
        bounds = head.target_logit_bounds(head.start_projection(states), padded_ends, 7, rows, weights)
    slack = (bounds - logits[rows][..., :3])[span_mask[rows]]
    assert slack.min() > 0
    if use_local_attention:
        assert slack.min() > head.BOUND_TOLERANCE  # the LayerNorm term is a real, positive margin
    else:
        assert torch.allclose(slack, torch.full_like(slack, head.BOUND_TOLERANCE), atol=1e-5)


@pytest.mark.parametrize("use_local_attention", [True, False])
def test_rows_that_cannot_reach_min_logit_are_skipped_and_the_others_keep_their_logits(monkeypatch, use_local_attention):
    head = random_band_head(use_local_attention, seed=6)
    with torch.no_grad():
        head.classifier.bias[:3] -= 4.0  # most cells far below 0, as a trained model's are
    states, mask = torch.randn(3, 15, 32), padded_mask([15, 9, 4])
    computed_rows = []
    row_logits = head.row_logits
    monkeypatch.setattr(head, "row_logits", lambda start, band_ends, width, row_mask, rows: computed_rows.append(len(rows[0])) or row_logits(start, band_ends, width, row_mask, rows))
    with torch.no_grad():
        dense, span_mask = head(states, mask)
        best = dense[..., :3].amax(-1).masked_fill(~span_mask, -torch.inf)
        cut = best.flatten().topk(8).values[-1].item()  # eight cells reach it
        computed_rows.clear()
        pruned, pruned_mask = head(states, mask, min_logit=cut)
    reaching = best >= cut
    assert torch.equal(pruned_mask, span_mask)
    assert torch.equal(pruned[reaching], dense[reaching])
    # a row of the text is computed exactly or skipped whole; skipped rows are the ones that cannot reach
    skipped = (pruned == torch.finfo(pruned.dtype).min).flatten(2).all(-1) & mask
    computed = mask & ~skipped
    assert torch.equal(pruned[computed], dense[computed])
    assert not (skipped & reaching.any(-1)).any()
    assert skipped.any() and sum(computed_rows) == computed.sum()
    with torch.enable_grad():
        trained, _ = head(states, mask, min_logit=cut)  # training never skips a row
    assert torch.allclose(trained.detach(), dense, atol=1e-6)


def test_span_candidates_are_those_of_every_cell_at_each_min_score(trained_model):
    texts = [row["text"] for row in training_rows()] + ["马云去上海开会。", "我爱北京大学。"]
    processor = trained_model.require_processor()

    def dense_run(inputs):
        output = trained_model(**inputs)
        return output.span_logits, output.span_mask

    for min_score in (0.05, 0.5, 0.95):
        with torch.no_grad():
            every_cell = processor.span_candidates(texts, dense_run, 8, min_score)
        assert trained_model.span_candidates(texts, 8, min_score) == every_cell


# --- loss --------------------------------------------------------------------------------------


@pytest.fixture
def loss_batch(bert_tokenizer):
    model = tiny_model(bert_tokenizer, extension_labels=["WORD", "NOUN"], max_span_width=4)
    rows = [
        {"text": "北京大学", "entities": [{"start": 0, "end": 4, "label": "ORG"}], "extensions": [{"start": 0, "end": 2, "label": "WORD"}]},
        {"text": "马云去上海开会。", "entities": [{"start": 0, "end": 2, "label": "PER"}], "extensions": [{"start": 3, "end": 5, "label": "NOUN"}], "synthetic": True},
    ]
    return model, SpanCollator(bert_tokenizer, model.config)(rows)


def per_label_terms(model, batch) -> torch.Tensor:
    """Sum over valid cells of each label's BCE term, times the row weights, over the valid cell count."""
    with torch.no_grad():
        output = model(**batch)
    terms = torch.nn.functional.binary_cross_entropy_with_logits(output.span_logits, batch["span_labels"], reduction="none")
    rows = torch.where(batch["synthetic"], model.config.synthetic_weight, 1.0)
    terms = terms * output.span_mask[..., None] * rows[:, None, None, None]
    return terms.sum((0, 1, 2)) / output.span_mask.sum()


def test_extension_weight_changes_loss_by_exactly_its_term(loss_batch):
    model, batch = loss_batch
    with torch.no_grad():
        base = model(**batch).loss.item()
        model.config.extension_label_weights = [1.0, 0.25]
        changed = model(**batch).loss.item()
    noun_term = per_label_terms(model, batch)[len(model.config.target_labels) + 1].item()
    assert changed - base == pytest.approx((0.25 - 1.0) * noun_term, rel=1e-5, abs=1e-7)
    assert noun_term > 0


def test_synthetic_weight_scales_only_synthetic_rows(loss_batch):
    model, batch = loss_batch
    model.config.synthetic_weight = 1.0
    with torch.no_grad():
        both = model(**batch).loss.item()
        real_only = model(**{**batch, "synthetic": torch.tensor([False, True])}).loss.item()
        model.config.synthetic_weight = 0.0
        without_synthetic = model(**batch).loss.item()
        model.config.synthetic_weight = 0.4
        scaled = model(**batch).loss.item()
    synthetic_part = both - without_synthetic
    assert real_only == pytest.approx(both)
    assert synthetic_part > 0
    assert scaled == pytest.approx(without_synthetic + 0.4 * synthetic_part, rel=1e-5)


def test_padding_and_cells_past_the_text_contribute_nothing(loss_batch):
    model, batch = loss_batch
    with torch.no_grad():
        output = model(**batch)
        poisoned = batch["span_labels"].clone()
        poisoned[~output.span_mask] = 1.0
        assert (~output.span_mask).any()
        assert model(**{**batch, "span_labels": poisoned}).loss.item() == pytest.approx(output.loss.item())


def test_negative_weight_scales_exactly_the_terms_of_cells_without_the_label(loss_batch):
    model, batch = loss_batch
    with torch.no_grad():
        output = model(**batch)
        terms = torch.nn.functional.binary_cross_entropy_with_logits(output.span_logits, batch["span_labels"], reduction="none")
        weights = model.label_weights()[None, None, None, :] * torch.where(batch["synthetic"], model.config.synthetic_weight, 1.0)[:, None, None, None]
        negative = (terms * weights * output.span_mask[..., None] * (batch["span_labels"] == 0)).sum() / output.span_mask.sum()
        model.config.negative_weight = 0.25
        try:
            scaled = model(**batch).loss.item()
        finally:
            model.config.negative_weight = 1.0
    assert negative > 0
    assert scaled == pytest.approx(output.loss.item() - 0.75 * negative.item(), rel=1e-5)


def test_label_priors_follow_the_negative_weight(bert_tokenizer):
    """The bias starts where the weighted loss of a constant logit is lowest: odds count / (weight x negatives)."""
    model = tiny_model(bert_tokenizer, negative_weight=0.1, max_span_width=1)  # 1000 cells
    model.initialize_label_priors([1000], [(1, "LOC")] * 10 + [(1, "ORG")] + [(1, "PER")] * 5)
    expected = torch.log(torch.tensor([10 / 990, 1 / 999, 5 / 995]) / 0.1)
    assert torch.allclose(model.span_head.classifier.bias, expected, atol=1e-5)


@pytest.mark.parametrize("length,width_limit", [(1, None), (7, None), (7, 3), (3, 7), (10, 10)])
def test_band_cell_count_matches_the_band_mask(length, width_limit):
    mask = band_span_mask(torch.ones(1, length, dtype=torch.bool), band_width(length, width_limit))
    assert band_cell_count(length, width_limit) == mask.sum().item()


def test_label_priors_set_the_classifier_bias_to_log_odds(bert_tokenizer):
    model = tiny_model(bert_tokenizer, extension_labels=["WORD"])
    spans = [(2, "LOC")] * 10 + [(3, "PER")] * 5 + [(1, "WORD")] * 500
    model.initialize_label_priors([100] * 10, spans)  # no width limit: 10 x 5050 cells
    expected = torch.tensor([10 / 50500, 1 / 50500, 5 / 50500, 500 / 50500]).logit()
    assert torch.allclose(model.span_head.classifier.bias, expected, atol=1e-5)
    assert model.span_head.width_bias is None
    with pytest.raises(ValueError, match=r"labels the model does not have: \['DATE'\]"):
        model.initialize_label_priors([10], [(1, "DATE")])


def test_label_priors_per_width_start_unseen_widths_far_below_seen_ones(bert_tokenizer):
    model = tiny_model(bert_tokenizer, max_span_width=4)
    model.initialize_label_priors([10] * 100, [(2, "PER")] * 40 + [(3, "PER")] * 10 + [(2, "LOC")] * 5)
    head = model.span_head
    cells = torch.tensor([1000.0, 900.0, 800.0, 700.0])  # 100 texts of 10 characters, widths 1 to 4
    per = head.classifier.bias[2] + head.width_bias[:, 2]
    assert torch.allclose(per, (torch.tensor([0.5, 40.0, 10.0, 0.5]) / cells).logit(), atol=1e-5)
    assert torch.allclose(head.classifier.bias[2], torch.tensor(50 / 3400).logit(), atol=1e-5)
    assert per[3] < per[2] - 2.5 and per[0] < per[1] - 4
    # the priors reach the logits: an untrained model scores a width-2 PER cell far above a width-4 one
    with torch.no_grad():
        model.span_head.classifier.weight.zero_()
        logits = model(**model.processor("马云去上海开会。")).span_logits[0, 0, :, 2]
    assert torch.allclose(logits, per, atol=1e-5)


# --- learning and decoding -----------------------------------------------------------------------


def test_model_memorises_twenty_sentences(trained_model):
    rows = training_rows()
    predictions = trained_model.predict([row["text"] for row in rows], decoding="nested")
    gold = [{(span["start"], span["end"], span["label"]) for span in row["entities"]} for row in rows]
    assert [spans_of(spans) for spans in predictions] == gold


def test_extension_labels_are_never_predicted(trained_model):
    texts = [row["text"] for row in training_rows()]
    with torch.no_grad():
        trained_model.span_head.classifier.bias[-1] += 50.0
    try:
        predictions = trained_model.predict(texts, threshold=0.01)
    finally:
        with torch.no_grad():
            trained_model.span_head.classifier.bias[-1] -= 50.0
    labels = {span["label"] for spans in predictions for span in spans}
    assert labels and labels <= set(trained_model.config.target_labels)


def test_nested_and_flat_decoding(trained_model):
    text = "我爱北京大学。"
    nested = spans_of(trained_model.predict(text, decoding="nested"))
    flat = spans_of(trained_model.predict(text, decoding="flat"))
    assert nested == {(2, 6, "ORG"), (2, 4, "LOC")}
    assert len(flat) == 1 and flat < nested


def test_predict_uses_the_config_thresholds_per_label_unless_a_threshold_is_given(trained_model):
    text = "马云去上海开会。"
    everything = spans_of(trained_model.predict(text))
    assert {"PER", "LOC"} <= {label for _, _, label in everything}
    config = trained_model.config
    try:
        config.label_thresholds = {"PER": 0.999999}
        assert spans_of(trained_model.predict(text)) == {span for span in everything if span[2] != "PER"}
        assert spans_of(trained_model.predict(text, threshold=config.threshold)) == everything
        config.label_thresholds, config.threshold = {}, 0.999999
        assert spans_of(trained_model.predict(text)) == set()
    finally:
        config.label_thresholds, config.threshold = {}, 0.5


def test_long_text_is_windowed_and_finds_spans_near_its_end(trained_model):
    filler = "我爱天安门。" * 500
    text = filler + "马云去杭州开会。"
    assert len(text) > 3000
    spans = trained_model.predict(text)
    windows = trained_model.processor.windows([text])
    assert len(windows) > 1 and all(len(window.token_ids) <= 510 for window in windows)
    assert (len(filler), len(filler) + 2, "PER") in spans_of(spans)
    assert (len(filler) + 3, len(filler) + 5, "LOC") in spans_of(spans)
    assert len({(span["start"], span["end"]) for span in spans}) == len(spans)


def test_predict_batches_windows_by_token_count(unigram_tokenizer):
    """Texts of many characters but few pieces and the reverse: batches follow the token count the
    encoder pads to, and batching changes no prediction."""
    model = tiny_model(unigram_tokenizer).eval()
    texts = ["北京天安门阿里巴巴杭州大学", "马云去上海开会了", "我爱你去了马云会开", "北京杭州上海"]
    token_counts = [len(unigram_tokenizer.tokenize(text)) for text in texts]
    assert sorted(range(4), key=lambda i: len(texts[i])) != sorted(range(4), key=lambda i: token_counts[i])
    padded_tokens = []
    hook = model.encoder.register_forward_pre_hook(
        lambda module, args, kwargs: padded_tokens.append(kwargs["input_ids"].numel()), with_kwargs=True
    )
    batched = model.predict(texts, batch_size=2, threshold=0.0)
    hook.remove()
    by_tokens = sorted(token_counts)
    assert sum(padded_tokens) == 2 * (by_tokens[1] + 2) + 2 * (by_tokens[3] + 2)
    assert batched == [model.predict(text, threshold=0.0) for text in texts]


def test_predict_input_contract(trained_model):
    assert trained_model.predict("") == []
    assert trained_model.predict(["", "马云去上海开会。"])[0] == []
    single = trained_model.predict("马云去上海开会。")
    assert isinstance(single, list) and {"start", "end", "label", "score", "text"} <= set(single[0])
    assert all(span["text"] == "马云去上海开会。"[span["start"] : span["end"]] for span in single)
    with pytest.raises(TypeError):
        trained_model.predict(42)
    with pytest.raises(TypeError):
        trained_model.predict(["ok", None])


# --- building and the remote-code round trip -------------------------------------------------------


def test_from_encoder_loads_the_pretrained_weights(tmp_path, bert_tokenizer):
    encoder_config = tiny_config(len(bert_tokenizer), ["A"]).encoder_config
    encoder = BertModel(encoder_config)
    encoder.save_pretrained(tmp_path / "encoder")
    bert_tokenizer.save_pretrained(tmp_path / "encoder")
    model = KnowFreeModel.from_encoder(tmp_path / "encoder", ["A", "B"], ["x"], max_span_width=8)
    assert torch.equal(model.encoder.embeddings.word_embeddings.weight, encoder.embeddings.word_embeddings.weight)
    assert model.config.max_span_width == 8 and model.config.labels == ["A", "B", "x"]
    assert model.tokenizer is not None and model.predict("北京") == []


def test_save_and_load_with_remote_code_in_a_fresh_process(tmp_path, trained_model):
    saved = tmp_path / "model"
    trained_model.save_pretrained(saved)
    config = json.loads((saved / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_knowfree.KnowFreeConfig",
        "AutoModel": "modeling_knowfree.KnowFreeModel",
    }
    for remote_code in ("modeling_knowfree.py", "configuration_knowfree.py", "processing_knowfree.py"):
        assert (saved / remote_code).exists(), remote_code
    text = "马云在北京创办了阿里巴巴集团。"
    expected_predictions = trained_model.predict(text)
    with torch.no_grad():
        expected = trained_model(**trained_model.processor(text)).span_logits
    torch.save(expected, tmp_path / "expected.pt")
    script = textwrap.dedent(
        f"""
        import json, sys, torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(saved)!r}, trust_remote_code=True)
        for loaded in (model, model.processor, model.config):
            assert type(loaded).__module__.startswith("transformers_modules"), type(loaded).__module__
        text = {text!r}
        with torch.no_grad():
            logits = model(**model.processor(text)).span_logits
        expected = torch.load({str(tmp_path / "expected.pt")!r})
        difference = (logits - expected).abs().max().item() if logits.shape == expected.shape else float("inf")
        print(json.dumps({{"difference": difference, "predictions": model.predict(text)}}))
        """
    )
    environment = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    # A fresh process may use another thread count, and so another summation order: equal up to rounding.
    assert reply["difference"] <= 1e-5, reply["difference"]
    assert_same_spans([expected_predictions], [reply["predictions"]], tolerance=1e-5)


def imported_roots(file_name: str) -> set[str]:
    """The top-level modules a file imports, relative imports named without their dot."""
    import ast

    roots = set()
    for node in ast.walk(ast.parse((REPO_ROOT / file_name).read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_remote_code_imports_only_torch_transformers_and_itself():
    """The files the Hub copies need nothing else; onnx and onnxruntime are imported by the ONNX path only."""
    remote_code = {"torch", "transformers", "configuration_knowfree", "processing_knowfree", "modeling_knowfree", "pipeline_knowfree", "onnx_knowfree"}
    standard = {"argparse", "collections", "dataclasses", "itertools", "logging", "math", "pathlib", "time", "unicodedata"}
    for file_name in ("modeling_knowfree.py", "processing_knowfree.py", "pipeline_knowfree.py"):
        assert imported_roots(file_name) <= remote_code | standard, file_name
    assert imported_roots("onnx_knowfree.py") <= remote_code | standard | {"onnx", "onnxruntime"}


def test_forward_rejects_a_misspelled_keyword(bert_tokenizer):
    model = tiny_model(bert_tokenizer)
    batch = model.processor.training_batch(training_rows()[:2])
    labels = batch.pop("span_labels")
    with pytest.raises(TypeError, match="span_label"):
        model(**batch, span_label=labels)
    assert model(**batch, span_labels=labels).loss is not None


def test_base_model_prefix_names_the_encoder(bert_tokenizer):
    model = tiny_model(bert_tokenizer)
    assert model.base_model is model.encoder
    assert model.get_input_embeddings() is model.encoder.embeddings.word_embeddings
