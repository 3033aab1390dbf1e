"""How many band rows prediction skips, and proof on real models that skipping changes no candidate.

`KnowFreeSpanHead` computes a row only when an upper bound says one of its cells may reach the lowest
threshold. For each trained model this compares `span_candidates` with skipping against every row
computed (the model's `forward` without `min_score`, through the same processor): candidates, labels
and scores must be the same. It prints the share of rows computed and the time with / without
skipping (one process, alternating, so only the ratio means anything):

    python benchmarks/row_skipping.py --models benchmarks/runs/weibo-k250-knowfree-seed42 --data ../shared/data/weibo
    python benchmarks/row_skipping.py --models DIR [DIR ...] --data DATA --texts 150 --min_score 0.05
"""

import argparse
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from knowfree.data import load_corpus  # noqa: E402
from modeling_knowfree import KnowFreeModel  # noqa: E402


def compare(model: KnowFreeModel, texts: list[str], min_score: float, batch_size: int) -> dict:
    """Candidates with and without skipping, the rows each computed and their times."""
    processor = model.require_processor()
    head = model.span_head
    counted = {"kept": 0, "rows": 0}
    rows_reaching = head.rows_reaching

    def counting(start, end, width, span_mask, rows, min_logit, rows_per_chunk):
        kept = rows_reaching(start, end, width, span_mask, rows, min_logit, rows_per_chunk)
        counted["kept"] += len(kept[0])
        counted["rows"] += len(rows[0])
        return kept

    def every_row(inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        output = model(**inputs)
        return output.span_logits, output.span_mask

    head.rows_reaching = counting
    try:
        started = time.perf_counter()
        skipping = model.span_candidates(texts, batch_size, min_score)
        skipping_seconds = time.perf_counter() - started
    finally:
        del head.rows_reaching
    with torch.inference_mode():
        started = time.perf_counter()
        reference = processor.span_candidates(texts, every_row, batch_size, min_score)
        reference_seconds = time.perf_counter() - started
    same = [[(c.start, c.end, c.label) for c in row] for row in skipping] == [[(c.start, c.end, c.label) for c in row] for row in reference]
    score_difference = max((abs(a.score - b.score) for x, y in zip(skipping, reference) for a, b in zip(x, y)), default=0.0)
    return {
        "min_score": min_score,
        "candidates": sum(map(len, reference)),
        "same_candidates": same,
        "max_score_difference": score_difference,
        "rows_computed": counted["kept"],
        "rows": counted["rows"],
        "time_ratio": skipping_seconds / reference_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True, help="saved KnowFREE model folders")
    parser.add_argument("--data", required=True, help="a data folder or Hub dataset with a test split (read as train.py reads it)")
    parser.add_argument("--texts", type=int, default=None, help="the first N test texts (all by default)")
    parser.add_argument("--min_score", type=float, default=None, help="the lowest threshold (the model's own by default)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    options = parser.parse_args(argv)
    torch.set_num_threads(options.threads)
    texts = list(load_corpus(options.data, splits=("test",)).splits["test"]["text"])[: options.texts]
    failed = False
    for folder in options.models:
        model = KnowFreeModel.from_pretrained(folder).eval()
        min_score = options.min_score if options.min_score is not None else min(model.require_processor().label_thresholds())
        result = compare(model, texts, min_score, options.batch_size)
        failed |= not result["same_candidates"] or result["max_score_difference"] > 1e-5
        print(
            f"{folder}: threshold {min_score:g}, rows computed {result['rows_computed']} of {result['rows']} "
            f"({result['rows_computed'] / max(1, result['rows']):.1%}), candidates {result['candidates']}, "
            f"same: {result['same_candidates']} (scores within {result['max_score_difference']:.1e}), "
            f"time with / without skipping {result['time_ratio']:.2f}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
