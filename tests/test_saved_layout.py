"""A model saved by an earlier release (tests/fixtures/knowfree-layout-2026-11: config, weights and
tokenizer, no code) loads with today's code, with no weight missing or unexpected, and scores every
span as it did when it was saved (scores up to rounding: the reference was computed on another CPU)."""

import json
import shutil

import pytest
from conftest import REPO_ROOT, assert_same_spans

from modeling_knowfree import KnowFreeModel

LEGACY = REPO_ROOT / "tests" / "fixtures" / "knowfree-layout-2026-11"
# Every file modeling_knowfree.py imports relatively, even inside a method: transformers resolves them all on load.
REMOTE_CODE = (
    "configuration_knowfree.py", "modeling_knowfree.py", "processing_knowfree.py", "pipeline_knowfree.py", "onnx_knowfree.py",
)


def reference():
    return json.loads((LEGACY / "reference_spans.json").read_text(encoding="utf-8"))


def scored(model, texts):
    return [[[c.start, c.end, c.label, c.score] for c in row] for row in model.span_candidates(texts, batch_size=2, min_score=0.0)]


def test_todays_code_loads_the_saved_layout_without_missing_weights():
    model, info = KnowFreeModel.from_pretrained(LEGACY, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    expected = reference()
    assert_same_spans(expected["candidates"], scored(model.eval(), expected["texts"]), tolerance=1e-5)


def test_the_saved_layout_loads_through_auto_model_with_todays_remote_code(tmp_path):
    from transformers import AutoModel

    folder = shutil.copytree(LEGACY, tmp_path / "model")
    for name in REMOTE_CODE:
        if not (REPO_ROOT / name).exists():
            pytest.fail(f"remote-code file {name} is gone: update REMOTE_CODE")
        shutil.copy(REPO_ROOT / name, folder / name)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    expected = reference()
    assert_same_spans(expected["candidates"], scored(model, expected["texts"]), tolerance=1e-5)
