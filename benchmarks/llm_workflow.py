"""The knowledge-enhancement workflow against a real LLM (issue 19), end to end and measured.

For each cell (data set, sample, sampling seed) this runs
- `knowfree`: KnowFREE alone on the sample (train.py);
- `offline`: the workflow without an LLM: KnowFREE on the jieba fusion of the sample;
- `llm-<size>`: `knowfree-augment workflow` against the running endpoint: the annotation model trained
  on the LLM fusion, then the final model on LLM fusion + synthetic rows.
and reports test F1 of the four, and per prompt kind what the LLM did: requests, replies that could be
read, what was kept, repaired or dropped, generated tokens per second, and wall time per workflow step.

One server serves one model: start it (`benchmarks/llama_server.py` with the model `../shared/llm/serve.sh`
installed; benchmarks/README.md has the command), run with `--llm 0.5b`,
then the same for 1.5b. Every LLM reply is kept in `benchmarks/llm_replies/<cell>-<llm>.jsonl.gz`
(committed): a part whose replies are all there re-runs without a server, so the fusion and synthetic
datasets and every figure can be rebuilt offline. Cells resume and never run twice, like `few_shot.py`;
a part results.json records as finished with today's command counts as finished on a fresh clone.
The LLM-free parts live in few_shot.py's folders with its commands, so a 10-shot cell that table
has trained is not trained again.

    python benchmarks/llm_workflow.py --list
    python benchmarks/llm_workflow.py --run --llm 0.5b [--endpoint http://127.0.0.1:8011] [--datasets weibo] [--samples 10shot] [--seeds 42]
    python benchmarks/llm_workflow.py --report
"""

import argparse
import gzip
import shlex
import shutil
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))

from accuracy import REPO_ROOT, read_json, run_logged, shown  # noqa: E402
from cell_parts import SEEDS, add_common_arguments, chosen, dispatch, mean_spread, output_folder, recorded_cells, run_parts, write_section  # noqa: E402
from cell_parts import cell_record as record_of  # noqa: E402
from few_shot import sample_commands  # noqa: E402

DATASETS = ("weibo", "resume")
SAMPLES = {"10shot": ["--k_shot", "10"], "k50": ["--k", "50"]}
LLMS = ("0.5b", "1.5b")
DEFAULT_ENDPOINT = "http://127.0.0.1:8011"
SERVED_MODEL = "qwen"  # the model name serve.sh's server answers to
REPLIES = BENCHMARKS / "llm_replies"
BLOCK_START, BLOCK_END = "<!-- llm-workflow:start -->", "<!-- llm-workflow:end -->"
PLAIN, OFFLINE = "knowfree", "offline"
KINDS = ("entities", "segmentation", "pos", "merge", "explanations")


def llm_part(size: str) -> str:
    return f"llm-{size}"


@dataclass(frozen=True)
class Cell:
    dataset: str
    sample: str
    seed: int

    @property
    def id(self) -> str:
        return f"{self.dataset}-{self.sample}-seed{self.seed}"


@dataclass(frozen=True)
class Place:
    """Where cells live, the data, the endpoint LLM parts talk to, and what the committed results.json records."""

    runs_dir: Path
    data_root: str
    endpoint: str = DEFAULT_ENDPOINT
    plain_runs_dir: Path | None = None  # the LLM-free parts' cells (few_shot.py's); runs_dir when None
    replies_dir: Path = REPLIES
    recorded: Mapping[str, dict] = field(default_factory=dict)


def grid() -> list[Cell]:
    """Every cell, the first seed of every (data set, sample) first."""
    return [Cell(dataset, sample, seed) for seed in SEEDS for sample in SAMPLES for dataset in DATASETS]


def reply_cache(cell: Cell, place: Place, size: str) -> Path:
    """The plain reply cache the workflow reads and appends to (in the cell folder)."""
    return place.runs_dir / cell.id / f"{llm_part(size)}.llm-cache.jsonl"


def committed_replies(cell: Cell, place: Place, size: str) -> Path:
    return place.replies_dir / f"{cell.id}-{llm_part(size)}.jsonl.gz"


def commands(cell: Cell, place: Place) -> dict[str, list[str]]:
    """Every part's command; the LLM parts are the offline workflow's plus the endpoint and its cache."""
    folder = place.runs_dir / cell.id
    sample = [*SAMPLES[cell.sample], "--data_seed", str(cell.seed)]
    plain = sample_commands((place.plain_runs_dir or place.runs_dir) / cell.id, str(Path(place.data_root) / cell.dataset), sample)
    parts = {PLAIN: plain["knowfree"], OFFLINE: plain["workflow"]}
    workflow = plain["workflow"][: plain["workflow"].index("--work_dir")]
    for size in LLMS:
        parts[llm_part(size)] = [
            *workflow, "--endpoint", place.endpoint, "--model", SERVED_MODEL, "--concurrency", "1", "--timeout", "600",
            "--cache", shown(reply_cache(cell, place, size)), "--work_dir", shown(folder / llm_part(size)),
        ]  # fmt: skip
    return parts


def measured(cell: Cell, place: Place, part: str) -> dict | None:
    """A finished part's figures, from its folder, else from results.json when recorded with today's command."""
    command = commands(cell, place)[part]
    folder = output_folder(command)
    if part == PLAIN:
        results = read_json(folder / "results.json", None)
        figures = None if results is None else {"test_f1": results["test"]["f1"], "dev_f1": results["dev"]["f1"], "train_rows": results["train_rows"]}
    else:
        summary = read_json(folder / "summary.json", None)
        figures = None if summary is None else workflow_figures(summary, read_json(folder / "fusion" / "augmentation.json", {}))
    if figures is not None:
        return figures
    record = place.recorded.get(cell.id, {})
    return record.get(part) if record.get("commands", {}).get(part) == shlex.join(command) else None


def workflow_figures(summary: dict, fusion: dict) -> dict:
    """Test F1 of the annotation model (fusion) and, with an LLM, of the final model; and what the LLM did."""
    figures = {"fusion_test_f1": summary["fusion_only_test"]["f1"], "extension_labels": summary["extension_labels"],
               "annotation_counts": fusion.get("annotation_counts", {})}  # fmt: skip
    if "fusion_synthetic_test" in summary:
        figures["synthetic_test_f1"] = summary["fusion_synthetic_test"]["f1"]
    if "llm_usage" in summary:
        figures.update({"llm_usage": summary["llm_usage"], "step_seconds": summary["step_seconds"],
                        "structured_output": summary.get("structured_output"), "synthesis": summary["synthesis"]["counts"]})  # fmt: skip
    return figures


def _restore_replies(cell: Cell, place: Place, size: str) -> None:
    cache, committed = reply_cache(cell, place, size), committed_replies(cell, place, size)
    if committed.exists() and not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(committed, "rb") as source, cache.open("wb") as target:
            shutil.copyfileobj(source, target)


def _keep_replies(cell: Cell, place: Place, size: str) -> None:
    cache, committed = reply_cache(cell, place, size), committed_replies(cell, place, size)
    if cache.exists():
        committed.parent.mkdir(parents=True, exist_ok=True)
        staging = committed.with_name(committed.name + ".partial")
        with cache.open("rb") as source, gzip.GzipFile(staging, "wb", mtime=0) as target:
            shutil.copyfileobj(source, target)
        staging.replace(committed)


@contextmanager
def replies_kept(cell: Cell, place: Place, part: str) -> Iterator[None]:
    """Around an LLM part: its committed replies restored before, and kept (compressed) after, even when it fails."""
    size = part.removeprefix("llm-") if part.startswith("llm-") else None
    if size:
        _restore_replies(cell, place, size)
    try:
        yield
    finally:
        if size:
            _keep_replies(cell, place, size)


def finished(cell: Cell, place: Place, part: str) -> bool:
    return measured(cell, place, part) is not None


def run(cells: list[Cell], place: Place, parts: list[str], report, runner=run_logged) -> int:
    """Run the unfinished `parts` of the cells one after another; replies are committed as they are kept."""

    def selected(cell: Cell) -> dict[str, list[str]]:
        return {part: command for part, command in commands(cell, place).items() if part in parts}

    return run_parts(cells, lambda cell: place.runs_dir / cell.id, selected, lambda cell, part: finished(cell, place, part), report, runner, lambda cell, part: replies_kept(cell, place, part))


def cell_record(cell: Cell, place: Place) -> dict:
    return record_of(cell, {"dataset": cell.dataset, "sample": cell.sample, "seed": cell.seed}, commands(cell, place), lambda cell, part: measured(cell, place, part))


def kind_rows(records: list[dict], part: str) -> list[str]:
    """Per prompt kind, summed over the seeds: what was asked, answered, usable, kept; speed."""
    usage: dict[str, Counter] = {kind: Counter() for kind in KINDS}
    counts, synthesis = Counter(), Counter()
    for record in records:
        figures = record.get(part, {})
        for step in figures.get("llm_usage", {}).values():
            for kind, events in step.items():
                if kind in usage:
                    usage[kind].update(events)
        counts.update(figures.get("annotation_counts", {}))
        synthesis.update(figures.get("synthesis", {}))
    rows = []
    for kind in KINDS:
        events = usage[kind]
        answered = events["answered"] + events["cached"]
        if not answered and not events["sent"]:
            continue
        speed = f"{events['completion_tokens'] / events['request_seconds']:.1f}" if events["request_seconds"] else "—"
        rows.append(f"| {kind} | {answered} | {sum(v for k, v in events.items() if k.startswith('failed_'))} | {kind_outcome(kind, counts, synthesis)} | {speed} |")
    return rows


def kind_outcome(kind: str, counts: Counter, synthesis: Counter) -> str:
    """The read-out of one kind's replies in words, from the fusion's annotation counts and the synthesis counts."""
    if kind == "entities":
        return (f"{counts['entity_mentions']} mentions kept; {counts['entity_not_in_text']} not in the text, {counts['entity_item_malformed']} malformed; "
                f"{counts['entities_reply_unparsable']} replies unreadable")  # fmt: skip
    if kind == "segmentation":
        return f"{counts['segmentation_repaired']} repaired, {counts['segmentation_rejected']} rejected, {counts['segmentation_reply_unparsable']} unreadable"
    if kind == "pos":
        drops = ", ".join(f"{counts[name]} {name.removeprefix('pos_').replace('_', ' ')}" for name in
                          ("pos_word_unaligned", "pos_clause", "pos_word_off_segmentation", "pos_tag_unknown", "pos_words_untagged"))  # fmt: skip
        return (f"{counts['rows_with_pos']} rows with POS; {counts['pos_reply_unparsable']} replies unreadable, "
                f"{counts['pos_skipped_no_segmentation']} rows without a segmentation to align against; {drops}")  # fmt: skip
    if kind == "merge":
        return "synonym groups (decisions in each fusion's label_map.json)"
    dropped = ", ".join(f"{value} {name}" for name, value in sorted(synthesis.items()) if name.startswith(("sentence_", "reply_")) and name != "reply_used")
    return f"{synthesis['reply_used']} replies used, {synthesis['synthetic_rows']} synthetic rows; dropped: {dropped or 'none'}"


def step_seconds(records: list[dict], part: str) -> str:
    totals: Counter = Counter()
    for record in records:
        totals.update(record.get(part, {}).get("step_seconds", {}))
    return ", ".join(f"{step} {seconds:.0f} s" for step, seconds in totals.items()) or "—"


def report(place: Place, markdown: Path, results_json: Path) -> None:
    records = [cell_record(cell, place) for cell in grid()]
    lines = [
        BLOCK_START,
        "## The workflow against a real LLM",
        "",
        f"Rebuilt by `python benchmarks/llm_workflow.py --report` on {datetime.now(timezone.utc).isoformat(timespec='seconds')} (UTC). "
        "Qwen2.5-Coder-Instruct (Q4_K_M GGUF) behind llama-cpp-python's server (the GGUF files of `../shared/llm/serve.sh 0.5b|1.5b`, started by `benchmarks/llama_server.py`), concurrency 1, "
        "on this machine's CPU cores; sampling seeds " + ", ".join(map(str, SEEDS)) + "; test F1, mean ± population spread over the finished seeds.",
        "",
        "| data | sample | LLM | KnowFREE | + offline (jieba) fusion | + LLM fusion | + LLM fusion + synthetic |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset in DATASETS:
        for sample in SAMPLES:
            group = [record for record in records if (record["dataset"], record["sample"]) == (dataset, sample)]
            plain = mean_spread([r[PLAIN]["test_f1"] for r in group if PLAIN in r], len(group))
            offline = mean_spread([r[OFFLINE]["fusion_test_f1"] for r in group if OFFLINE in r], len(group))
            for size in LLMS:
                part = llm_part(size)
                fusion = mean_spread([r[part]["fusion_test_f1"] for r in group if part in r], len(group))
                synthetic = mean_spread([r[part]["synthetic_test_f1"] for r in group if "synthetic_test_f1" in r.get(part, {})], len(group))
                lines.append(f"| {dataset} | {sample} | {size} | {plain} | {offline} | {fusion} | {synthetic} |")
    for dataset in DATASETS:
        for sample in SAMPLES:
            for size in LLMS:
                group = [record for record in records if (record["dataset"], record["sample"]) == (dataset, sample) and llm_part(size) in record]
                if not group:
                    continue
                forms = sorted({str(record[llm_part(size)].get("structured_output")) for record in group})
                lines += [
                    "",
                    f"**{dataset} {sample}, {size}** ({len(group)} seeds summed; structured output: {', '.join(forms)}; "
                    f"wall time per step: {step_seconds(group, llm_part(size))})",
                    "",
                    "| prompt kind | replies | failed | what was read from them | generated tokens/s |",
                    "|---|---|---|---|---|",
                    *kind_rows(group, llm_part(size)),
                ]
    lines.append(BLOCK_END)
    write_section(markdown, results_json, "llm_workflow", records, lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, "LLM-workflow", "llm_workflow", "benchmarks/runs/llm-workflow")
    parser.add_argument("--llm", choices=LLMS, help="the model the endpoint serves now: its parts run (without it, only the LLM-free parts)")
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="the OpenAI-compatible server (serve.sh's default port)")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS)
    parser.add_argument("--samples", nargs="+", choices=tuple(SAMPLES))
    parser.add_argument("--plain_runs_dir", default="benchmarks/runs/few-shot", help="cell folders of the LLM-free parts: few_shot.py's, shared")
    options = parser.parse_args(argv)
    recorded = recorded_cells(Path(options.results_json), "llm_workflow")
    place = Place(REPO_ROOT / options.runs_dir, options.data_root, options.endpoint, REPO_ROOT / options.plain_runs_dir, REPLIES, recorded)
    cells = [cell for cell in grid() if chosen(cell, dataset=options.datasets, sample=options.samples, seed=options.seeds)]
    parts = [PLAIN, OFFLINE] + ([llm_part(options.llm)] if options.llm else [])
    return dispatch(
        options, cells, lambda cell: commands(cell, place), lambda cell, part: finished(cell, place, part),
        lambda: report(place, Path(options.results_md), Path(options.results_json)),
        lambda: run(cells, place, parts, lambda: report(place, Path(options.results_md), Path(options.results_json))),
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
