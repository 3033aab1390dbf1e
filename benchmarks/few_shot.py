"""Very-low-resource table (issue 18): greedy N-way K-shot samples (paper Fig. 4) of Weibo and Resume.

For 5 and 10 shots and three sampling seeds, each cell trains
- KnowFREE on the sample (`train.py --k_shot N --data_seed S`): its test F1;
- the workflow's annotation model (`knowfree-augment workflow --k_shot N --data_seed S` without an LLM:
  KnowFREE on the offline-fusion data of the same sample): its dev F1 is what decides whether the
  synthetic rows it would label carry any target span, and its test F1.

Cells are resumable and never run twice, like `accuracy.py`, whose runner pieces this reuses. The
cell folders are not committed, results.json is: a part that results.json records as finished with
the command it has now counts as finished on a fresh clone too, and the report keeps its figures.

    python benchmarks/few_shot.py --list
    python benchmarks/few_shot.py --run [--datasets weibo] [--shots 5] [--seeds 42]
    python benchmarks/few_shot.py --report
"""

import argparse
import os
import shlex
import statistics
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))

from accuracy import LAUNCH, REPO_ROOT, SETTINGS, accept_ctrl_c, exclusive, machine, read_json, run_logged, run_recorded, shown  # noqa: E402
from results_file import update_results  # noqa: E402

from knowfree.checkpoints import has_checkpoint  # noqa: E402

DATASETS = ("weibo", "resume")
SHOTS = (5, 10)
SEEDS = (42, 43, 44)
BLOCK_START, BLOCK_END = "<!-- few-shot:start -->", "<!-- few-shot:end -->"
PLAIN, WORKFLOW = "knowfree", "workflow"
RESULTS = {PLAIN: Path(PLAIN) / "results.json", WORKFLOW: Path(WORKFLOW) / "annotation-model" / "results.json"}


@dataclass(frozen=True)
class Cell:
    dataset: str
    shots: int
    seed: int

    @property
    def id(self) -> str:
        return f"{self.dataset}-{self.shots}shot-seed{self.seed}"


@dataclass(frozen=True)
class Place:
    """Where the cells live, where the data is, and the cell records the committed results.json holds."""

    runs_dir: Path
    data_root: str
    recorded: Mapping[str, dict] = field(default_factory=dict)


def recorded_cells(results_json: Path) -> dict[str, dict]:
    return {record["id"]: record for record in read_json(results_json, {}).get("few_shot", {}).get("cells", [])}


def grid() -> list[Cell]:
    """Every cell, the first seed of every (data set, shots) first."""
    return [Cell(dataset, shots, seed) for seed in SEEDS for dataset in DATASETS for shots in SHOTS]


def commands(cell: Cell, place: Place) -> dict[str, list[str]]:
    """The two commands of a cell, with the accuracy grid's encoder, threads and embedding setting."""
    sample = ["--k_shot", str(cell.shots), "--data_seed", str(cell.seed)]
    return sample_commands(place.runs_dir / cell.id, str(Path(place.data_root) / cell.dataset), sample)


def sample_commands(folder: Path, data: str, sample: list[str]) -> dict[str, list[str]]:
    """KnowFREE (train.py) and the offline workflow on one sample of `data`, written under `folder`."""
    frozen = ["--freeze_embeddings"] if SETTINGS["freeze_embeddings"] else []
    return {
        PLAIN: [
            *LAUNCH, "--num_cpu_threads_per_process", str(SETTINGS["threads"]), "train.py", "--data", data, *sample,
            "--task", "ner", "--encoder", SETTINGS["encoder"], *frozen, "--output_dir", shown(folder / PLAIN),
        ],
        WORKFLOW: ["knowfree-augment", "workflow", "--data", data, *sample, "--encoder", SETTINGS["encoder"], *frozen, "--work_dir", shown(folder / WORKFLOW)],
    }  # fmt: skip


def part_figures(cell: Cell, place: Place, part: str) -> dict | None:
    """A finished part's figures: from its folder, else from results.json if recorded with today's command."""
    results = read_json(place.runs_dir / cell.id / RESULTS[part], None)
    if results is None:
        record = place.recorded.get(cell.id, {})
        current = record.get("commands", {}).get(part) == shlex.join(commands(cell, place)[part])
        return record.get(part) if current else None
    return {"train_rows": results["train_rows"], "dev_f1": results["dev"]["f1"], "test_f1": results["test"]["f1"],
            "best_step": results["best_step"], "steps": results.get("steps"), "train_seconds": results["train_seconds"]}  # fmt: skip


def run(cells: list[Cell], place: Place, report, runner=run_logged) -> int:
    """Run every unfinished command of the cells, one after another; train.py resumes from its checkpoint."""
    for cell in cells:
        folder = place.runs_dir / cell.id
        with exclusive(folder / "running.lock") as taken:
            if not taken:
                print(f"{cell.id}: held by another runner; passed over", flush=True)
                continue
            for part, command in commands(cell, place).items():
                if part_figures(cell, place, part) is not None:
                    continue
                if part == PLAIN and has_checkpoint(folder / PLAIN):
                    command = command + ["--resume"]
                print(f"{cell.id} {part}: running (log: {shown(folder / 'train.log')})", flush=True)
                returncode = run_recorded(command, folder, runner)
                if returncode:
                    print(f"{cell.id} {part}: exit status {returncode}", flush=True)
                    return returncode
        report()
    return 0


def cell_record(cell: Cell, place: Place) -> dict:
    record: dict = {"id": cell.id, "dataset": cell.dataset, "shots": cell.shots, "seed": cell.seed,
                    "commands": {part: shlex.join(command) for part, command in commands(cell, place).items()}}  # fmt: skip
    for part in RESULTS:
        figures = part_figures(cell, place, part)
        if figures is not None:
            record[part] = figures
    return record


def summary(records: list[dict], part: str, figure: str) -> str:
    values = [record[part][figure] for record in records if part in record]
    if not values:
        return "—"
    spread = f" ± {statistics.pstdev(values):.3f}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.3f}{spread} ({len(values)} of {len(records)} seeds)"


def report(place: Place, markdown: Path, results_json: Path) -> None:
    records = [cell_record(cell, place) for cell in grid()]
    lines = [
        BLOCK_START,
        "## Very low resource: greedy N-way K-shot samples",
        "",
        f"Rebuilt by `python benchmarks/few_shot.py --report` on {datetime.now(timezone.utc).isoformat(timespec='seconds')} (UTC). "
        f"Sampling seeds {', '.join(map(str, SEEDS))} (`--data_seed`); every label gets at least K mentions (all of its mentions where "
        "the train split has fewer: Weibo's GPE.NOM has 8); train.py's default recipe and budget (20 epochs); "
        "mean ± population spread over the finished seeds.",
        "",
        "| data | shots | train rows | KnowFREE test F1 | annotation model dev F1 | annotation model test F1 |",
        "|---|---|---|---|---|---|",
    ]
    for dataset in DATASETS:
        for shots in SHOTS:
            group = [record for record in records if (record["dataset"], record["shots"]) == (dataset, shots)]
            rows = sorted({record[PLAIN]["train_rows"] for record in group if PLAIN in record})
            lines.append(
                f"| {dataset} | {shots} | {', '.join(map(str, rows)) or '—'} | {summary(group, PLAIN, 'test_f1')} "
                f"| {summary(group, WORKFLOW, 'dev_f1')} | {summary(group, WORKFLOW, 'test_f1')} |"
            )
    lines.append(BLOCK_END)
    section = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(), "cells": records}
    update_results(markdown, results_json, "few_shot", section, "\n".join(lines), BLOCK_START, BLOCK_END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--list", action="store_true", help="every selected cell, what is finished, and its commands")
    mode.add_argument("--run", action="store_true", help="run the unfinished commands of the selected cells, rebuilding the report after each cell")
    mode.add_argument("--report", action="store_true", help="rebuild the few-shot block of RESULTS.md and the 'few_shot' key of results.json")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS)
    parser.add_argument("--shots", nargs="+", type=int, choices=SHOTS)
    parser.add_argument("--seeds", nargs="+", type=int, choices=SEEDS)
    parser.add_argument("--runs_dir", default="benchmarks/runs/few-shot", help="cell folders (relative to the repository root)")
    parser.add_argument("--data_root", default="../shared/data", help="relative to the repository root")
    parser.add_argument("--results_md", default=str(BENCHMARKS / "RESULTS.md"))
    parser.add_argument("--results_json", default=str(BENCHMARKS / "results.json"))
    options = parser.parse_args(argv)
    place = Place(REPO_ROOT / options.runs_dir, options.data_root, recorded_cells(Path(options.results_json)))
    cells = [
        cell for cell in grid()
        if (options.datasets is None or cell.dataset in options.datasets) and (options.shots is None or cell.shots in options.shots)
        and (options.seeds is None or cell.seed in options.seeds)
    ]  # fmt: skip

    def rebuild() -> None:
        report(place, Path(options.results_md), Path(options.results_json))

    if options.list:
        lines = []
        for cell in cells:
            for part, command in commands(cell, place).items():
                state = "pending" if part_figures(cell, place, part) is None else "finished"
                lines.append(f"{cell.id} {part}: {state}\n    {shlex.join(command)}")
        try:
            print("\n".join(lines), flush=True)
        except BrokenPipeError:  # `--list | head`: the reader has had enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if options.report:
        rebuild()
        return 0
    accept_ctrl_c()
    return run(cells, place, rebuild)


if __name__ == "__main__":
    sys.exit(main())
