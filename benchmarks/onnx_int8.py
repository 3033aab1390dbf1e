"""Test span F1 and side-by-side speed of a KnowFREE model in PyTorch, as its ONNX fp32 graph and as
each int8 variant (encoder or whole graph, per-channel or per-tensor weight scales).

    python benchmarks/onnx_int8.py --model benchmarks/runs/weibo-k250-knowfree-seed42 --data ../shared/data/weibo

The test texts go in chunks of 64, and every contender predicts each chunk in turn (the order rotated
per chunk), so a change of load on the machine spreads over all of them. Time is the calling thread's
CPU time: torch and ONNX Runtime both run one intra-op thread, on the calling thread. The figures of
benchmarks/README.md ("int8: which part, which scale") come from this script.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(__file__).resolve().parent
for folder in (REPO_ROOT, BENCHMARKS):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import onnxruntime  # noqa: E402
import torch  # noqa: E402

from knowfree.data import load_corpus  # noqa: E402
from knowfree.evaluation import score_spans  # noqa: E402
from modeling_knowfree import KnowFreeModel  # noqa: E402
from onnx_knowfree import ONNX_FILE, QUANTIZED_PARTS, KnowFreeOnnxModel, export_onnx, max_logit_difference, quantize_graph  # noqa: E402
from speed import span_keys  # noqa: E402

CHUNK = 64


def int8_variants(folder: Path) -> list[str]:
    """Write every int8 variant of `folder`'s fp32 graph beside it; returns their file names."""
    names = []
    for part in QUANTIZED_PARTS:
        for per_channel in (True, False):
            name = f"int8-{part}-{'channel' if per_channel else 'tensor'}.onnx"
            quantize_graph(folder / ONNX_FILE, folder / name, part, per_channel)
            names.append(name)
    return names


def measure(model: KnowFreeModel, contenders: dict, texts: list[str], gold: list[list[dict]], batch_size: int) -> dict:
    for contender in contenders.values():  # warm-up: allocator arenas, first-call setup
        contender.predict(texts[:8], batch_size=batch_size)
    seconds = dict.fromkeys(contenders, 0.0)
    found: dict[str, list] = {name: [] for name in contenders}
    names = list(contenders)
    for index, start in enumerate(range(0, len(texts), CHUNK)):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            started = time.thread_time()
            found[name].extend(contenders[name].predict(texts[start : start + CHUNK], batch_size=batch_size))
            seconds[name] += time.thread_time() - started
    return {
        name: {
            "f1": score_spans(found[name], gold)["f1"],
            "cpu_s": seconds[name],
            "throughput_vs_onnx_fp32": seconds[ONNX_FILE] / seconds[name],
            "throughput_vs_pytorch": seconds["pytorch"] / seconds[name],
            "texts_with_other_spans_than_pytorch": sum(a != b for a, b in zip(span_keys(found[name]), span_keys(found["pytorch"]))),
            "max_logit_difference_16_texts": None if name == "pytorch" else max_logit_difference(model, contenders[name], texts[:16], batch_size),
        }
        for name in contenders
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a trained KnowFREE model folder")
    parser.add_argument("--data", required=True, help="the data set whose test split is scored")
    parser.add_argument("--texts", type=int, help="only the first N test texts")
    parser.add_argument("--batch-size", type=int, default=32)
    options = parser.parse_args(argv)
    torch.set_num_threads(1)
    test = load_corpus(options.data, splits=("test",)).splits["test"][: options.texts]
    model = KnowFreeModel.from_pretrained(options.model).eval()
    session_options = onnxruntime.SessionOptions()
    session_options.intra_op_num_threads = session_options.inter_op_num_threads = 1
    with tempfile.TemporaryDirectory(prefix="knowfree-int8-") as folder:
        export_onnx(model, folder)
        files = [ONNX_FILE] + int8_variants(Path(folder))
        contenders = {"pytorch": model}
        for name in files:
            contenders[name] = KnowFreeOnnxModel.from_pretrained(folder, name, session_options=session_options, processor=model.processor)
        rows = measure(model, contenders, test["text"], test["entities"], options.batch_size)
    for name, row in rows.items():
        print(f"{name:28s} F1 {row['f1']:.4f}  cpu {row['cpu_s']:7.1f} s  x onnx fp32 {row['throughput_vs_onnx_fp32']:.2f}  x pytorch {row['throughput_vs_pytorch']:.2f}", file=sys.stderr)
    report = {"model": options.model, "data": options.data, "texts": len(test["text"]), "batch_size": options.batch_size, "rows": rows}
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
