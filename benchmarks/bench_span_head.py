"""Forward + backward time and peak memory of the KnowFREE span head against the naive reference.

The fast head (`modeling_knowfree.KnowFreeSpanHead`) keeps spans in a (start, width) band and lets
each span attend to its 2w+1 neighbours only; the reference (`knowfree.reference_head`) builds the
full L x L grid and runs masked attention over whole grid rows, which costs O(L^3) memory. Both use
the same parameters, so the run also checks that their logits agree where they are comparable.

Timing: both implementations run alternately in this process on the same inputs, after one short
warm-up step each; the median of the timed steps is reported. Memory: every (implementation, L,
width) runs once in a fresh spawned process, so allocations of other configurations never mix in.
On CPU the peak is the process's peak resident set (VmHWM, reset through /proc/self/clear_refs) minus its resident set
just before the measured step; on CUDA it is `torch.cuda.max_memory_allocated` minus the memory
allocated before the step. Configurations whose estimated peak exceeds `--memory-budget-gb` are
skipped and reported with the estimate.

The reference has no width limit (it always builds the full grid), so one reference measurement per L
serves both the width-32 and the no-limit rows.

Run from the repository root: `python benchmarks/bench_span_head.py [--json] [--lengths 64 128]`.
"""

import argparse
import gc
import json
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from transformers import BertConfig  # noqa: E402

from configuration_knowfree import KnowFreeConfig  # noqa: E402
from knowfree.reference_head import band_to_grid, reference_span_logits  # noqa: E402
from modeling_knowfree import KnowFreeSpanHead  # noqa: E402
from processing_knowfree import band_width  # noqa: E402

INPUT_SIZE = 384
PROJECTION_SIZE = 200
SPAN_HIDDEN_SIZE = 200
ATTENTION_HEADS = 10
ATTENTION_WINDOW = 3
TARGET_LABEL_COUNT = 8
EXTENSION_LABEL_COUNT = 20
WIDTH_LIMITS: tuple[int | None, ...] = (32, None)
WARM_UP_LENGTH = 16
FLOAT_BYTES = 4
MIB = 2**20
GIB = 2**30

AGREEMENT_TOLERANCE = 1e-4
TARGET_LENGTH = 256
TARGET_WIDTH = 32
TARGET_RATIO = 5.0

# Peak-memory model, calibrated on CPU (batch 4, L = 64..512) and rounded up so the estimate stayed
# above every measured peak. Reference: 2.6 score-sized tensors (B*K*L^3 floats: scores, softmax and
# their gradients live together during softmax backward) + 15 grid-sized tensors (B*L^2*D~ floats:
# grid, q/k/v, attended, norms, gradients). Fast head: 11 band-sized tensors (B*L*W*D~ floats) + 2.5
# biaffine intermediates (B*L*D'*D~ floats, the start projection times every bilinear form).
REFERENCE_SCORE_TENSORS = 2.6
REFERENCE_GRID_TENSORS = 15.0
FAST_BAND_TENSORS = 11.0
FAST_BIAFFINE_TENSORS = 2.5
OVERHEAD_BYTES = 128 * MIB

Implementation = Literal["fast", "reference"]


@dataclass(frozen=True)
class Variant:
    """One thing to time and measure at a given L: the fast head at a width limit, or the reference."""

    implementation: Implementation
    max_span_width: int | None

    @property
    def label(self) -> str:
        return "reference" if self.implementation == "reference" else f"fast(width={self.max_span_width})"


REFERENCE = Variant("reference", None)


@dataclass
class Measurement:
    """What one variant gave at one L; `skipped` says why the numbers are missing."""

    estimate_mib: float
    median_ms: float | None = None
    repeats: int = 0
    peak_mib: float | None = None
    skipped: str | None = None


@dataclass
class Row:
    """One line of the report: a length and a width limit, fast head against reference."""

    L: int
    max_span_width: int | None
    band_width: int
    batch_size: int
    device: str
    fast_ms: float | None
    reference_ms: float | None
    speedup: float | None
    fast_peak_mib: float | None
    reference_peak_mib: float | None
    memory_ratio: float | None
    fast_repeats: int
    reference_repeats: int
    fast_estimate_mib: float
    reference_estimate_mib: float
    max_abs_diff: float | None
    compared_cells: int
    skipped: str | None


def build_head(max_span_width: int | None, device: torch.device) -> KnowFreeSpanHead:
    """The span head of the benchmark configuration; a fixed seed gives every width the same weights."""
    config = KnowFreeConfig(
        encoder_config=BertConfig(hidden_size=INPUT_SIZE).to_dict(),
        target_labels=[f"target{index}" for index in range(TARGET_LABEL_COUNT)],
        extension_labels=[f"extension{index}" for index in range(EXTENSION_LABEL_COUNT)],
        projection_size=PROJECTION_SIZE,
        span_hidden_size=SPAN_HIDDEN_SIZE,
        local_attention_heads=ATTENTION_HEADS,
        local_attention_window=ATTENTION_WINDOW,
        max_span_width=max_span_width,
        dropout=0.0,
    )
    torch.manual_seed(0)
    return KnowFreeSpanHead(config, INPUT_SIZE).to(device)


def build_inputs(batch_size: int, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Random character states and a mask with padding: text lengths cycle through L, L, 3L/4, L/2."""
    generator = torch.Generator().manual_seed(length)
    char_states = torch.randn(batch_size, length, INPUT_SIZE, generator=generator).to(device)
    text_lengths = [length, length, 3 * length // 4, length // 2]
    positions = torch.arange(length)
    char_mask = torch.stack([positions < max(1, text_lengths[row % 4]) for row in range(batch_size)])
    return char_states, char_mask.to(device)


def forward_backward(
    implementation: Implementation, head: KnowFreeSpanHead, char_states: torch.Tensor, char_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One training step of the head: logits, the sum of the valid logits as loss, backward."""
    head.zero_grad(set_to_none=True)
    if implementation == "fast":
        logits, valid = head(char_states, char_mask)
    else:
        logits, valid = reference_span_logits(head, char_states, char_mask)
    logits.masked_fill(~valid[..., None], 0.0).sum().backward()
    return logits.detach(), valid


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so wall-clock times and peaks cover the whole step."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_step(
    implementation: Implementation, head: KnowFreeSpanHead, char_states: torch.Tensor, char_mask: torch.Tensor
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Seconds one forward + backward takes, with its logits and valid mask."""
    synchronize(char_states.device)
    started = time.perf_counter()
    logits, valid = forward_backward(implementation, head, char_states, char_mask)
    synchronize(char_states.device)
    return time.perf_counter() - started, logits, valid


def estimate_peak_bytes(variant: Variant, batch_size: int, length: int) -> float:
    """Peak memory of one forward + backward predicted from the tensor sizes (model above)."""
    if variant.implementation == "reference":
        score_floats = batch_size * ATTENTION_HEADS * length**3
        grid_floats = batch_size * length**2 * SPAN_HIDDEN_SIZE
        floats = REFERENCE_SCORE_TENSORS * score_floats + REFERENCE_GRID_TENSORS * grid_floats
    else:
        band_floats = batch_size * length * band_width(length, variant.max_span_width) * SPAN_HIDDEN_SIZE
        biaffine_floats = batch_size * length * PROJECTION_SIZE * SPAN_HIDDEN_SIZE
        floats = FAST_BAND_TENSORS * band_floats + FAST_BIAFFINE_TENSORS * biaffine_floats
    return FLOAT_BYTES * floats + OVERHEAD_BYTES


def resident_bytes(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS: now, VmHWM: peak since the last reset) in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} missing from /proc/self/status")


def reset_peak_resident() -> None:
    """Make VmHWM restart from the current resident set (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def peak_memory_in_fresh_process(
    variant: Variant, length: int, batch_size: int, device_name: str, threads: int
) -> float:
    """Body of the spawned process: extra bytes one forward + backward needs at its peak.

    A short warm-up step first pays one-time costs (thread pools, kernel choice) that are no part of
    the configuration's footprint; the inputs and weights exist before the baseline is taken.
    """
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    head = build_head(variant.max_span_width, device)
    forward_backward(variant.implementation, head, *build_inputs(batch_size, min(length, WARM_UP_LENGTH), device))
    char_states, char_mask = build_inputs(batch_size, length, device)
    head.zero_grad(set_to_none=True)
    gc.collect()
    synchronize(device)
    if device.type == "cuda":
        baseline = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        forward_backward(variant.implementation, head, char_states, char_mask)
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - baseline
    baseline = resident_bytes("VmRSS")
    reset_peak_resident()
    forward_backward(variant.implementation, head, char_states, char_mask)
    return resident_bytes("VmHWM") - baseline


def measure_peak_mib(variant: Variant, length: int, batch_size: int, device: torch.device, threads: int) -> float:
    """Run `peak_memory_in_fresh_process` in a new interpreter, so nothing else shares its heap."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        job = pool.submit(peak_memory_in_fresh_process, variant, length, batch_size, str(device), threads)
        return job.result() / MIB


def comparable_difference(
    fast_logits: torch.Tensor,
    reference_logits: torch.Tensor,
    reference_valid: torch.Tensor,
    band: int,
) -> tuple[float, int]:
    """Largest |fast - reference| over valid spans whose whole attention window lies inside the band.

    With a width limit, spans near the band edge miss neighbours the full grid has, so they differ
    by design; without a limit the band is the whole grid and every valid span is compared.
    """
    length = reference_logits.shape[1]
    positions = torch.arange(length, device=reference_logits.device)
    offsets = positions[None, :] - positions[:, None]
    window_inside_band = (offsets + ATTENTION_WINDOW < band) | (band == length)
    compared = reference_valid & window_inside_band[None]
    difference = (band_to_grid(fast_logits, length) - reference_logits)[compared].abs()
    return (difference.max().item() if difference.numel() else 0.0), int(compared.sum())


def repeat_count(first_seconds: float, repeats: int, repeat_budget_s: float) -> int:
    """Fewer timed steps for slow variants: as many as fit the budget, at least one."""
    return max(1, min(repeats, int(repeat_budget_s // max(first_seconds, 1e-9))))


def estimate_and_skip(length: int, arguments: argparse.Namespace) -> dict[Variant, Measurement]:
    """A measurement per variant holding its memory estimate; those over the budget are marked skipped."""
    measurements = {}
    for variant in [Variant("fast", width) for width in WIDTH_LIMITS] + [REFERENCE]:
        estimate = estimate_peak_bytes(variant, arguments.batch_size, length)
        measurements[variant] = Measurement(estimate_mib=estimate / MIB)
        if estimate > arguments.memory_budget_gb * GIB:
            measurements[variant].skipped = (
                f"{variant.implementation}: estimated peak {estimate / GIB:.1f} GiB exceeds the "
                f"{arguments.memory_budget_gb:g} GiB budget"
            )
    return measurements


def time_alternately(
    length: int, runnable: list[Variant], arguments: argparse.Namespace, device: torch.device
) -> tuple[dict[Variant, list[float]], dict[int | None, tuple[float, int]]]:
    """Seconds of every timed step per variant, and each fast width's (max |diff|, cells) against the reference.

    The warm-up is one short step (L = WARM_UP_LENGTH) per variant: one-time costs (thread pools,
    kernel dispatch, lazy initialisation) do not depend on L, and tensors above glibc's mmap
    threshold are fresh pages on every step anyway, so a full-size warm-up would only add minutes.
    Then rounds run every variant once on the same inputs; the first round's time sets how many
    rounds a variant takes part in, and its logits are the ones compared.
    """
    heads = {width: build_head(width, device) for width in WIDTH_LIMITS}
    head_of = {variant: heads[variant.max_span_width] for variant in runnable}
    warm_up_inputs = build_inputs(arguments.batch_size, min(length, WARM_UP_LENGTH), device)
    for variant in runnable:
        forward_backward(variant.implementation, head_of[variant], *warm_up_inputs)
    char_states, char_mask = build_inputs(arguments.batch_size, length, device)

    timings: dict[Variant, list[float]] = {variant: [] for variant in runnable}
    outputs: dict[Variant, tuple[torch.Tensor, torch.Tensor]] = {}
    for variant in runnable:
        seconds, logits, valid = timed_step(variant.implementation, head_of[variant], char_states, char_mask)
        timings[variant].append(seconds)
        outputs[variant] = (logits, valid)
    print(f"  L={length} timed round 1", file=sys.stderr, flush=True)

    differences: dict[int | None, tuple[float, int]] = {}
    if REFERENCE in outputs:
        reference_logits, reference_valid = outputs[REFERENCE]
        for variant in runnable:
            if variant.implementation == "fast":
                band = band_width(length, variant.max_span_width)
                differences[variant.max_span_width] = comparable_difference(
                    outputs[variant][0], reference_logits, reference_valid, band
                )
    outputs.clear()

    planned = {
        variant: repeat_count(timings[variant][0], arguments.repeats, arguments.repeat_budget_s)
        for variant in runnable
    }
    for round_index in range(1, max(planned.values(), default=0)):
        for variant in runnable:
            if round_index < planned[variant]:
                seconds, _, _ = timed_step(variant.implementation, head_of[variant], char_states, char_mask)
                timings[variant].append(seconds)
        print(f"  L={length} timed round {round_index + 1}", file=sys.stderr, flush=True)
    return timings, differences


def benchmark_length(length: int, arguments: argparse.Namespace, device: torch.device) -> list[Row]:
    """Time, measure and compare every variant at one L; returns one row per width limit."""
    measurements = estimate_and_skip(length, arguments)
    runnable = [variant for variant, measurement in measurements.items() if measurement.skipped is None]
    timings, differences = time_alternately(length, runnable, arguments, device)
    gc.collect()

    for variant in runnable:
        measurement = measurements[variant]
        measurement.median_ms = 1000 * statistics.median(timings[variant])
        measurement.repeats = len(timings[variant])
        print(f"  L={length} peak memory of {variant.label} (fresh process)", file=sys.stderr, flush=True)
        try:
            measurement.peak_mib = measure_peak_mib(variant, length, arguments.batch_size, device, arguments.threads)
        except BrokenProcessPool:
            measurement.skipped = f"{variant.implementation}: the memory-measuring process died (out of memory?)"

    reference = measurements[REFERENCE]
    return [
        build_row(
            length, width, measurements[Variant("fast", width)], reference, differences.get(width), arguments, device
        )
        for width in WIDTH_LIMITS
    ]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either side was not measured."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def build_row(
    length: int,
    width: int | None,
    fast: Measurement,
    reference: Measurement,
    difference: tuple[float, int] | None,
    arguments: argparse.Namespace,
    device: torch.device,
) -> Row:
    """Combine the fast head's and the reference's measurements into one report row."""
    reasons = [reason for reason in (fast.skipped, reference.skipped) if reason]
    return Row(
        L=length,
        max_span_width=width,
        band_width=band_width(length, width),
        batch_size=arguments.batch_size,
        device=str(device),
        fast_ms=fast.median_ms,
        reference_ms=reference.median_ms,
        speedup=ratio(reference.median_ms, fast.median_ms),
        fast_peak_mib=fast.peak_mib,
        reference_peak_mib=reference.peak_mib,
        memory_ratio=ratio(reference.peak_mib, fast.peak_mib),
        fast_repeats=fast.repeats,
        reference_repeats=reference.repeats,
        fast_estimate_mib=fast.estimate_mib,
        reference_estimate_mib=reference.estimate_mib,
        max_abs_diff=difference[0] if difference else None,
        compared_cells=difference[1] if difference else 0,
        skipped="; ".join(reasons) or None,
    )


def format_number(value: float | None, pattern: str) -> str:
    """A table cell: the formatted value, or '-' when it was not measured."""
    return "-" if value is None else format(value, pattern)


def format_table(rows: list[Row]) -> str:
    """The human-readable report: one line per (L, width) plus the reasons for skipped cells."""
    header = (
        f"{'L':>5} {'width':>6} {'fast ms':>10} {'ref ms':>10} {'speedup':>8} "
        f"{'fast MiB':>9} {'ref MiB':>9} {'mem ratio':>9} {'max|diff|':>10}"
    )
    lines = [header, "-" * len(header)]
    notes = []
    for row in rows:
        width = "none" if row.max_span_width is None else str(row.max_span_width)
        lines.append(
            f"{row.L:>5} {width:>6} {format_number(row.fast_ms, '.1f'):>10} "
            f"{format_number(row.reference_ms, '.1f'):>10} {format_number(row.speedup, '.2f'):>8} "
            f"{format_number(row.fast_peak_mib, '.0f'):>9} {format_number(row.reference_peak_mib, '.0f'):>9} "
            f"{format_number(row.memory_ratio, '.2f'):>9} {format_number(row.max_abs_diff, '.2e'):>10}"
        )
        if row.skipped:
            notes.append(
                f"  L={row.L} width={width}: skipped {row.skipped} "
                f"(estimates: fast {row.fast_estimate_mib:.0f} MiB, reference {row.reference_estimate_mib:.0f} MiB)"
            )
    if notes:
        lines += ["", "Skipped:"] + notes
    return "\n".join(lines)


def target_report(rows: list[Row]) -> tuple[list[str], bool]:
    """Lines saying whether each target of the issue is met, and whether the logits agree."""
    lines = []
    target_row = next((row for row in rows if row.L == TARGET_LENGTH and row.max_span_width == TARGET_WIDTH), None)
    if target_row is None or target_row.speedup is None or target_row.memory_ratio is None:
        lines.append(f"L={TARGET_LENGTH}, width {TARGET_WIDTH}: NOT MEASURED (include {TARGET_LENGTH} in --lengths)")
    else:
        met = target_row.speedup >= TARGET_RATIO and target_row.memory_ratio >= TARGET_RATIO
        lines.append(
            f"L={TARGET_LENGTH}, width {TARGET_WIDTH}: >= {TARGET_RATIO:g}x faster and >= {TARGET_RATIO:g}x less "
            f"peak memory: {'MET' if met else 'MISSED'} (speedup {target_row.speedup:.2f}, "
            f"memory ratio {target_row.memory_ratio:.2f})"
        )
    unlimited = [row for row in rows if row.max_span_width is None and row.speedup is not None]
    if unlimited:
        slower = [row for row in unlimited if row.speedup < 1.0]
        per_length = ", ".join(f"L={row.L}: {row.speedup:.2f}" for row in unlimited)
        verdict = "MISSED" if slower else "MET"
        lines.append(f"no width limit, not slower than the reference: {verdict} (speedup {per_length})")
    else:
        lines.append("no width limit, not slower than the reference: NOT MEASURED")
    compared = [row for row in rows if row.max_abs_diff is not None]
    agree = all(row.max_abs_diff < AGREEMENT_TOLERANCE for row in compared)
    largest = max((row.max_abs_diff for row in compared), default=0.0)
    lines.append(
        f"logits agree with the reference (max |diff| < {AGREEMENT_TOLERANCE:g} on comparable valid cells): "
        f"{'YES' if agree else 'NO'} (largest {largest:.2e} over {len(compared)} rows)"
    )
    return lines, agree


def parse_arguments() -> argparse.Namespace:
    """Command line; every default reproduces the issue's setting."""
    parser = argparse.ArgumentParser(
        description=(
            "Forward + backward time and peak memory of the KnowFREE span head (band layout, local "
            "attention) against the naive full-grid reference, at max_span_width 32 and without limit. "
            f"Head: input {INPUT_SIZE}, D' {PROJECTION_SIZE}, D~ {SPAN_HIDDEN_SIZE}, K {ATTENTION_HEADS}, "
            f"w {ATTENTION_WINDOW}, {TARGET_LABEL_COUNT}+{EXTENSION_LABEL_COUNT} labels, dropout 0. "
            "Speedup = reference time / fast time; memory ratio = reference peak / fast peak. Exits 1 "
            "if the logits disagree, 0 otherwise (missed speed targets are reported, not fatal)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--lengths", type=int, nargs="+", default=[64, 128, 256, 512], help="text lengths L in characters"
    )
    parser.add_argument(
        "--batch-size", type=int, default=4, help="texts per batch; their lengths cycle through L, L, 3L/4, L/2"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed steps per configuration after a warm-up; the median is reported"
    )
    parser.add_argument(
        "--repeat-budget-s",
        type=float,
        default=60.0,
        help="seconds of timed steps per configuration: a variant whose first step takes t seconds gets "
        "min(repeats, budget // t) steps, at least one",
    )
    parser.add_argument(
        "--memory-budget-gb",
        type=float,
        default=10.0,
        help="GiB (2^30 bytes); configurations whose estimated peak exceeds it are skipped and reported",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="torch.set_num_threads, here and in the memory processes"
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto = cuda when available")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per configuration on stdout; the table and targets then go to stderr",
    )
    return parser.parse_args()


def main() -> int:
    """Benchmark every L, then print the rows (table or JSON lines) and the targets."""
    arguments = parse_arguments()
    device_name = arguments.device if arguments.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device_name)
    torch.set_num_threads(arguments.threads)
    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    rows: list[Row] = []
    for length in arguments.lengths:
        print(f"L={length}", file=sys.stderr, flush=True)
        rows += benchmark_length(length, arguments, device)
    report = sys.stderr if arguments.json else sys.stdout
    if arguments.json:
        for row in rows:
            print(json.dumps(asdict(row)), flush=True)
    print(
        f"\nKnowFREE span head, forward + backward, batch {arguments.batch_size}, D~ {SPAN_HIDDEN_SIZE}, "
        f"K {ATTENTION_HEADS}, w {ATTENTION_WINDOW}, device {device}, {arguments.threads} threads "
        f"(median times; peak memory above the pre-step baseline, one fresh process per configuration; "
        f"the reference ignores the width limit, so both rows of an L share its numbers)",
        file=report,
    )
    print(format_table(rows), file=report)
    target_lines, agree = target_report(rows)
    print("\nTargets:", file=report)
    for line in target_lines:
        print("  " + line, file=report)
    print(
        f"\nwall time {time.perf_counter() - started:.0f} s; 1-minute load average {load_at_start:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end (timings are only as quiet as the machine)",
        file=report,
        flush=True,
    )
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
