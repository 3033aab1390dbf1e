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
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))

from accuracy import LAUNCH, REPO_ROOT, SETTINGS, read_json, run_logged, shown  # noqa: E402
from cell_parts import SEEDS, add_common_arguments, chosen, dispatch, mean_spread, recorded_cells, run_parts, write_section  # noqa: E402
from cell_parts import cell_record as record_of  # noqa: E402

DATASETS = ("weibo", "resume")
SHOTS = (5, 10)
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


def finished(cell: Cell, place: Place, part: str) -> bool:
    return part_figures(cell, place, part) is not None


def run(cells: list[Cell], place: Place, report, runner=run_logged) -> int:
    """Run every unfinished command of the cells, one after another; train.py resumes from its checkpoint."""
    return run_parts(cells, lambda cell: place.runs_dir / cell.id, lambda cell: commands(cell, place), lambda cell, part: finished(cell, place, part), report, runner)


def cell_record(cell: Cell, place: Place) -> dict:
    return record_of(cell, {"dataset": cell.dataset, "shots": cell.shots, "seed": cell.seed}, commands(cell, place), lambda cell, part: part_figures(cell, place, part))


def summary(records: list[dict], part: str, figure: str) -> str:
    return mean_spread([record[part][figure] for record in records if part in record], len(records), " seeds")


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
    write_section(markdown, results_json, "few_shot", records, lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, "few-shot", "few_shot", "benchmarks/runs/few-shot")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS)
    parser.add_argument("--shots", nargs="+", type=int, choices=SHOTS)
    options = parser.parse_args(argv)
    place = Place(REPO_ROOT / options.runs_dir, options.data_root, recorded_cells(Path(options.results_json), "few_shot"))
    cells = [cell for cell in grid() if chosen(cell, dataset=options.datasets, shots=options.shots, seed=options.seeds)]
    return dispatch(
        options, cells, lambda cell: commands(cell, place), lambda cell, part: finished(cell, place, part),
        lambda: report(place, Path(options.results_md), Path(options.results_json)),
        lambda: run(cells, place, lambda: report(place, Path(options.results_md), Path(options.results_json))),
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
