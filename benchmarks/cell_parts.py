"""What the tables made of cells with several commands each (few_shot.py, llm_workflow.py) share.

A cell is a folder with one lock; each of its parts is one command whose figures, once there, mark
it finished. The runner goes through the cells in order, runs each unfinished part (a train.py part
with a checkpoint resumes with `--resume`), stops at the first failure, and rebuilds the report
after each cell. `around(cell, part)` lets a table prepare and keep what a part needs (reply caches).
"""

import argparse
import os
import shlex
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timezone
from pathlib import Path

from accuracy import REPO_ROOT, accept_ctrl_c, exclusive, machine, read_json, run_logged, run_recorded, shown  # noqa: E402
from results_file import update_results  # noqa: E402

from knowfree.checkpoints import has_checkpoint  # noqa: E402

LOCK_FILE, LOG_FILE = "running.lock", "train.log"
BENCHMARKS = Path(__file__).resolve().parent
SEEDS = (42, 43, 44)


def output_folder(command: list[str]) -> Path:
    """Where a part's command writes: train.py's --output_dir or the workflow's --work_dir."""
    flag = "--work_dir" if "--work_dir" in command else "--output_dir"
    return REPO_ROOT / command[command.index(flag) + 1]


def run_parts(
    cells: Iterable,
    cell_folder: Callable[[object], Path],
    parts: Callable[[object], Mapping[str, list[str]]],
    finished: Callable[[object, str], bool],
    report: Callable[[], None],
    runner=run_logged,
    around: Callable[[object, str], AbstractContextManager] = lambda cell, part: nullcontext(),
) -> int:
    """Run the unfinished parts of `cells` one after another; the first non-zero exit status is returned."""
    for cell in cells:
        folder = cell_folder(cell)
        with exclusive(folder / LOCK_FILE) as taken:
            if not taken:
                print(f"{cell.id}: held by another runner; passed over", flush=True)
                continue
            for part, command in parts(cell).items():
                if finished(cell, part):
                    continue
                if "--output_dir" in command and has_checkpoint(output_folder(command)):
                    command = command + ["--resume"]
                print(f"{cell.id} {part}: running (log: {shown(folder / LOG_FILE)})", flush=True)
                with around(cell, part):
                    returncode = run_recorded(command, folder, runner)
                if returncode:
                    print(f"{cell.id} {part}: exit status {returncode}", flush=True)
                    return returncode
        report()
    return 0


def cell_record(cell, fields: Mapping[str, object], commands: Mapping[str, list[str]], figures: Callable[[object, str], dict | None]) -> dict:
    """A cell's results.json record: its fields, its commands as shell lines, and each finished part's figures."""
    record: dict = {"id": cell.id, **fields, "commands": {part: shlex.join(command) for part, command in commands.items()}}
    for part in commands:
        found = figures(cell, part)
        if found is not None:
            record[part] = found
    return record


def mean_spread(values: list[float], of: int, unit: str = "") -> str:
    """'mean ± population spread (n of N)' for a table cell; '—' when nothing is finished."""
    if not values:
        return "—"
    spread = f" ± {statistics.pstdev(values):.3f}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.3f}{spread} ({len(values)} of {of}{unit})"


def chosen(cell, **choices: Iterable | None) -> bool:
    """Whether `cell` has, for every option given (not None), one of the chosen values."""
    return all(values is None or getattr(cell, name) in values for name, values in choices.items())


def print_listing(cells: Iterable, parts: Callable[[object], Mapping[str, list[str]]], finished: Callable[[object, str], bool]) -> None:
    """`--list`: every part of every cell, its state and its command; survives `--list | head`."""
    lines = [
        f"{cell.id} {part}: {'finished' if finished(cell, part) else 'pending'}\n    {shlex.join(command)}"
        for cell in cells for part, command in parts(cell).items()
    ]  # fmt: skip
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:  # the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def add_common_arguments(parser: argparse.ArgumentParser, what: str, key: str, runs_dir: str) -> None:
    """The options every such table has: the mode, the seeds, where the cells and the data are, the report files."""
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--list", action="store_true", help="every selected cell, what is finished, and its commands")
    mode.add_argument("--run", action="store_true", help="run the unfinished parts of the selected cells, rebuilding the report after each cell")
    mode.add_argument("--report", action="store_true", help=f"rebuild the {what} block of RESULTS.md and the {key!r} key of results.json")
    parser.add_argument("--seeds", nargs="+", type=int, choices=SEEDS)
    parser.add_argument("--runs_dir", default=runs_dir, help="cell folders (relative to the repository root)")
    parser.add_argument("--data_root", default="../shared/data", help="relative to the repository root")
    parser.add_argument("--results_md", default=str(BENCHMARKS / "RESULTS.md"))
    parser.add_argument("--results_json", default=str(BENCHMARKS / "results.json"))


def recorded_cells(results_json: Path, key: str) -> dict[str, dict]:
    """The cell records the committed results.json holds under `key`, by id."""
    return {record["id"]: record for record in read_json(results_json, {}).get(key, {}).get("cells", [])}


def write_section(markdown: Path, results_json: Path, key: str, records: list[dict], lines: list[str]) -> None:
    """The table's block of RESULTS.md (`lines`, markers included) and its key of results.json."""
    section = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(), "cells": records}
    update_results(markdown, results_json, key, section, "\n".join(lines), lines[0], lines[-1])


def dispatch(options: argparse.Namespace, cells: list, parts: Callable[[object], Mapping[str, list[str]]], finished: Callable[[object, str], bool],
             rebuild: Callable[[], None], run: Callable[[], int]) -> int:  # fmt: skip
    """--list, --report or --run, the last with Ctrl-C stopping after the running command's checkpoint."""
    if options.list:
        print_listing(cells, parts, finished)
    elif options.report:
        rebuild()
    else:
        accept_ctrl_c()
        return run()
    return 0
