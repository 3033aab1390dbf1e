"""benchmarks/speed.py: the RESULTS.md block it owns, the "speed" key it merges into results.json, and
the table and target lines it writes (the figures here are made up), and its ONNX Runtime contender
on tiny models."""

import functools
import importlib.util
import json

import pytest
import torch
from conftest import CORPUS, REPO_ROOT, build_bert_char_tokenizer, tiny_model

SPEC = importlib.util.spec_from_file_location("speed_benchmark", REPO_ROOT / "benchmarks" / "speed.py")
speed = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(speed)


def figures(predict_ratio: float = 0.9, train_ratio: float = 1.2, peak_gb: float | None = 2.5, onnx_ratio: float | None = None) -> dict:
    """A "speed" entry shaped like the one `speed.run` returns; the ONNX ratio is the PyTorch one
    unless given."""
    memory = {"peak_gb": peak_gb, "increment_gb": 1.0, "rss_before_gb": 1.5}
    prediction = {
        "sentences": 270, "characters": 14858, "longest_characters": 146, "repeats": 3,
        "knowfree_s": 10.0, "baseline_s": 9.0, "knowfree_sentences_per_s": 27.0, "baseline_sentences_per_s": 30.0,
        "knowfree_non_encoder_per_encoder": 0.2, "baseline_non_encoder_per_encoder": 0.01, "ratio": predict_ratio,
    }
    return {
        "date": "2026-11-24 03:00 UTC",
        "command": "python benchmarks/speed.py --write",
        "machine": {"cpu": "AMD EPYC", "cores": 2, "memory_gb": 25.3, "torch": "2.13.0", "torch_threads": 2, "transformers": "5.23.0"},
        "settings": {"encoder": "encoders/multilingual-e5-small", "k": 250, "batch_size": 8, "eval_batch_size": 32, "freeze_embeddings": True},
        "max_span_width": {"weibo": 19, "cmeee": 126},
        "load_average": [1.0, 2.0],
        "train_step": {
            "weibo": {"steps": 10, "batch_size": 8, "mean_characters_per_batch": 400.0, "knowfree_step_s": 1.2, "baseline_step_s": 1.0, "ratio": train_ratio},
        },
        "predict": {
            "weibo_test": prediction,
            "cmeee_longest_sentence": {**prediction, "sentences": 1, "characters": 2078, "longest_characters": 2078},
        },
        "peak_memory": {"predict_cmeee_longest_sentence": {"knowfree": memory, "baseline": dict(memory, peak_gb=1.0)}},
        "predict_throughput_ratio": predict_ratio,
        "train_step_ratio": train_ratio,
        "longest_cmeee_peak_mem_gb": peak_gb,
        "longest_cmeee_time_ratio": 6.25,
        "onnx_predict_throughput_ratio": predict_ratio if onnx_ratio is None else onnx_ratio,
    }


def test_write_results_keeps_every_other_key_and_section(tmp_path):
    markdown, results = tmp_path / "RESULTS.md", tmp_path / "results.json"
    markdown.write_text("# Results\n\n## Accuracy\n\n| model | F1 |\n", encoding="utf-8")
    results.write_text(json.dumps({"accuracy": {"weibo": 0.5}, "speed": {"stale": True}}), encoding="utf-8")
    speed.write_results(markdown, results, figures())
    written = json.loads(results.read_text(encoding="utf-8"))
    assert written["accuracy"] == {"weibo": 0.5}
    assert "stale" not in written["speed"] and written["speed"]["train_step_ratio"] == 1.2
    text = markdown.read_text(encoding="utf-8")
    assert text.startswith("# Results\n\n## Accuracy\n\n| model | F1 |\n")
    speed.write_results(markdown, results, figures(train_ratio=1.4))
    again = markdown.read_text(encoding="utf-8")
    assert again.count(speed.BLOCK_START) == 1 and "1.40" in again and again.startswith("# Results\n\n## Accuracy")


def test_write_results_creates_missing_files(tmp_path):
    speed.write_results(tmp_path / "RESULTS.md", tmp_path / "results.json", figures())
    assert set(json.loads((tmp_path / "results.json").read_text())) == {"speed"}
    assert speed.BLOCK_START in (tmp_path / "RESULTS.md").read_text()


def test_target_lines_say_met_missed_and_not_measured():
    met = speed.target_lines(figures(predict_ratio=0.85, train_ratio=1.3, peak_gb=2.0))
    assert all("MET" in line and "MISSED" not in line for line in met[:4])
    missed = speed.target_lines(figures(predict_ratio=0.7, train_ratio=1.6, peak_gb=4.5))
    assert all("MISSED" in line for line in missed[:4])
    assert "NOT MEASURED" in speed.target_lines(figures(peak_gb=None))[2]


def test_markdown_block_holds_the_table_and_the_command():
    block = speed.markdown_block(figures())
    assert block.startswith(speed.BLOCK_START) and block.endswith(speed.BLOCK_END)
    assert "python benchmarks/speed.py --write" in block
    assert "| train step, weibo" in block and "| predict, Weibo test" in block and "< 4 GB" in block


def test_config_overrides_shape_only_the_fresh_knowfree_model(tmp_path):
    """`--config-overrides` reaches train.py's KnowFREE arguments, not the baseline's, and the block says so."""
    options = speed.parse_arguments(["--config-overrides", "projection_size=100,span_hidden_size=100"])
    knowfree = speed.training_arguments(tmp_path, speed.KNOWFREE, options)
    baseline = speed.training_arguments(tmp_path, speed.BASELINE, options)
    assert speed.train.parse_overrides(knowfree.config_overrides) == {"projection_size": 100, "span_hidden_size": 100}
    assert baseline.config_overrides == ""
    entry = figures()
    entry["settings"]["config_overrides"] = options.config_overrides
    assert "KnowFREE with projection_size=100,span_hidden_size=100" in speed.markdown_block(entry)
    assert "KnowFREE with" not in speed.markdown_block(figures())


def test_the_onnx_line_and_the_longest_sentence_time_ratio():
    lines = speed.target_lines(figures(onnx_ratio=1.1))
    assert "ONNX Runtime" in lines[3] and "MET (1.10x" in lines[3]
    assert "MISSED (0.70x" in speed.target_lines(figures(onnx_ratio=0.7))[3]
    assert "6.25x the baseline's time" in lines[2]
    assert "the longest cmeee test sentence in at most 2x the baseline's time: MISSED (6.25x; KnowFREE max_span_width 126)" == lines[5]
    assert "MET (1.47x" in speed.target_lines({**figures(), "longest_cmeee_time_ratio": 1.47})[5]
    entry = figures()
    del entry["onnx_predict_throughput_ratio"], entry["longest_cmeee_time_ratio"]  # a run without ONNX or cmeee
    assert "NOT MEASURED" in speed.target_lines(entry)[3] and "NOT MEASURED" in speed.target_lines(entry)[5]
    assert "| 6.25 (time) | — / — | <= 2 |" in speed.format_table(figures())


def test_every_prediction_row_carries_the_f1_of_the_predictions_timed():
    """F1 beside each speed figure; a fresh model's is marked, and which models are trained follows the
    command line (cmeee's baseline is always fresh)."""
    entry = figures()
    entry["settings"].update(knowfree_model="runs/weibo-knowfree", baseline_model="runs/weibo-baseline", cmeee_knowfree_model=None)
    entry["predict"]["weibo_test"].update(knowfree_f1=0.5809, baseline_f1=0.5601)
    entry["predict"]["cmeee_longest_sentence"].update(knowfree_f1=0.0, baseline_f1=0.0)
    table = speed.format_table(entry)
    assert "| 0.90 | 0.581 / 0.560 | >= 0.8 |" in table
    assert "| 6.25 (time) | 0.000 (fresh) / 0.000 (fresh) | <= 2 |" in table
    entry["settings"]["cmeee_knowfree_model"] = "runs/cmeee-knowfree"
    assert "| 6.25 (time) | 0.000 / 0.000 (fresh) | <= 2 |" in speed.format_table(entry)
    assert "cmeee: KnowFREE runs/cmeee-knowfree and a fresh baseline" in speed.markdown_block(entry)
    assert all(line.count("|") == 7 for line in table.splitlines())  # every row has the six columns


def scaled(model):
    """Scores above and below the thresholds, so the untrained model predicts spans."""
    with torch.no_grad():
        model.span_head.classifier.weight.mul_(5.0)
        model.span_head.classifier.bias.fill_(0.0)
    return model


def test_the_onnx_runtime_contender_runs_beside_pytorch(tmp_path):
    """An export folder's fp32 and int8 graphs are timed beside PyTorch KnowFREE and the baseline (here
    a second tiny KnowFREE model), without an encoder split; their figures compare them with
    PyTorch's predict, and the table and JSON carry them."""
    pytest.importorskip("onnxruntime")
    from onnx_knowfree import export_onnx

    tokenizer = build_bert_char_tokenizer()
    contenders = []
    for name, seed in ((speed.KNOWFREE, 0), (speed.BASELINE, 1)):
        model = scaled(tiny_model(tokenizer, seed=seed, max_span_width=6))
        contenders.append(speed.Contender(name, model, None, None, model.encoder, functools.partial(model.predict, batch_size=3)))
    knowfree = contenders[0]
    texts = CORPUS * 2
    gold = [[{key: span[key] for key in ("start", "end", "label")} for span in spans] for spans in knowfree.predict(texts)]
    export_onnx(knowfree.model, tmp_path, quantize=True, dynamo=False)  # the TorchScript exporter: seconds, not tens
    options = speed.parse_arguments(["--int8", "--threads", "1", "--eval-batch-size", "3"])
    onnx_models = speed.onnx_contenders(knowfree, tmp_path, options)
    assert [onnx.name for onnx in onnx_models] == [speed.ONNX, speed.ONNX_INT8]
    measured = speed.measure_prediction(contenders + onnx_models, texts, repeats=2, gold=gold)
    assert measured["onnx_spans"] == measured["knowfree_spans"] > 0
    assert measured["onnx_encoder_s"] is None and measured["onnx_non_encoder_per_encoder"] is None
    assert measured["knowfree_non_encoder_per_encoder"] is not None

    assert measured["knowfree_f1"] == measured["onnx_f1"] == 1.0 and measured["baseline_f1"] < 1.0
    onnx = speed.onnx_figures(measured, knowfree, onnx_models, texts, 3)
    fp32, int8 = onnx[speed.ONNX], onnx[speed.ONNX_INT8]
    assert fp32["spans_equal"] and fp32["texts_with_different_spans"] == 0
    assert fp32["max_logit_difference"] <= 1e-4 and fp32["max_score_difference"] <= 1e-4
    assert onnx["knowfree_f1"] == fp32["f1"] == 1.0 and 0.0 <= int8["f1"] <= 1.0
    assert 0.0 < int8["max_logit_difference"] < 0.5
    assert fp32["per_baseline"] == pytest.approx(measured["onnx_sentences_per_s"] / measured["baseline_sentences_per_s"])
    assert fp32["per_knowfree"] == pytest.approx(measured["onnx_sentences_per_s"] / measured["knowfree_sentences_per_s"])

    entry = figures(onnx_ratio=fp32["per_baseline"])
    entry["onnx"] = {"export_s": 1.0, "intra_op_threads": 1, **onnx}
    table = speed.format_table(entry)
    assert "KnowFREE on ONNX Runtime (fp32, 1 thread)" in table and "spans equal to PyTorch's" in table
    assert "KnowFREE on ONNX Runtime (int8 weights, 1 thread)" in table and "test F1 1.0000 (PyTorch) ->" in table
    speed.write_results(tmp_path / "RESULTS.md", tmp_path / "results.json", entry)
    written = json.loads((tmp_path / "results.json").read_text())["speed"]
    assert written["onnx"]["onnx"]["spans_equal"] is True and written["onnx_predict_throughput_ratio"] == fp32["per_baseline"]


def test_long_document_joins_the_texts_cycled_to_the_exact_length():
    assert speed.long_document(["甲乙", "丙"], 7) == ("甲乙丙甲乙丙甲", [])
    assert speed.long_document(["甲乙", "", "丙丁戊"], 2)[0] == "甲乙"


def test_long_document_moves_each_texts_spans_to_its_place_and_leaves_out_the_cut_one():
    spans = [[{"start": 0, "end": 2, "label": "A"}], [{"start": 0, "end": 1, "label": "B"}]]
    document, moved = speed.long_document(["甲乙", "丙"], 7, spans)
    assert [(span["start"], span["end"], span["label"]) for span in moved] == [(0, 2, "A"), (2, 3, "B"), (3, 5, "A"), (5, 6, "B")]
    assert all(document[span["start"] : span["end"]] in ("甲乙", "丙") for span in moved)  # the span at 6-8 would pass the cut at 7
    with pytest.raises(ValueError, match="non-empty"):
        speed.long_document(["", ""], 5)


def test_long_documents_are_timed_per_10000_characters_with_their_growth():
    """Both models predict one document per length; seconds are scaled to 10,000 characters, the spans
    are those of predict on the same document, and the growth compares the longest with the shortest."""
    tokenizer = build_bert_char_tokenizer()
    contenders = []
    for name, seed in ((speed.KNOWFREE, 0), (speed.BASELINE, 1)):
        model = scaled(tiny_model(tokenizer, seed=seed, max_span_width=6))
        contenders.append(speed.Contender(name, model, None, None, model.encoder, functools.partial(model.predict, batch_size=4)))
    gold = [[{key: span[key] for key in ("start", "end", "label")} for span in spans] for spans in contenders[0].predict(CORPUS)]
    measured = speed.measure_long_documents(contenders, CORPUS, [600, 200], repeats=1, gold=gold)
    assert list(measured["lengths"]) == ["200", "600"]
    for length, figures in measured["lengths"].items():
        document, document_gold = speed.long_document(CORPUS, int(length), gold)
        for contender in contenders:
            seconds = figures[f"{contender.name}_s"]
            assert figures[f"{contender.name}_s_per_10000"] == pytest.approx(seconds * 10_000 / int(length))
            predicted = contender.predict([document])
            assert figures[f"{contender.name}_spans"] == len(predicted[0]) > 0
            assert figures[f"{contender.name}_f1"] == pytest.approx(speed.score_spans(predicted, [document_gold])["f1"])
        assert figures["knowfree_f1"] > figures["baseline_f1"]  # the gold is KnowFREE's own reading of each text
        assert figures["ratio"] == pytest.approx(figures["knowfree_s"] / figures["baseline_s"])
    for contender in contenders:
        per = [measured["lengths"][length][f"{contender.name}_s_per_10000"] for length in ("200", "600")]
        assert measured["growth"][contender.name] == pytest.approx(per[1] / per[0])


def test_the_long_document_rows_and_target():
    entry = figures()
    assert speed.long_document_rows(entry) == [] and "NOT MEASURED" in speed.target_lines(entry)[4]
    lengths = {
        str(n): {"characters": n, "knowfree_s": n / 2000, "baseline_s": n / 4000, "knowfree_s_per_10000": 5.0, "baseline_s_per_10000": 2.5, "ratio": 2.0}
        for n in (2000, 100000)
    }
    entry["long_documents"] = {"lengths": lengths, "growth": {"knowfree": 1.05, "baseline": 1.3}, "repeats": 1}
    rows = speed.long_document_rows(entry)
    assert rows[0].startswith("| predict one document of 2,000 chars") and "| 5.00 | 2.50 | 2.00 (time) | — / — |" in rows[0]
    assert "at 100,000 chars / at 2,000 chars | 1.05 | 1.30 |" in rows[-1]
    assert "MET (1.05x; 5.00 s at 2,000, 5.00 s at 100,000)" in speed.target_lines(entry)[4]
    entry["long_documents"]["growth"]["knowfree"] = 1.5
    assert "MISSED (1.50x" in speed.target_lines(entry)[4]
    assert rows[0] in speed.format_table(entry)
