"""benchmarks/row_skipping.py: on a tiny model whose widths score far apart, it counts fewer rows computed
than exist, finds the candidates of every row, and exits non-zero only when they differ."""

import importlib.util

import torch
from conftest import CORPUS, REPO_ROOT, build_bert_char_tokenizer, tiny_model

SPEC = importlib.util.spec_from_file_location("row_skipping_benchmark", REPO_ROOT / "benchmarks" / "row_skipping.py")
row_skipping = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(row_skipping)


def test_compare_counts_the_rows_computed_and_finds_the_same_candidates():
    model = tiny_model(build_bert_char_tokenizer(), max_span_width=6, use_local_attention=False).eval()
    with torch.no_grad():
        model.span_head.classifier.bias.fill_(0.0)
        model.span_head.width_bias.normal_()  # widths far apart: some rows reach 0.9, some do not
    result = row_skipping.compare(model, list(CORPUS), 0.9, batch_size=4)
    assert result["same_candidates"] and result["max_score_difference"] <= 1e-5
    assert 0 < result["candidates"] and 0 < result["rows_computed"] < result["rows"] == sum(map(len, CORPUS))
    assert "rows_reaching" not in vars(model.span_head)  # the counting wrapper is gone afterwards
