"""The ONNX Runtime path (`onnx_knowfree.py`) gives `predict`'s spans and `forward`'s logits, for both
tokenizer styles, flat and nested decoding, long texts read in windows, mixed batches, with and
without a width limit; the export folder loads in a fresh process through transformers' remote-code
loader alone; a model loaded with remote code exports itself; the int8 graph quantizes the encoder
alone unless told to quantize all of it, and stays closer to PyTorch than the whole-graph one."""

import json
import math
import subprocess
import sys

import pytest
import torch
from conftest import CORPUS, REPO_ROOT, assert_same_spans, build_bert_char_tokenizer, build_unigram_tokenizer, tiny_config, tiny_model

pytest.importorskip("onnxruntime", reason="the ONNX path needs onnxruntime (pip install 'knowfree[onnx]')")
import onnx  # noqa: E402  (onnxruntime's quantization needs it too)
import onnxruntime  # noqa: E402

from modeling_knowfree import KnowFreeLocalAttention, KnowFreeModel  # noqa: E402
from onnx_knowfree import (  # noqa: E402
    ONNX_FILE,
    QUANTIZED_FILE,
    KnowFreeOnnxModel,
    bound_side_nodes,
    character_side_nodes,
    main,
    max_logit_difference,
    neighbour_attention,
    quantize_graph,
)

LONG_TEXT = "".join(CORPUS) * 30  # about 700 tokens: two encoder windows
TEXTS = [*CORPUS, CORPUS[1] * 3, "马云", LONG_TEXT[:90]]


def one_thread() -> onnxruntime.SessionOptions:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return options


def scaled(model: KnowFreeModel) -> KnowFreeModel:
    """Scores above and below any threshold, so the untrained model predicts spans (as in test_pipeline)."""
    with torch.no_grad():
        model.span_head.classifier.weight.mul_(5.0)
        model.span_head.classifier.bias.fill_(0.0)
        if model.span_head.width_bias is not None:
            model.span_head.width_bias.normal_(0.0, 1.0)
        if model.character_projection is not None:
            model.character_projection.weight.normal_(0.0, 0.1)
    return model


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict:
    """Two exports by the dynamo exporter: BERT characters with no width limit, and SentencePiece pieces
    with `max_span_width`, its width bias, character embeddings, extension labels and the int8 graph."""
    folder = tmp_path_factory.mktemp("onnx")
    models = {
        "bert": scaled(tiny_model(build_bert_char_tokenizer())),
        "unigram": scaled(tiny_model(build_unigram_tokenizer(), extension_labels=["WORD"], max_span_width=6, character_embeddings=True)),
    }
    found = {}
    for name, model in models.items():
        directory = model.export_onnx(folder / name, quantize=name == "unigram")
        found[name] = (model, KnowFreeOnnxModel.from_pretrained(directory, session_options=one_thread()), directory)
    return found


@pytest.fixture(params=["bert", "unigram"])
def exported(request, exports):
    return exports[request.param]


def span_keys(rows: list[list[dict]]) -> list[list[tuple]]:
    """(start, end, label, text) of every span, text by text."""
    return [[(span["start"], span["end"], span["label"], span["text"]) for span in row] for row in rows]


@pytest.mark.parametrize("decoding", ["flat", "nested"])
def test_onnx_spans_equal_predict_s_on_a_mixed_batch(exported, decoding):
    model, onnx_model, _ = exported
    expected = model.predict(TEXTS, batch_size=3, threshold=0.3, decoding=decoding)
    assert sum(len(row) for row in expected) > 20
    assert_same_spans(expected, onnx_model.predict(TEXTS, batch_size=3, threshold=0.3, decoding=decoding), tolerance=1e-4)
    assert_same_spans([model.predict(TEXTS[1])], [onnx_model.predict(TEXTS[1])], tolerance=1e-4)


def test_onnx_logits_equal_forward_s_within_1e_4(exported):
    model, onnx_model, _ = exported
    assert max_logit_difference(model, onnx_model, TEXTS, batch_size=3) <= 1e-4
    assert max_logit_difference(model, onnx_model, TEXTS[:2], batch_size=1) <= 1e-4
    assert max_logit_difference(model, onnx_model, [LONG_TEXT[:200]], max_tokens=24) <= 1e-4


def test_a_text_longer_than_one_window(exported):
    model, onnx_model, _ = exported
    for max_tokens in (None, 16):  # the encoder's 510 tokens, and many short windows
        assert len(model.processor.windows([LONG_TEXT], max_tokens)) > 1
        options = dict(threshold=0.6, decoding="nested", max_tokens=max_tokens, batch_size=2)  # 0.3 keeps 850,000 candidates
        expected = model.predict([LONG_TEXT, CORPUS[0]], **options)
        assert len(expected[0]) > 20
        assert_same_spans(expected, onnx_model.predict([LONG_TEXT, CORPUS[0]], **options), tolerance=1e-4)


def test_span_candidates_match_and_extension_labels_stay_out(exports):
    model, onnx_model, _ = exports["unigram"]
    expected = model.span_candidates(TEXTS, min_score=0.0)
    found = onnx_model.span_candidates(TEXTS, min_score=0.0)
    assert [[(c.start, c.end, c.label) for c in row] for row in found] == [[(c.start, c.end, c.label) for c in row] for row in expected]
    assert max(abs(a.score - b.score) for row_a, row_b in zip(expected, found) for a, b in zip(row_a, row_b)) <= 1e-4
    assert {candidate.label for row in found for candidate in row} <= set(range(len(model.config.target_labels)))


def test_rows_that_cannot_reach_min_score_are_skipped_as_in_pytorch(exported):
    model, onnx_model, _ = exported
    processor = model.require_processor()
    inputs = processor.encode(processor.windows(TEXTS))
    lowest = torch.finfo(torch.float32).min
    # the untrained heads' row bounds lie close together: bisect for a score some rows may reach and some cannot
    low, high = -10.0, 40.0
    for _ in range(40):
        min_score = 1 / (1 + math.exp(-(low + high) / 2))
        with torch.inference_mode():
            expected = model(**inputs, min_score=min_score).span_logits
        skipped = (expected == lowest).flatten(2).all(-1)[inputs["char_mask"]]
        if skipped.all():
            high = (low + high) / 2
        elif not skipped.any():
            low = (low + high) / 2
        else:
            break
    assert skipped.any() and not skipped.all()
    skipped = (expected == lowest).flatten(2).all(-1)
    found, span_mask = onnx_model.run(inputs, min_score)
    assert torch.equal((found == lowest).flatten(2).all(-1), skipped)
    assert (found - expected).abs()[span_mask & ~skipped[..., None]].max() <= 1e-4


def test_the_graph_has_symbolic_batch_token_and_character_axes(exports):
    _, onnx_model, directory = exports["unigram"]
    shapes = {node.name: node.shape for node in onnx_model.session.get_inputs()}
    assert shapes["input_ids"] == ["batch", "tokens"] and shapes["attention_mask"] == ["batch", "tokens"]
    for name in ("char_token_index", "char_piece_start", "char_piece_end", "char_mask", "char_ids"):
        assert shapes[name] == ["batch", "characters"], name
    assert "char_ids" not in [node.name for node in exports["bert"][1].session.get_inputs()]
    saved = {path.name for path in directory.iterdir()}
    assert {"model.onnx", QUANTIZED_FILE, "config.json", "tokenizer.json", "onnx_knowfree.py", "processing_knowfree.py"} <= saved
    assert "model.safetensors" not in saved


def int8_parts(path) -> set[str]:
    """The sides of the graph at `path` that hold int8 MatMuls: "encoder" (reads tokens) and "head"
    (reads characters)."""
    head = set(character_side_nodes(path))
    return {"head" if node.name in head else "encoder" for node in onnx.load(str(path)).graph.node if node.op_type == "MatMulInteger"}


def test_the_int8_graph_quantizes_the_encoder_alone_and_stays_closer_to_pytorch(exports, tmp_path):
    model, _, directory = exports["unigram"]
    quantize_graph(directory / ONNX_FILE, tmp_path / "all.onnx", "all")
    assert int8_parts(directory / QUANTIZED_FILE) == {"encoder"} and int8_parts(tmp_path / "all.onnx") == {"encoder", "head"}
    encoder_only = KnowFreeOnnxModel.from_pretrained(directory, QUANTIZED_FILE, session_options=one_thread())
    whole = KnowFreeOnnxModel.from_pretrained(tmp_path, "all.onnx", session_options=one_thread(), processor=model.processor)
    # int8 weights: close to PyTorch, not equal; the float32 head adds less error than an int8 one
    assert 0.0 < max_logit_difference(model, encoder_only, TEXTS, batch_size=3) < max_logit_difference(model, whole, TEXTS, batch_size=3) < 0.5
    expected = model.predict(TEXTS, batch_size=3, threshold=0.3)
    assert span_keys(encoder_only.predict(TEXTS, batch_size=3, threshold=0.3)) == span_keys(expected)
    with pytest.raises(ValueError, match="quantize must be"):
        model.export_onnx(tmp_path / "unknown", quantize="head")


def test_neighbour_attention_is_the_local_attention_module_on_span_cells():
    torch.manual_seed(0)
    for window, width in ((0, 5), (2, 9), (3, 70)):  # 70 cells: the module's blocked path
        config = tiny_config(50, ["A"], local_attention_window=window)
        attention = KnowFreeLocalAttention(config)
        spans = torch.randn(6, width, config.span_hidden_size)
        mask = torch.arange(width)[None, :] < torch.tensor([width, width - 1, 3, 1, width // 2, 2])[:, None]
        with torch.no_grad():
            expected, found = attention(spans, mask), neighbour_attention(attention, spans, mask)
        assert torch.allclose(found[mask], expected[mask], atol=1e-5)


def test_the_torchscript_exporter_through_the_command_line(tmp_path, bert_tokenizer):
    model = scaled(tiny_model(bert_tokenizer, max_span_width=5, use_local_attention=False))
    model.save_pretrained(tmp_path / "model")
    assert main(["--model", str(tmp_path / "model"), "--output_dir", str(tmp_path / "onnx"), "--torchscript", "--quantize", "all"]) == 0
    assert int8_parts(tmp_path / "onnx" / QUANTIZED_FILE) == {"encoder", "head"}
    # the row bounds stay float32 in the all-int8 graph: skipping rows changes none of its candidates
    assert bound_side_nodes(tmp_path / "onnx" / ONNX_FILE)
    int8 = KnowFreeOnnxModel.from_pretrained(tmp_path / "onnx", QUANTIZED_FILE, session_options=one_thread())
    every_row = int8.processor.span_candidates(TEXTS, int8.run, 8, 0.3)
    assert sum(map(len, every_row)) > 20 and int8.span_candidates(TEXTS, 8, 0.3) == every_row
    onnx_model = KnowFreeOnnxModel.from_pretrained(tmp_path / "onnx", session_options=one_thread())
    assert max_logit_difference(model, onnx_model, TEXTS, batch_size=3) <= 1e-4
    assert_same_spans(model.predict(TEXTS, threshold=0.3), onnx_model.predict(TEXTS, threshold=0.3), tolerance=1e-4)


def run_fresh(script: str, tmp_path) -> dict:
    """Run `script` in a new interpreter outside the repository, with only a temporary modules cache."""
    environment = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fresh_process(exports, tmp_path_factory) -> dict:
    """One new interpreter (starting one costs seconds) for both remote-code checks, in this order:

    1. `loaded`: the "bert" export folder loaded through transformers' remote-code loader alone, and
       which modules of the repository were imported by then (none should be);
    2. `exported`: the "bert" model saved, loaded with `AutoModel(trust_remote_code=True)`, exported
       by its own remote code (the TorchScript exporter: the dynamo one runs in `exports`), and the
       export loaded; the repository's modules are checked again at the end.

    The three folders have different names, so their remote code gets different module names."""
    tmp_path = tmp_path_factory.mktemp("fresh")
    model, _, directory = exports["bert"]
    model.save_pretrained(tmp_path / "model")
    script = f"""
import json, sys
import onnxruntime
from transformers import AutoModel
from transformers.dynamic_module_utils import get_class_from_dynamic_module

def repository_modules():
    return [name for name in ("modeling_knowfree", "processing_knowfree", "onnx_knowfree") if name in sys.modules]

options = onnxruntime.SessionOptions()
options.intra_op_num_threads = 1
KnowFreeOnnxModel = get_class_from_dynamic_module("onnx_knowfree.KnowFreeOnnxModel", {str(directory)!r})
onnx_model = KnowFreeOnnxModel.from_pretrained({str(directory)!r}, session_options=options)
loaded = {{
    "module": KnowFreeOnnxModel.__module__,
    "repository_on_path": {str(REPO_ROOT)!r} in sys.path,
    "imported_from_the_repository": repository_modules(),
    "spans": onnx_model.predict({TEXTS!r}, batch_size=3, threshold=0.3),
}}
model = AutoModel.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True)
exported_directory = model.export_onnx({str(tmp_path / "onnx")!r}, dynamo=False)
KnowFreeOnnxModel = get_class_from_dynamic_module("onnx_knowfree.KnowFreeOnnxModel", str(exported_directory))
onnx_model = KnowFreeOnnxModel.from_pretrained(exported_directory, session_options=options)
exported = {{
    "module": type(model).__module__,
    "imported_from_the_repository": repository_modules(),
    "spans": onnx_model.predict({TEXTS!r}, threshold=0.3),
}}
print(json.dumps({{"loaded": loaded, "exported": exported}}))
"""
    reply = run_fresh(script, tmp_path)
    reply["model_folder"] = tmp_path / "model"
    return reply


def test_the_export_folder_loads_in_a_fresh_process(exports, fresh_process):
    model = exports["bert"][0]
    reply = fresh_process["loaded"]
    assert reply["module"].startswith("transformers_modules")
    assert not reply["repository_on_path"] and reply["imported_from_the_repository"] == []
    assert_same_spans(model.predict(TEXTS, batch_size=3, threshold=0.3), reply["spans"], tolerance=1e-4)


def test_a_model_loaded_with_remote_code_exports_itself(exports, fresh_process):
    model = exports["bert"][0]
    assert (fresh_process["model_folder"] / "onnx_knowfree.py").is_file()
    reply = fresh_process["exported"]
    assert reply["module"].startswith("transformers_modules")
    assert reply["imported_from_the_repository"] == []
    assert_same_spans(model.predict(TEXTS, threshold=0.3), reply["spans"], tolerance=1e-4)
