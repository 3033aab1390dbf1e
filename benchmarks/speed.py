"""Training step time, inference throughput and peak memory of KnowFREE against the token baseline.

Both models are built exactly as `train.py` builds them (`build_knowfree`, `build_baseline`,
`optimizer_groups`, `--freeze_embeddings`, `max_span_width` = longest training span + 8, at most 32) on the same
encoder, and measured side by side in this process on the same inputs:

- training step: forward + backward + gradient clipping + AdamW step on the same batches of training
  rows (Weibo and cmeee, K rows each), each model with its own collator; collation is timed apart.
  Warm-up steps are excluded; the median of the timed steps is reported;
- inference: `KnowFreeModel.predict` and `predict_token_spans` end to end (windows, collation, encoder,
  head, decoding) on the Weibo test texts (typical lengths) and on the longest cmeee test sentences
  (long lengths, read in windows), in sentences per second, median of the repeats; the longest cmeee
  sentence alone, in seconds; single long documents (Weibo test texts joined: 2,000 to 100,000
  characters), in seconds per 10,000 characters, to show that the time per character does not grow
  with the length. Forward hooks on each model's encoder split the time into encoder and
  the rest (span head or token classifier, collation, decoding). On the Weibo test, the same KnowFREE
  model exported by `export_onnx` runs in ONNX Runtime too (`KnowFreeOnnxModel.predict`, --threads
  intra-op threads; with --int8 its int8 graph as well, int8 in the part --onnx-int8 names),
  alternating with the other two, and its spans and logits are compared with PyTorch's;
- peak memory: every (model, workload) runs once in a fresh spawned process that builds only that
  model, pays one-time costs with a warm-up (a short prediction, or a first training step that also
  creates the optimizer state), then measures: the peak resident set during the workload (VmHWM of
  /proc/self/status, reset just before it, as in `bench_span_head.py`), which includes the weights,
  and its increment over the resident set just before.

Timings on a shared machine drift, so the two models alternate (A B, then B A, ...) and only ratios
(KnowFREE / baseline) are headline figures. Run from the repository root:

    python benchmarks/speed.py                 # full run, table on stdout
    python benchmarks/speed.py --write         # + update benchmarks/RESULTS.md and results.json
    python benchmarks/speed.py --smoke         # a quick run with few sentences and steps
"""

import argparse
import functools
import gc
import importlib.util
import json
import multiprocessing
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(__file__).resolve().parent
for folder in (REPO_ROOT, BENCHMARKS):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from knowfree import training as train  # noqa: E402
from bench_span_head import reset_peak_resident, resident_bytes  # noqa: E402
from machine_facts import cpu_model  # noqa: E402
from results_file import update_results  # noqa: E402
from knowfree.collate import SpanCollator  # noqa: E402
from knowfree.data import LabeledCorpus  # noqa: E402
from knowfree.evaluation import score_spans  # noqa: E402
from knowfree.token_baseline import TokenClassificationCollator, build_token_classifier, predict_token_spans  # noqa: E402
from modeling_knowfree import KnowFreeModel  # noqa: E402
from onnx_knowfree import ONNX_FILE, QUANTIZED_FILE, QUANTIZED_PARTS, KnowFreeOnnxModel, max_logit_difference  # noqa: E402

GB = 1e9
BLOCK_START = "<!-- speed:start -->"
BLOCK_END = "<!-- speed:end -->"
KNOWFREE, BASELINE = "knowfree", "baseline"
ONNX, ONNX_INT8 = "onnx", "onnx_int8"
CORPORA = ("weibo", "cmeee")
MODEL_CHOICE = {KNOWFREE: "knowfree", BASELINE: "token-classification"}

TARGET_PREDICT_RATIO = 0.8
TARGET_TRAIN_RATIO = 1.5
TARGET_PEAK_GB = 4.0
TARGET_NON_ENCODER_SHARE = 0.25
TARGET_LONGEST_TIME_RATIO = 2.0  # KnowFREE / baseline time on the longest cmeee test sentence
TARGET_LONG_DOCUMENT_GROWTH = 1.2  # seconds per character at the longest document over the shortest
LONG_DOCUMENT_LENGTHS = (2_000, 10_000, 50_000, 100_000)
PER_CHARACTERS = 10_000  # long documents are reported in seconds per this many characters


# ---------------------------------------------------------------------------------------------------
# The two models
# ---------------------------------------------------------------------------------------------------


@dataclass
class Contender:
    """One model with what it needs to train and predict, built as train.py builds it."""

    name: str
    model: torch.nn.Module
    collator: Callable
    optimizer: torch.optim.Optimizer
    encoder: torch.nn.Module
    predict: Callable[[list[str]], list[list[dict]]]


@dataclass
class OnnxContender:
    """KnowFREE exported to ONNX Runtime, for prediction only. Its encoder runs inside the session,
    where no hook reaches it, so `encoder` is None and its time is not split."""

    name: str
    model: KnowFreeOnnxModel
    predict: Callable[[list[str]], list[list[dict]]]
    encoder: None = None


def training_arguments(data: Path, name: str, options: argparse.Namespace) -> argparse.Namespace:
    """train.py's own argument parsing, so every default (span width margin, decoding, weights) is its."""
    argv = [
        "--data", str(data), "--model", MODEL_CHOICE[name], "--encoder", str(options.encoder), "--output_dir", "unused",
        "--batch_size", str(options.batch_size), "--eval_batch_size", str(options.eval_batch_size),
    ]
    if options.k:
        argv += ["--k", str(options.k)]
    if options.freeze_embeddings:
        argv.append("--freeze_embeddings")
    if name == KNOWFREE and options.config_overrides:
        argv += ["--config_overrides", options.config_overrides]
    args = train.parse_args(argv)
    defaults = train.TASK_DEFAULTS[args.task]
    args.synthetic_weight = defaults["synthetic_weight"] if args.synthetic_weight is None else args.synthetic_weight
    args.weight_decay = defaults["weight_decay"] if args.weight_decay is None else args.weight_decay
    return args


def build_contender(name: str, data: Path, options: argparse.Namespace, trained: str | None = None) -> tuple[LabeledCorpus, Contender]:
    """A fresh model on the encoder as train.py builds it, or one trained earlier (`trained` folder)."""
    args = training_arguments(data, name, options)
    corpus = train.load_training_corpus(args)
    torch.manual_seed(options.seed)
    if name == KNOWFREE:
        if trained:
            model = KnowFreeModel.from_pretrained(trained)
            collator = SpanCollator(model.tokenizer, model.config, skip_wider_spans=True)
        else:
            model, _, collator, _ = train.build_knowfree(args, corpus)
        encoder = model.encoder

        def predict(texts: list[str]) -> list[list[dict]]:
            return model.predict(texts, batch_size=options.eval_batch_size)

    else:
        if trained:
            model, tokenizer = build_token_classifier(trained, list(corpus.labels))
            collator = TokenClassificationCollator(tokenizer, list(corpus.labels))
        else:
            model, tokenizer, collator, _ = train.build_baseline(args, corpus)
        encoder = model.base_model

        def predict(texts: list[str]) -> list[list[dict]]:
            return predict_token_spans(model, tokenizer, texts, batch_size=options.eval_batch_size)

    if args.freeze_embeddings:
        encoder.get_input_embeddings().weight.requires_grad_(False)
    optimizer = torch.optim.AdamW(train.optimizer_groups(model, args, args.weight_decay))
    return corpus, Contender(name, model, collator, optimizer, encoder, predict)


def trained_folder(name: str, corpus_name: str, options: argparse.Namespace) -> str | None:
    """The trained model given on the command line for this model and corpus (None: a fresh one). cmeee
    has no trained baseline: BIO cannot hold its nested spans, so the accuracy grid trains none."""
    if corpus_name == "weibo":
        return options.knowfree_model if name == KNOWFREE else options.baseline_model
    return options.cmeee_knowfree_model if name == KNOWFREE else None


# ---------------------------------------------------------------------------------------------------
# Measurements in this process
# ---------------------------------------------------------------------------------------------------


def training_batches(corpus: LabeledCorpus, options: argparse.Namespace) -> list[list[int]]:
    """Train-row indices of the warm-up and timed steps: train.py's first-epoch order, cycled if too short."""
    order = train.epoch_order(len(corpus.splits["train"]), options.seed, 0)
    return [
        [order[(step * options.batch_size + offset) % len(order)] for offset in range(options.batch_size)]
        for step in range(options.warmup_steps + options.train_steps)
    ]


def train_step(contender: Contender, batch: dict[str, torch.Tensor], max_grad_norm: float = 1.0) -> float:
    """Seconds of one optimizer step as train.py takes it: forward, backward, clipping, AdamW, zero_grad."""
    started = time.perf_counter()
    loss = contender.model(**batch).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(contender.model.parameters(), max_grad_norm)
    contender.optimizer.step()
    contender.optimizer.zero_grad()
    return time.perf_counter() - started


def alternate(contenders: list[Contender], round_index: int) -> list[Contender]:
    """A B in even rounds, B A in odd ones, so drift and cache effects fall on both."""
    return contenders if round_index % 2 == 0 else contenders[::-1]


def measure_training(contenders: list[Contender], rows: list[list[dict]], options: argparse.Namespace) -> dict:
    """Median step seconds (and mean collation seconds) per model on the same row batches."""
    batches, collate_seconds = {}, {}
    for contender in contenders:
        started = time.perf_counter()
        batches[contender.name] = [contender.collator(batch_rows) for batch_rows in rows]
        collate_seconds[contender.name] = (time.perf_counter() - started) / len(rows)
    steps: dict[str, list[float]] = {contender.name: [] for contender in contenders}
    for contender in contenders:
        contender.model.train()
    for step in range(len(rows)):
        for contender in alternate(contenders, step):
            seconds = train_step(contender, batches[contender.name][step])
            if step >= options.warmup_steps:
                steps[contender.name].append(seconds)
    characters = [sum(len(row["text"]) for row in batch_rows) for batch_rows in rows[options.warmup_steps :]]
    result = {
        "steps": options.train_steps,
        "warmup_steps": options.warmup_steps,
        "batch_size": options.batch_size,
        "mean_characters_per_batch": statistics.mean(characters),
    }
    for contender in contenders:
        result[f"{contender.name}_step_s"] = statistics.median(steps[contender.name])
        result[f"{contender.name}_step_s_all"] = steps[contender.name]
        result[f"{contender.name}_collate_s"] = collate_seconds[contender.name]
    result["ratio"] = result[f"{KNOWFREE}_step_s"] / result[f"{BASELINE}_step_s"]
    return result


class EncoderClock:
    """Seconds spent inside a module's forward, through a pre-hook and a hook."""

    def __init__(self, module: torch.nn.Module):
        self.seconds = 0.0
        self._started = 0.0
        self._handles = [module.register_forward_pre_hook(self._start), module.register_forward_hook(self._stop)]

    def _start(self, *_):
        self._started = time.perf_counter()

    def _stop(self, *_):
        self.seconds += time.perf_counter() - self._started

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def timed_predict(contender: Contender | OnnxContender, texts: list[str]) -> tuple[float, float | None, list[list[dict]]]:
    """Seconds of one `predict` over `texts`, seconds of it inside the encoder (None without an encoder
    module to hook), and the predictions."""
    clock = None if contender.encoder is None else EncoderClock(contender.encoder)
    try:
        started = time.perf_counter()
        predictions = contender.predict(texts)
        seconds = time.perf_counter() - started
    finally:
        if clock is not None:
            clock.remove()
    return seconds, None if clock is None else clock.seconds, predictions


def measure_prediction(contenders: list[Contender | OnnxContender], texts: list[str], repeats: int, gold: list[list[dict]] | None = None) -> dict:
    """Sentences per second of each model's end-to-end predict (median over repeats), with the split
    of its time between the encoder and the rest (None for ONNX Runtime), and, with `gold`, the F1
    of the predictions timed, so that no speed figure stands without the accuracy it came with.
    "ratio" is KnowFREE's throughput over the baseline's.

    One untimed pass over the same texts per model first: the first pass also pays for one-time costs
    (thread pools, and the allocator's heap growing to the sizes of the batch temporaries: until it
    has, large temporaries come from fresh pages whose faults cost more than the arithmetic in this VM),
    so the figures are steady-state throughput."""
    for contender in contenders:
        contender.predict(texts)
    runs: dict[str, list[tuple[float, float | None, list[list[dict]]]]] = {contender.name: [] for contender in contenders}
    for round_index in range(repeats):
        for contender in alternate(contenders, round_index):
            runs[contender.name].append(timed_predict(contender, texts))
    result = {"sentences": len(texts), "characters": sum(map(len, texts)), "longest_characters": max(map(len, texts)), "repeats": repeats}
    for name, measured in runs.items():
        seconds = statistics.median(run[0] for run in measured)
        median_run = min(measured, key=lambda run: abs(run[0] - seconds))
        result[f"{name}_s"] = seconds
        result[f"{name}_s_all"] = [run[0] for run in measured]
        result[f"{name}_sentences_per_s"] = len(texts) / seconds
        result[f"{name}_encoder_s"] = median_run[1]
        result[f"{name}_non_encoder_per_encoder"] = None if median_run[1] is None else (median_run[0] - median_run[1]) / median_run[1]
        result[f"{name}_spans"] = sum(map(len, median_run[2]))
        result[f"{name}_f1"] = None if gold is None else score_spans(median_run[2], gold)["f1"]
    result["ratio"] = result[f"{KNOWFREE}_sentences_per_s"] / result[f"{BASELINE}_sentences_per_s"]
    return result


def quantized_encoder_copy(contender: Contender, batch_size: int) -> Contender:
    """A copy of the KnowFREE model whose encoder Linear layers are dynamically quantized to int8
    (weights int8 per output channel, activations quantized on the fly); for prediction only.
    Per-channel weights lose less F1 than per-tensor ones on the quickstart model (0.363 vs 0.305,
    fp32 0.470)."""
    import copy
    import warnings

    model = copy.deepcopy(contender.model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        per_channel = torch.ao.quantization.per_channel_dynamic_qconfig
        model.encoder = torch.ao.quantization.quantize_dynamic(model.encoder, {torch.nn.Linear: per_channel}, dtype=torch.qint8)

    def predict(texts: list[str]) -> list[list[dict]]:
        return model.predict(texts, batch_size=batch_size)

    return Contender(contender.name, model, contender.collator, contender.optimizer, model.encoder, predict)


def onnx_contenders(knowfree: Contender, directory: Path, options: argparse.Namespace) -> list[OnnxContender]:
    """The graphs of an `export_onnx` folder (`model.onnx`, and with --int8 `model_quantized.onnx`) in
    ONNX Runtime sessions of --threads intra-op threads, predicting with --eval-batch-size as the
    PyTorch contenders do, through the KnowFREE contender's own processor."""
    import onnxruntime

    session_options = onnxruntime.SessionOptions()
    session_options.intra_op_num_threads = options.threads
    files = {ONNX: ONNX_FILE, **({ONNX_INT8: QUANTIZED_FILE} if options.int8 else {})}
    contenders = []
    for name, file_name in files.items():
        model = KnowFreeOnnxModel.from_pretrained(directory, file_name, session_options=session_options, processor=knowfree.model.processor)
        contenders.append(OnnxContender(name, model, functools.partial(model.predict, batch_size=options.eval_batch_size)))
    return contenders


def span_keys(predictions: list[list[dict]]) -> list[list[tuple[int, int, str]]]:
    """(start, end, label) of every predicted span, text by text."""
    return [[(span["start"], span["end"], span["label"]) for span in spans] for spans in predictions]


def onnx_figures(measured: dict, knowfree: Contender, onnx_models: list[OnnxContender], texts: list[str], batch_size: int) -> dict:
    """Each ONNX graph against PyTorch: throughput over PyTorch KnowFREE's and the baseline's (from
    `measured`, the alternating run they shared, with its F1 when that run had gold), texts whose
    spans differ from PyTorch predict's, and the largest score difference over equal spans and logit
    difference over span cells."""
    expected = knowfree.predict(texts)
    figures = {"knowfree_f1": measured[f"{KNOWFREE}_f1"]}
    for onnx in onnx_models:
        found = onnx.predict(texts)
        equal = [a == b for a, b in zip(span_keys(expected), span_keys(found))]
        scores = [abs(a["score"] - b["score"]) for same, row_a, row_b in zip(equal, expected, found) if same for a, b in zip(row_a, row_b)]
        figures[onnx.name] = {
            "sentences_per_s": measured[f"{onnx.name}_sentences_per_s"],
            "per_knowfree": measured[f"{onnx.name}_sentences_per_s"] / measured[f"{KNOWFREE}_sentences_per_s"],
            "per_baseline": measured[f"{onnx.name}_sentences_per_s"] / measured[f"{BASELINE}_sentences_per_s"],
            "spans_equal": all(equal),
            "texts_with_different_spans": equal.count(False),
            "max_score_difference": max(scores, default=0.0),
            "max_logit_difference": max_logit_difference(knowfree.model, onnx.model, texts, batch_size),
            "f1": measured[f"{onnx.name}_f1"],
        }
    return figures


def long_document(texts: list[str], characters: int, spans: list[list[dict]] | None = None) -> tuple[str, list[dict]]:
    """One document of exactly `characters` characters: `texts` joined end to end, cycled as often as
    needed, with the `spans` of each text (their gold, say) moved to its place in the document; a span
    the cut at `characters` passes through is left out."""
    if not any(texts):
        raise ValueError("long_document needs at least one non-empty text")
    spans = spans or [[] for _ in texts]
    pieces, moved, length = [], [], 0
    while length < characters:
        for text, text_spans in zip(texts, spans):
            moved.extend({**span, "start": span["start"] + length, "end": span["end"] + length} for span in text_spans if length + span["end"] <= characters)
            pieces.append(text)
            length += len(text)
            if length >= characters:
                break
    return "".join(pieces)[:characters], moved


def measure_long_documents(contenders: list[Contender], texts: list[str], lengths: list[int], repeats: int, gold: list[list[dict]] | None = None) -> dict:
    """Each model predicting one document of each length (`texts` joined), alternating, median of the
    repeats, in seconds per `PER_CHARACTERS` characters, and, with `gold` (the texts' spans), its F1 on
    the document; `growth` is the time figure at the longest document over the shortest, 1.0 when
    prediction time grows linearly with the length (windows, batching and decoding add nothing per
    character as documents get longer)."""
    result: dict = {"source": f"{len(texts)} Weibo test texts joined end to end, cycled", "repeats": repeats, "lengths": {}}
    for characters in sorted(lengths):
        document, document_gold = long_document(texts, characters, gold)
        runs: dict[str, list[tuple[float, float | None, list[list[dict]]]]] = {contender.name: [] for contender in contenders}
        for round_index in range(repeats):
            for contender in alternate(contenders, round_index):
                runs[contender.name].append(timed_predict(contender, [document]))
        figures: dict = {"characters": characters}
        for name, measured in runs.items():
            seconds = statistics.median(run[0] for run in measured)
            figures[f"{name}_s"] = seconds
            figures[f"{name}_s_per_{PER_CHARACTERS}"] = seconds * PER_CHARACTERS / characters
            figures[f"{name}_spans"] = len(measured[0][2][0])
            figures[f"{name}_f1"] = None if gold is None else score_spans(measured[0][2], [document_gold])["f1"]
        figures["ratio"] = _ratio(figures[f"{KNOWFREE}_s"], figures[f"{BASELINE}_s"])
        result["lengths"][str(characters)] = figures
    shortest, longest = (result["lengths"][str(length)] for length in (min(lengths), max(lengths)))
    key = f"s_per_{PER_CHARACTERS}"
    result["growth"] = {contender.name: longest[f"{contender.name}_{key}"] / shortest[f"{contender.name}_{key}"] for contender in contenders}
    return result


# ---------------------------------------------------------------------------------------------------
# Peak memory in fresh processes
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryJob:
    """One (model, workload) whose peak resident set a fresh process measures."""

    model: str
    corpus: str
    workload: str  # "predict" or "train"
    texts: tuple[str, ...] = ()
    train_rows: tuple[int, ...] = ()


def peak_memory_in_fresh_process(job: MemoryJob, options: argparse.Namespace) -> dict:
    """Body of the spawned process: build the one model, warm up, then measure the workload."""
    torch.set_num_threads(options.threads)
    data = Path(options.data_dir) / job.corpus
    corpus, contender = build_contender(job.model, data, options, trained_folder(job.model, job.corpus, options))
    if job.workload == "predict":
        contender.predict(["预热一下。"] * 2)
        run = lambda: contender.predict(list(job.texts))  # noqa: E731
    else:
        rows = corpus.splits["train"]
        batch = contender.collator([rows[index] for index in job.train_rows])
        contender.model.train()
        train_step(contender, batch)
        run = lambda: train_step(contender, batch)  # noqa: E731
    gc.collect()
    before = resident_bytes("VmRSS")
    reset_peak_resident()
    run()
    peak = resident_bytes("VmHWM")
    return {"rss_before_gb": before / GB, "peak_gb": peak / GB, "increment_gb": (peak - before) / GB}


def measure_peak(job: MemoryJob, options: argparse.Namespace) -> dict:
    """Run one memory job in a new interpreter, so no other allocation shares its heap."""
    print(f"  peak memory: {job.model} {job.corpus} {job.workload} (fresh process)", file=sys.stderr, flush=True)
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(peak_memory_in_fresh_process, job, options).result()
    except BrokenProcessPool:
        return {"rss_before_gb": None, "peak_gb": None, "increment_gb": None, "error": "the measuring process died (out of memory?)"}


# ---------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------


def machine_description(threads: int) -> dict:
    """CPU model, cores, memory and library versions of the machine the figures come from."""
    memory_gb = None
    try:
        with open("/proc/meminfo") as meminfo:
            memory_gb = round(int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1]) * 1024 / GB, 1)
    except (OSError, StopIteration):
        pass
    import transformers

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "torch_threads": threads,
        "device": "cpu",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
    }


def _number(value: float | None, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def _rate(value: float) -> str:
    """Sentences per second with two significant decimals below 10."""
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def trained_models(speed: dict, corpus: str) -> tuple[bool, bool]:
    """Whether KnowFREE's and the baseline's rows of `corpus` come from trained models (else fresh ones)."""
    settings = speed["settings"]
    if corpus == "weibo":
        return bool(settings.get("knowfree_model")), bool(settings.get("baseline_model"))
    return bool(settings.get("cmeee_knowfree_model")), False


def f1_cell(figures: dict, trained: tuple[bool, bool], names: tuple[str, str] = (KNOWFREE, BASELINE)) -> str:
    """The F1 column: each model's F1 on the texts it was timed on; a fresh model's is marked, since its
    F1 says only that its speed was not bought with accuracy it never had."""
    def one(name: str, is_trained: bool) -> str:
        value = figures.get(f"{name}_f1")
        return "—" if value is None else f"{value:.3f}{'' if is_trained else ' (fresh)'}"

    return f"{one(names[0], trained[0])} / {one(names[1], trained[1])}"


def format_table(speed: dict) -> str:
    """The markdown table: one line per measurement, KnowFREE, baseline, ratio, the F1 the timed
    predictions scored (prediction rows) and target."""
    lines = [
        "| measurement | KnowFREE | baseline | KnowFREE / baseline | test F1, KnowFREE / baseline | target |",
        "|---|---:|---:|---:|---|---|",
    ]
    for corpus, training in speed["train_step"].items():
        lines.append(
            f"| train step, {corpus} K={speed['settings']['k']}, batch {training['batch_size']} "
            f"({training['mean_characters_per_batch']:.0f} chars), s (median of {training['steps']}) "
            f"| {training[f'{KNOWFREE}_step_s']:.3f} | {training[f'{BASELINE}_step_s']:.3f} | {training['ratio']:.2f} | "
            f"| {'<= %.1f' % TARGET_TRAIN_RATIO if corpus == 'weibo' else ''} |"
        )
    for key, prediction in speed["predict"].items():
        label = PREDICT_LABELS.get(key, key)
        f1 = f1_cell(prediction, trained_models(speed, key.split("_")[0]))
        if key == "cmeee_longest_sentence":
            lines.append(
                f"| {label} ({prediction['characters']:,} chars), s | {prediction[f'{KNOWFREE}_s']:.2f} "
                f"| {prediction[f'{BASELINE}_s']:.2f} | {_number(speed.get('longest_cmeee_time_ratio'), '.2f')} (time) | {f1} | <= {TARGET_LONGEST_TIME_RATIO:g} |"
            )
            continue
        target = f">= {TARGET_PREDICT_RATIO}" if key == "weibo_test" else ""
        lines.append(
            f"| {label} ({prediction['sentences']} sentence{'s' if prediction['sentences'] > 1 else ''}, up to "
            f"{prediction['longest_characters']:,} chars), sentences/s "
            f"| {_rate(prediction[f'{KNOWFREE}_sentences_per_s'])} | {_rate(prediction[f'{BASELINE}_sentences_per_s'])} "
            f"| {prediction['ratio']:.2f} | {f1} | {target} |"
        )
        lines.append(
            f"| &nbsp;&nbsp;non-encoder time / encoder time | {prediction[f'{KNOWFREE}_non_encoder_per_encoder']:.2f} "
            f"| {prediction[f'{BASELINE}_non_encoder_per_encoder']:.2f} | | | "
            f"{'<= %.2f (KnowFREE)' % TARGET_NON_ENCODER_SHARE if key == 'weibo_test' else ''} |"
        )
        if key == "weibo_test":
            lines.extend(onnx_rows(speed))
            lines.extend(long_document_rows(speed))
    if "int8" in speed:
        int8 = speed["int8"]
        lines.append(
            f"| predict Weibo test, KnowFREE with int8 encoder (dynamic, per-channel), sentences/s "
            f"| {_rate(int8['int8_sentences_per_s'])} | {_rate(int8[f'{BASELINE}_sentences_per_s'])} | {int8['ratio']:.2f} "
            f"| {f1_cell(int8, trained_models(speed, 'weibo'), ('int8', BASELINE))} | optional; fp32 KnowFREE's F1 in the first Weibo row |"
        )
    for key, memory in speed["peak_memory"].items():
        knowfree, baseline = memory[KNOWFREE], memory[BASELINE]
        target = f"< {TARGET_PEAK_GB:g} GB" if key == "predict_cmeee_longest_sentence" else ""
        lines.append(
            f"| peak memory, {MEMORY_LABELS.get(key, key)}, GB (+ increment) "
            f"| {_number(knowfree['peak_gb'], '.2f')} (+{_number(knowfree['increment_gb'], '.2f')}) "
            f"| {_number(baseline['peak_gb'], '.2f')} (+{_number(baseline['increment_gb'], '.2f')}) "
            f"| {_number(_ratio(knowfree['peak_gb'], baseline['peak_gb']), '.2f')} | | {target} |"
        )
    return "\n".join(lines)


def long_document_rows(speed: dict) -> list[str]:
    """Table rows of the long documents: seconds per 10,000 characters of each model per length, and
    how much that figure grows from the shortest document to the longest."""
    documents = speed.get("long_documents")
    if not documents:
        return []
    key = f"s_per_{PER_CHARACTERS}"
    rows = [
        f"| predict one document of {int(length):,} chars (Weibo test texts joined), s per {PER_CHARACTERS:,} chars "
        f"| {figures[f'{KNOWFREE}_{key}']:.2f} | {figures[f'{BASELINE}_{key}']:.2f} | {_number(figures['ratio'], '.2f')} (time) "
        f"| {f1_cell(figures, trained_models(speed, 'weibo'))} | |"
        for length, figures in documents["lengths"].items()
    ]
    lengths = [int(length) for length in documents["lengths"]]
    growth = documents["growth"]
    rows.append(
        f"| &nbsp;&nbsp;s per {PER_CHARACTERS:,} chars at {max(lengths):,} chars / at {min(lengths):,} chars "
        f"| {growth[KNOWFREE]:.2f} | {growth[BASELINE]:.2f} | | | <= {TARGET_LONG_DOCUMENT_GROWTH} |"
    )
    return rows


def onnx_rows(speed: dict) -> list[str]:
    """Table rows of the ONNX Runtime graphs: throughput against the baseline's in the same alternating
    run, against PyTorch KnowFREE's, agreement with PyTorch predict and, with a trained model, test F1."""
    onnx = speed.get("onnx") or {}
    baseline = speed["predict"]["weibo_test"][f"{BASELINE}_sentences_per_s"]
    rows = []
    for name, weights, target in ((ONNX, "fp32", f">= {TARGET_PREDICT_RATIO}"), (ONNX_INT8, "int8 weights", "optional")):
        if name not in onnx:
            continue
        figures = onnx[name]
        notes = [
            target,
            f"{figures['per_knowfree']:.2f}x PyTorch KnowFREE",
            "spans equal to PyTorch's" if figures["spans_equal"] else f"spans differ from PyTorch's in {figures['texts_with_different_spans']} texts",
            f"max logit difference {figures['max_logit_difference']:.1e}",
        ]
        if figures["f1"] is not None:
            notes.append(f"test F1 {onnx['knowfree_f1']:.4f} (PyTorch) -> {figures['f1']:.4f}")
        threads = onnx["intra_op_threads"]
        f1 = f1_cell({f"{KNOWFREE}_f1": figures["f1"], f"{BASELINE}_f1": speed["predict"]["weibo_test"].get(f"{BASELINE}_f1")}, trained_models(speed, "weibo"))
        rows.append(
            f"| &nbsp;&nbsp;KnowFREE on ONNX Runtime ({weights}, {threads} thread{'s' if threads > 1 else ''}), sentences/s "
            f"| {_rate(figures['sentences_per_s'])} | {_rate(baseline)} | {figures['per_baseline']:.2f} | {f1} | {'; '.join(notes)} |"
        )
    return rows


PREDICT_LABELS = {
    "weibo_test": "predict, Weibo test",
    "cmeee_longest": "predict, cmeee test longest sentences",
    "cmeee_longest_sentence": "predict, the longest cmeee test sentence alone",
}
MEMORY_LABELS = {
    "predict_weibo_test": "predict Weibo test",
    "predict_cmeee_longest_sentence": "predict the longest cmeee sentence",
    "train_weibo": "train step Weibo",
    "train_cmeee": "train step cmeee",
}


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def target_lines(speed: dict) -> list[str]:
    """Whether each target of the issue is met, with its number."""
    def verdict(met: bool | None) -> str:
        return "NOT MEASURED" if met is None else ("MET" if met else "MISSED")

    predict, trained, peak = speed["predict_throughput_ratio"], speed["train_step_ratio"], speed["longest_cmeee_peak_mem_gb"]
    share = speed["predict"].get("weibo_test", {}).get(f"{KNOWFREE}_non_encoder_per_encoder")
    onnx, longest_time = speed.get("onnx_predict_throughput_ratio"), speed.get("longest_cmeee_time_ratio")
    onnx_per_knowfree = (speed.get("onnx") or {}).get(ONNX, {}).get("per_knowfree")
    return [
        f"inference throughput on the Weibo test >= {TARGET_PREDICT_RATIO}x the baseline's: "
        f"{verdict(None if predict is None else predict >= TARGET_PREDICT_RATIO)} ({_number(predict, '.2f')}x; "
        f"KnowFREE's non-encoder time is {_number(share, '.2f')} of its encoder time)",
        f"training step <= {TARGET_TRAIN_RATIO}x the baseline's (Weibo): "
        f"{verdict(None if trained is None else trained <= TARGET_TRAIN_RATIO)} ({_number(trained, '.2f')}x)",
        f"peak memory on the longest cmeee sentence < {TARGET_PEAK_GB:g} GB: "
        f"{verdict(None if peak is None else peak < TARGET_PEAK_GB)} ({_number(peak, '.2f')} GB; "
        f"its predict takes {_number(longest_time, '.2f')}x the baseline's time)",
        f"with KnowFREE on ONNX Runtime (a goal of ours: the issue asks for the figure), inference throughput on the Weibo test >= {TARGET_PREDICT_RATIO}x the baseline's: "
        f"{verdict(None if onnx is None else onnx >= TARGET_PREDICT_RATIO)} ({_number(onnx, '.2f')}x; "
        f"{_number(onnx_per_knowfree, '.2f')}x PyTorch KnowFREE's)",
        long_document_target(speed.get("long_documents")),
        f"the longest cmeee test sentence in at most {TARGET_LONGEST_TIME_RATIO:g}x the baseline's time: "
        f"{verdict(None if longest_time is None else longest_time <= TARGET_LONGEST_TIME_RATIO)} ({_number(longest_time, '.2f')}x; "
        f"KnowFREE max_span_width {speed.get('max_span_width', {}).get('cmeee', '-')})",
    ]


def long_document_target(documents: dict | None) -> str:
    """Whether KnowFREE's prediction time per character stays constant as documents get longer."""
    if not documents:
        return f"prediction time per character constant as documents grow (at most {TARGET_LONG_DOCUMENT_GROWTH}x): NOT MEASURED"
    lengths = sorted(int(length) for length in documents["lengths"])
    growth = documents["growth"][KNOWFREE]
    per = ", ".join(f"{documents['lengths'][str(length)][f'{KNOWFREE}_s_per_{PER_CHARACTERS}']:.2f} s at {length:,}" for length in lengths)
    return (
        f"prediction time per character constant from {lengths[0]:,} to {lengths[-1]:,} characters (KnowFREE's seconds per "
        f"{PER_CHARACTERS:,} characters at most {TARGET_LONG_DOCUMENT_GROWTH}x as high at the longest document as at the shortest): "
        f"{'MET' if growth <= TARGET_LONG_DOCUMENT_GROWTH else 'MISSED'} ({growth:.2f}x; {per})"
    )


def markdown_block(speed: dict) -> str:
    """The RESULTS.md section, between the speed markers."""
    settings, machine = speed["settings"], speed["machine"]
    description = (
        f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB RAM, torch {machine['torch']} "
        f"with {machine['torch_threads']} threads, transformers {machine['transformers']}"
    )
    models = "fresh models built as train.py builds them"
    if settings.get("config_overrides"):
        models += f" (KnowFREE with {settings['config_overrides']})"
    if settings.get("knowfree_model") or settings.get("baseline_model") or settings.get("cmeee_knowfree_model"):
        models = (
            f"Weibo: KnowFREE {settings.get('knowfree_model') or 'fresh'} and the baseline {settings.get('baseline_model') or 'fresh'}; "
            f"cmeee: KnowFREE {settings.get('cmeee_knowfree_model') or 'fresh'} and a fresh baseline (BIO cannot hold cmeee's nested spans); "
            f"the fresh ones {models.removeprefix('fresh models ')}"
        )
    lines = [
        BLOCK_START,
        "## Speed and memory: KnowFREE vs the token-classification baseline",
        "",
        f"Measured {speed['date']} on {description}; 1-minute load average {speed['load_average'][0]:.2f} at start, "
        f"{speed['load_average'][1]:.2f} at end (a 1-minute average: it counts this run's own threads and lags behind by about a minute). Command:",
        "",
        f"    {speed['command']}",
        "",
        f"Both models on `{settings['encoder']}` ({models}), measured alternately in one process; training "
        f"batches of {settings['batch_size']} sentences ({'embeddings frozen' if settings['freeze_embeddings'] else 'embeddings trained'}, "
        f"train.py's optimizer groups, gradient clipping), prediction batches of {settings['eval_batch_size']} "
        f"windows; KnowFREE max_span_width {speed['max_span_width']}. Peak memory: resident set of a fresh process "
        "during the workload, weights included (in brackets: above the resident set just before it).",
        "",
        format_table(speed),
        "",
        "Targets:",
        "",
        *[f"- {line}" for line in target_lines(speed)],
        BLOCK_END,
    ]
    return "\n".join(lines)


def write_results(markdown_path: Path, json_path: Path, speed: dict) -> None:
    """Replace (or append) the speed block of RESULTS.md and set only the "speed" key of results.json."""
    update_results(markdown_path, json_path, "speed", speed, markdown_block(speed), BLOCK_START, BLOCK_END)


# ---------------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Training step time, inference throughput (end-to-end predict, sentences/s) and peak memory "
            "of KnowFREE vs the token-classification baseline on the same encoder and batches, side by side "
            "in one process; Weibo test (typical lengths), single documents of up to 100,000 characters, and the longest cmeee test sentences (windowed)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--encoder", default=str(REPO_ROOT / "encoders" / "multilingual-e5-small"), help="encoder folder (build it with knowfree-build-encoder)")
    parser.add_argument("--data-dir", default=str(REPO_ROOT.parent / "shared" / "data"), help="folder holding weibo/ and cmeee/")
    parser.add_argument("--k", type=int, default=250, help="training subset (train_K.jsonl) the models are built from and trained on")
    parser.add_argument("--batch-size", type=int, default=8, help="training sentences per step (train.py --batch_size)")
    parser.add_argument("--eval-batch-size", type=int, default=32, help="prediction batch size (train.py --eval_batch_size)")
    parser.add_argument("--train-steps", type=int, default=10, help="timed training steps per model and corpus")
    parser.add_argument("--warmup-steps", type=int, default=2, help="untimed training steps before them")
    parser.add_argument("--predict-repeats", type=int, default=3, help="timed predict passes per model and text set (median)")
    parser.add_argument("--weibo-sentences", type=int, help="first N Weibo test sentences (default: all 270)")
    parser.add_argument("--cmeee-sentences", type=int, default=32, help="the N longest cmeee test sentences (the longest included)")
    parser.add_argument("--no-freeze-embeddings", dest="freeze_embeddings", action="store_false", help="train the embedding table too (train.py without --freeze_embeddings); default frozen, as in the quickstart")
    parser.add_argument("--config-overrides", default="", help="KnowFreeConfig values of the fresh KnowFREE models (train.py --config_overrides), e.g. 'projection_size=100,span_hidden_size=100'")
    parser.add_argument("--knowfree-model", help="a KnowFREE model trained on Weibo, used for the Weibo rows instead of a fresh one (predictions then have realistic spans to decode)")
    parser.add_argument("--baseline-model", help="a baseline trained on Weibo, used for the Weibo rows instead of a fresh one")
    parser.add_argument("--cmeee-knowfree-model", help="a KnowFREE model trained on cmeee, used for the cmeee rows instead of a fresh one (the baseline stays fresh: BIO cannot hold cmeee's nested spans)")
    parser.add_argument("--int8", action="store_true", help="also time KnowFREE predict with its encoder dynamically quantized to int8, and the int8 ONNX graph (and their Weibo test F1 when --knowfree-model is given)")
    parser.add_argument("--onnx-int8", choices=QUANTIZED_PARTS, default="encoder", help="what --int8 makes int8 in the ONNX graph (export_onnx's quantize): the encoder alone or all the graph")
    parser.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip the ONNX Runtime copy of the Weibo KnowFREE model (export_onnx; its int8 graph too with --int8)")
    parser.add_argument(
        "--long-documents", nargs="*", type=int, default=list(LONG_DOCUMENT_LENGTHS), metavar="CHARS",
        help="also predict single documents of these lengths (Weibo test texts joined) and report seconds per 10,000 characters; none: skip",
    )
    parser.add_argument("--corpora", nargs="+", choices=CORPORA, default=list(CORPORA), help="which corpora to measure (the headline figures need both)")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory processes")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads, here and in the memory processes")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--smoke", action="store_true", help="quick run: 16 Weibo and 4 cmeee sentences, 2 training steps, 1 repeat, no memory")
    parser.add_argument("--write", action="store_true", help="update --results-md (the speed block) and --results-json (the 'speed' key)")
    parser.add_argument("--results-md", default=str(BENCHMARKS / "RESULTS.md"))
    parser.add_argument("--results-json", default=str(BENCHMARKS / "results.json"))
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object on stdout; the table goes to stderr")
    options = parser.parse_args(argv)
    if options.onnx and importlib.util.find_spec("onnxruntime") is None:
        print("speed.py: onnxruntime is not installed (pip install 'knowfree[onnx]'): no ONNX Runtime figures", file=sys.stderr)
        options.onnx = False
    if options.smoke:
        options.weibo_sentences = options.weibo_sentences or 16
        options.cmeee_sentences = min(options.cmeee_sentences, 4)
        options.train_steps, options.warmup_steps, options.predict_repeats, options.memory = 2, 1, 1, False
        options.long_documents = [1_000, 2_000] if options.long_documents else []
    return options


def missing_inputs(options: argparse.Namespace) -> list[str]:
    """What is absent among the encoder and the two corpora, as messages."""
    problems = []
    if not (Path(options.encoder) / "config.json").exists():
        problems.append(f"encoder {options.encoder} not found (build it with knowfree-build-encoder)")
    for corpus in options.corpora:
        if not (Path(options.data_dir) / corpus / "test.jsonl").exists():
            problems.append(f"corpus {Path(options.data_dir) / corpus} not found")
    return problems


def run(options: argparse.Namespace) -> dict:
    """Every measurement; returns the figures stored under "speed"."""
    torch.set_num_threads(options.threads)
    load_at_start = os.getloadavg()[0]
    data = Path(options.data_dir)
    speed: dict = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python " + " ".join(shlex.quote(arg) for arg in [os.path.relpath(__file__, REPO_ROOT), *sys.argv[1:]]),
        "machine": machine_description(options.threads),
        "settings": {
            "encoder": os.path.relpath(options.encoder, REPO_ROOT),
            "k": options.k,
            "batch_size": options.batch_size,
            "eval_batch_size": options.eval_batch_size,
            "freeze_embeddings": options.freeze_embeddings,
            "config_overrides": options.config_overrides,
            "knowfree_model": options.knowfree_model,
            "baseline_model": options.baseline_model,
            "cmeee_knowfree_model": options.cmeee_knowfree_model,
            "seed": options.seed,
            "train_steps": options.train_steps,
            "warmup_steps": options.warmup_steps,
            "predict_repeats": options.predict_repeats,
            "threads": options.threads,
        },
        "train_step": {},
        "predict": {},
        "peak_memory": {},
    }
    memory_jobs: dict[str, list[MemoryJob]] = {}
    max_span_width = {}
    for corpus_name in options.corpora:
        print(f"{corpus_name}: building both models", file=sys.stderr, flush=True)
        built = [build_contender(name, data / corpus_name, options, trained_folder(name, corpus_name, options)) for name in (KNOWFREE, BASELINE)]
        corpus = built[0][0]
        contenders = [contender for _, contender in built]
        max_span_width[corpus_name] = contenders[0].model.config.max_span_width
        # prediction first: the training steps change the weights, and a trained model's F1 is measured
        test_texts, test_gold = list(corpus.splits["test"]["text"]), list(corpus.splits["test"]["entities"])
        if corpus_name == "weibo":
            texts = test_texts[: options.weibo_sentences] if options.weibo_sentences else test_texts
            gold = test_gold[: len(texts)]
            onnx_models = []
            if options.onnx:
                print("weibo: export KnowFREE to ONNX", file=sys.stderr, flush=True)
                with tempfile.TemporaryDirectory(prefix="knowfree-speed-onnx-") as folder:  # the sessions hold the graphs
                    started = time.perf_counter()
                    contenders[0].model.export_onnx(folder, quantize=options.int8 and options.onnx_int8)
                    export_s = time.perf_counter() - started
                    onnx_models = onnx_contenders(contenders[0], Path(folder), options)
            print(f"weibo: predict {len(texts)} test sentences", file=sys.stderr, flush=True)
            speed["predict"]["weibo_test"] = measure_prediction(contenders + onnx_models, texts, options.predict_repeats, gold)
            if onnx_models:
                figures = onnx_figures(speed["predict"]["weibo_test"], contenders[0], onnx_models, texts, options.eval_batch_size)
                speed["onnx"] = {"export_s": export_s, "intra_op_threads": options.threads, **figures}
                del onnx_models
            memory_jobs["predict_weibo_test"] = [MemoryJob(name, corpus_name, "predict", texts=tuple(texts)) for name in (KNOWFREE, BASELINE)]
            if options.int8:
                speed["int8"] = measure_int8(contenders, texts, gold, options)
            if options.long_documents:
                print(f"weibo: predict single documents of {', '.join(f'{n:,}' for n in options.long_documents)} characters", file=sys.stderr, flush=True)
                speed["long_documents"] = measure_long_documents(contenders, texts, options.long_documents, options.predict_repeats, gold)
        else:
            longest = sorted(range(len(test_texts)), key=lambda index: len(test_texts[index]), reverse=True)[: options.cmeee_sentences]
            texts, gold = [test_texts[index] for index in longest], [test_gold[index] for index in longest]
            print(f"cmeee: predict the {len(texts)} longest test sentences", file=sys.stderr, flush=True)
            speed["predict"]["cmeee_longest"] = measure_prediction(contenders, texts, options.predict_repeats, gold)
            speed["predict"]["cmeee_longest_sentence"] = measure_prediction(contenders, texts[:1], options.predict_repeats, gold[:1])
            memory_jobs["predict_cmeee_longest_sentence"] = [MemoryJob(name, corpus_name, "predict", texts=(texts[0],)) for name in (KNOWFREE, BASELINE)]

        batches = training_batches(corpus, options)
        print(f"{corpus_name}: training steps", file=sys.stderr, flush=True)
        rows = corpus.splits["train"]
        speed["train_step"][corpus_name] = measure_training(contenders, [[rows[index] for index in batch] for batch in batches], options)
        timed = batches[options.warmup_steps :]
        heaviest = max(timed, key=lambda batch: sum(len(rows[index]["text"]) for index in batch))
        memory_jobs[f"train_{corpus_name}"] = [MemoryJob(name, corpus_name, "train", train_rows=tuple(heaviest)) for name in (KNOWFREE, BASELINE)]
        del contenders, built
        gc.collect()
    speed["max_span_width"] = max_span_width
    if options.memory:
        for key in ("predict_weibo_test", "predict_cmeee_longest_sentence", "train_weibo", "train_cmeee"):
            if key in memory_jobs:
                speed["peak_memory"][key] = {job.model: measure_peak(job, options) for job in memory_jobs[key]}
    speed["predict_throughput_ratio"] = speed["predict"].get("weibo_test", {}).get("ratio")
    speed["train_step_ratio"] = speed["train_step"].get("weibo", {}).get("ratio")
    longest = speed["peak_memory"].get("predict_cmeee_longest_sentence", {}).get(KNOWFREE, {})
    speed["longest_cmeee_peak_mem_gb"] = longest.get("peak_gb")
    longest_sentence = speed["predict"].get("cmeee_longest_sentence", {})
    speed["longest_cmeee_time_ratio"] = _ratio(longest_sentence.get(f"{KNOWFREE}_s"), longest_sentence.get(f"{BASELINE}_s"))
    speed["onnx_predict_throughput_ratio"] = speed.get("onnx", {}).get(ONNX, {}).get("per_baseline")
    speed["long_document_time_growth"] = speed.get("long_documents", {}).get("growth", {}).get(KNOWFREE)
    speed["load_average"] = [load_at_start, os.getloadavg()[0]]
    speed["targets"] = target_lines(speed)
    return speed


def measure_int8(contenders: list[Contender], texts: list[str], gold: list[list[dict]], options: argparse.Namespace) -> dict:
    """KnowFREE predict with a dynamically quantized int8 encoder against the baseline, and its F1
    (the fp32 model's is in the main Weibo measurement)."""
    knowfree, baseline = contenders
    quantized = quantized_encoder_copy(knowfree, options.eval_batch_size)
    print("weibo: predict with the int8 encoder", file=sys.stderr, flush=True)
    measured = measure_prediction([quantized, baseline], texts, options.predict_repeats, gold)
    return {
        "int8_sentences_per_s": measured[f"{KNOWFREE}_sentences_per_s"],
        f"{BASELINE}_sentences_per_s": measured[f"{BASELINE}_sentences_per_s"],
        "ratio": measured["ratio"],
        "int8_f1": measured[f"{KNOWFREE}_f1"],
        f"{BASELINE}_f1": measured[f"{BASELINE}_f1"],
    }


def main(argv: list[str] | None = None) -> int:
    options = parse_arguments(argv)
    problems = missing_inputs(options)
    if problems:
        for problem in problems:
            print(f"speed.py: skipped: {problem}", file=sys.stderr)
        return 0
    started = time.perf_counter()
    speed = run(options)
    speed["wall_s"] = round(time.perf_counter() - started, 1)
    report = sys.stderr if options.json else sys.stdout
    if options.json:
        print(json.dumps(speed, indent=2, ensure_ascii=False), flush=True)
    print("\n" + markdown_block(speed), file=report, flush=True)
    if options.write:
        write_results(Path(options.results_md), Path(options.results_json), speed)
        print(f"\nwrote the speed block of {options.results_md} and the 'speed' key of {options.results_json}", file=report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
