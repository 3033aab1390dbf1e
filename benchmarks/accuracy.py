"""Accuracy table of issue 7: test span F1 of four models on five Chinese sets at K = 250 and 1000.

Models, all on the same encoder, data, epochs, early stopping and dev selection: the token
classification (BIO) baseline, KnowFREE without local attention, KnowFREE, and KnowFREE trained on the
fusion data of the offline annotator (`knowfree-augment extend` without an LLM, i.e. jieba).

Every cell (dataset, K, model, seed) is one `train.py` run in `benchmarks/runs/<cell_id>/`. A cell is
finished when its `results.json` exists and is never run again; a crashed or interrupted cell is run
again with `--resume` when its checkpoint exists. So the table fills over several sessions, and
sessions on different machines can run disjoint cells in parallel (a lock file keeps two runners in the
same tree off one cell). The report is rebuilt from the cell folders and, for a cell whose folder is
absent (the folders are not committed: a fresh clone, another machine), from the finished record the
committed results.json keeps of it, as long as that record's commands are still the cell's commands.

    python benchmarks/accuracy.py --list                                   # every cell, status, command
    python benchmarks/accuracy.py --run --datasets weibo --k 250 --max_cells 2
    python benchmarks/accuracy.py --report                                 # RESULTS.md + results.json
"""

import argparse
import json
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))

from machine_facts import cpu_model, gpu_models  # noqa: E402
from results_file import update_results, write_atomically  # noqa: E402
from knowfree.checkpoints import drop_resume_state, has_checkpoint  # noqa: E402

# --- the grid ----------------------------------------------------------------------------------------

DATASETS = {  # name: (train.py --task, what the table calls it)
    "weibo": ("ner", "flat NER"),
    "resume": ("ner", "flat NER"),
    "cmeee": ("ner", "nested NER"),
    "pku": ("segmentation", "segmentation"),
    "ud": ("pos", "POS"),
}
KS = (250, 1000)
BASELINE, NO_LOCAL, KNOWFREE, FUSION = "baseline", "knowfree-no-local", "knowfree", "knowfree-fusion"
MODELS = {  # name: (train.py model options, column title)
    BASELINE: (["--model", "token-classification"], "token classification (BIO)"),
    NO_LOCAL: (["--model", "knowfree", "--no_local_attention"], "KnowFREE w/o local attention"),
    KNOWFREE: (["--model", "knowfree"], "KnowFREE"),
    FUSION: (["--model", "knowfree"], "KnowFREE + fusion (offline annotator)"),
}
SEEDS = (42, 43, 44)
MULTI_SEED = {("weibo", 250), ("resume", 250)}  # three seeds here, the first seed elsewhere
SKIPPED = {("cmeee", BASELINE): "nested spans: BIO cannot represent them"}

# One settings block for every cell (the quickstart's): changing it would make the cells incomparable.
SETTINGS = {
    "encoder": "encoders/multilingual-e5-small",
    "freeze_embeddings": True,
    "epochs": 12,
    "patience": 4,
    "batch_size": 8,
    "threads": 2,
    "selection": "dev span F1 at the dev-calibrated global threshold after every epoch; early stopping after `patience` evaluations without improvement, counted once dev F1 is above zero; test F1 of the selected checkpoint at its calibrated threshold (KnowFREE; the baseline's BIO argmax has none)",
    "learning_rates": "train.py's default recipe 2 (encoder 5e-5, other modules 3e-3, 2% warm-up; weight decay by --task; KnowFREE: negatives weighted 0.1, per-(width, label) priors)",
    "fusion_annotator": "offline (jieba), knowfree-augment extend without an LLM",
    "band_width": "the longest training span + 8, at most 32 characters (train.py's default; Resume 32, cmeee 32, where the cap was absent until 2026-11-29 22:00 and they had 66 and 126)",
    "seeds": {"weibo and resume at K = 250": list(SEEDS), "elsewhere": [SEEDS[0]]},
    "spread": "population standard deviation of test F1 over the finished seeds (min and max in results.json)",
}
LAUNCH = ["accelerate", "launch", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]

RECIPE = 2
"""The training recipe the cells run with (train.py's defaults); a recorded cell of another recipe is stale.

Recipe 1 (until 2026-11-29) is kept in `previous_recipe.json` and shown beside every cell."""
PREVIOUS_RECIPE_FILE = BENCHMARKS / "previous_recipe.json"

# --- files -------------------------------------------------------------------------------------------

RESULTS_FILE = "results.json"  # written by train.py once the cell is finished
ATTEMPTS_FILE = "attempts.json"  # this runner's record of every command it ran for the cell
LOG_FILE = "train.log"
LOCK_FILE = "running.lock"
FUSION_READY = "augmentation.json"  # knowfree-augment renames its finished folder into place with it
BLOCK_START, BLOCK_END = "<!-- accuracy:start -->", "<!-- accuracy:end -->"
INTERRUPTED = (130, -signal.SIGINT)  # train.py's exit status after Ctrl-C, or killed by SIGINT

Runner = Callable[[list[str], Path], int]


@dataclass(frozen=True)
class Cell:
    """One training run of the table."""

    dataset: str
    k: int
    model: str
    seed: int

    @property
    def id(self) -> str:
        return f"{self.dataset}-k{self.k}-{self.model}-seed{self.seed}"

    @property
    def skip_reason(self) -> str | None:
        return SKIPPED.get((self.dataset, self.model))


@dataclass(frozen=True)
class Layout:
    """Where cells live and where the data is; `data_root` stays as given so commands read naturally.

    `recorded` maps a cell id to the finished record an earlier report wrote to results.json: the cell
    folders are not committed, so on a fresh clone that record is all that is left of a finished cell."""

    runs_dir: Path
    data_root: str
    recorded: Mapping[str, dict] = field(default_factory=dict)

    def cell_dir(self, cell: Cell) -> Path:
        return self.runs_dir / cell.id

    def fusion_dir(self, dataset: str, k: int) -> Path:
        return self.runs_dir / f"fusion-{dataset}-k{k}"


def seeds_for(dataset: str, k: int) -> tuple[int, ...]:
    """Three seeds where the issue asks for mean and spread, one elsewhere (CPU time)."""
    return SEEDS if (dataset, k) in MULTI_SEED else SEEDS[:1]


def grid() -> list[Cell]:
    """Every cell, in run order: K = 250 first, each K's first seed before the others, so a partial
    run already gives a complete one-seed table."""
    cells = [Cell(dataset, k, model, seed) for k in KS for dataset in DATASETS for model in MODELS for seed in seeds_for(dataset, k)]
    return sorted(cells, key=lambda cell: (KS.index(cell.k), SEEDS.index(cell.seed), list(DATASETS).index(cell.dataset), list(MODELS).index(cell.model)))


def select(cells: list[Cell], datasets: Collection[str] | None = None, ks: Collection[int] | None = None,
           models: Collection[str] | None = None, seeds: Collection[int] | None = None) -> list[Cell]:
    """The cells matching every given filter (None: no filter)."""
    return [
        cell for cell in cells
        if (datasets is None or cell.dataset in datasets) and (ks is None or cell.k in ks)
        and (models is None or cell.model in models) and (seeds is None or cell.seed in seeds)
    ]


# --- commands ----------------------------------------------------------------------------------------


def shown(path: Path) -> str:
    """A path as the commands write it: relative to the repository root (their working folder) when inside it."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def fusion_command(cell: Cell, layout: Layout) -> list[str]:
    """Builds the fusion dataset of (dataset, K) once; every fusion cell of that pair trains on it."""
    source = str(Path(layout.data_root) / cell.dataset)
    return ["knowfree-augment", "extend", "--data", source, "--k", str(cell.k), "--output_dir", shown(layout.fusion_dir(cell.dataset, cell.k))]


def train_command(cell: Cell, layout: Layout) -> list[str]:
    """The exact train.py launch of a cell, settings included."""
    if cell.model == FUSION:
        data = ["--data", shown(layout.fusion_dir(cell.dataset, cell.k)), "--train_split", "fusion"]
    else:
        data = ["--data", str(Path(layout.data_root) / cell.dataset), "--k", str(cell.k)]
    return [
        *LAUNCH, "--num_cpu_threads_per_process", str(SETTINGS["threads"]), "train.py",
        *data, "--task", DATASETS[cell.dataset][0], *MODELS[cell.model][0],
        "--encoder", SETTINGS["encoder"], *(["--freeze_embeddings"] if SETTINGS["freeze_embeddings"] else []),
        "--epochs", str(SETTINGS["epochs"]), "--patience", str(SETTINGS["patience"]), "--batch_size", str(SETTINGS["batch_size"]),
        "--seed", str(cell.seed), "--output_dir", shown(layout.cell_dir(cell)),
    ]


def cell_commands(cell: Cell, layout: Layout) -> list[list[str]]:
    """Everything a cell needs from scratch, as the report records it (nothing for a skipped cell)."""
    if cell.skip_reason:
        return []
    return ([fusion_command(cell, layout)] if cell.model == FUSION else []) + [train_command(cell, layout)]


def recorded_commands(cell: Cell, layout: Layout) -> list[str]:
    """A cell's commands as results.json records them, one shell line each."""
    return [shlex.join(command) for command in cell_commands(cell, layout)]


def next_commands(cell: Cell, layout: Layout) -> list[list[str]]:
    """What `--run` would run now: without fusion data already built, with --resume after a crash."""
    commands = []
    if cell.model == FUSION and not (layout.fusion_dir(cell.dataset, cell.k) / FUSION_READY).exists():
        commands.append(fusion_command(cell, layout))
    resume = ["--resume"] if has_checkpoint(layout.cell_dir(cell)) else []
    return commands + [train_command(cell, layout) + resume]


# --- state -------------------------------------------------------------------------------------------


def recorded_finished(json_path: Path) -> dict[str, dict]:
    """The finished cell records of an earlier report's results.json, by cell id (none when it is absent)."""
    section = read_json(json_path, {}).get("accuracy", {})
    return {record["id"]: record for record in section.get("cells", []) if record["status"] == "finished"}


def recorded_record(cell: Cell, layout: Layout) -> dict | None:
    """The recorded finished record of a cell without its own results.json, if it was made by the commands
    the cell has now; a record from other settings or paths is stale and the cell runs again."""
    record = layout.recorded.get(cell.id)
    if record is None or (layout.cell_dir(cell) / RESULTS_FILE).exists():
        return None
    current = record["commands"] == recorded_commands(cell, layout) and record.get("recipe") == RECIPE
    return record if current else None


def status(cell: Cell, layout: Layout) -> str:
    """finished (train.py wrote results.json, or a report recorded it), skipped (by design) or pending."""
    if cell.skip_reason:
        return "skipped"
    finished = (layout.cell_dir(cell) / RESULTS_FILE).exists() or recorded_record(cell, layout) is not None
    return "finished" if finished else "pending"


def lock_holder(lock: Path) -> str | None:
    """'host pid' of a live runner holding `lock`, or None when it is free or its holder has died.

    A lock from another host cannot be checked and counts as held: delete it by hand if that runner is gone."""
    try:
        host, pid = lock.read_text(encoding="utf-8").split()
    except (OSError, ValueError):
        return None
    if host != socket.gethostname():
        return f"{host} {pid}"
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return f"{host} {pid}"


@contextmanager
def exclusive(lock: Path) -> Iterator[bool]:
    """Hold `lock` for this process if no live runner holds it; yields whether it was taken."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    if lock.exists() and lock_holder(lock) is None:
        lock.unlink(missing_ok=True)
    try:
        descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        yield False
        return
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(f"{socket.gethostname()} {os.getpid()}\n")
    try:
        yield True
    finally:
        lock.unlink(missing_ok=True)


# --- running -----------------------------------------------------------------------------------------


def machine() -> dict:
    """The machine as results need it, without importing torch (so --list and --report stay instant)."""
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    return {
        "platform": platform.platform(),
        "processor": cpu_model(),
        "gpus": gpu_models(),  # train.py (through accelerate) trains on the first one when there is one
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch_version,
        "host": socket.gethostname(),
    }


def accept_ctrl_c() -> None:
    """Make SIGINT interrupt this runner and the commands it starts, as Ctrl-C does in a terminal.

    A runner started in the background by a non-interactive shell (`nohup ... &`) inherits SIGINT
    ignored, and so would every train.py it starts (an ignored signal stays ignored across exec):
    `kill -INT -<process group>` then did nothing, and the only way to stop was to kill a training
    run without its checkpoint. With a handler installed here, children start with the default
    disposition and Python turns SIGINT into KeyboardInterrupt in each of them again."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


class CommandInterrupted(Exception):
    """Ctrl-C reached the runner while a command ran; `returncode` is that command's exit status.

    The command may still have exited 0 (a fusion build that was about done, or one that ignores the
    signal), so the runner stops on the interruption itself, not on the status."""

    def __init__(self, returncode: int):
        super().__init__(f"interrupted (exit status {returncode})")
        self.returncode = returncode


def run_logged(command: list[str], log: Path) -> int:
    """The default runner: the command from the repository root, stdout and stderr appended to `log`."""
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"\n$ {shlex.join(command)}\n")
        handle.flush()
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=handle, stderr=subprocess.STDOUT, env=environment)
        try:
            return process.wait()
        except KeyboardInterrupt:  # the child got the same Ctrl-C and is saving its checkpoint
            raise CommandInterrupted(process.wait()) from None


def record_attempt(folder: Path, command: list[str], started: float, returncode: int) -> None:
    """Append one command's outcome to the cell's attempts.json (resumed cells keep every attempt)."""
    path = folder / ATTEMPTS_FILE
    attempts = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    attempts.append({
        "command": shlex.join(command),
        "started": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(time.time() - started, 1),
        "returncode": returncode,
        "machine": machine(),
    })
    write_atomically(path, json.dumps(attempts, indent=2) + "\n")


def run_cell(cell: Cell, layout: Layout, runner: Runner) -> int:
    """Run a pending cell's next commands in order; the first failure stops it and is returned."""
    folder = layout.cell_dir(cell)
    folder.mkdir(parents=True, exist_ok=True)
    for command in next_commands(cell, layout):
        if command[0] == "knowfree-augment":
            returncode = build_fusion(command, cell, layout, runner)
        else:
            returncode = run_recorded(command, folder, runner)
        if returncode:
            return returncode
    return 0


def run_recorded(command: list[str], folder: Path, runner: Runner) -> int:
    """Run one command of a cell and record the attempt; after Ctrl-C, INTERRUPTED[0] whatever the
    command's own exit status, so that the cell goes no further and the run stops."""
    started = time.time()
    try:
        returncode = runner(command, folder / LOG_FILE)
    except CommandInterrupted as interruption:
        record_attempt(folder, command, started, interruption.returncode)
        return INTERRUPTED[0]
    record_attempt(folder, command, started, returncode)
    return returncode


def build_fusion(command: list[str], cell: Cell, layout: Layout, runner: Runner) -> int:
    """Build the (dataset, K) fusion data unless a parallel runner did it meanwhile; wait while one is at it."""
    target = layout.fusion_dir(cell.dataset, cell.k)
    lock, folder, waiting = target.with_name(target.name + ".lock"), layout.cell_dir(cell), False
    while True:
        with exclusive(lock) as taken:
            if (target / FUSION_READY).exists():
                return 0
            if taken:
                return run_recorded(command, folder, runner)
        if not waiting:
            print(f"{shown(target)}: being built by runner {lock_holder(lock)}; waiting", flush=True)
            waiting = True
        time.sleep(5)


def run_pending(cells: list[Cell], layout: Layout, runner: Runner = run_logged, max_cells: int | None = None,
                after_each: Callable[[], None] = lambda: None) -> dict[str, int]:
    """Run the pending cells one after another (at most `max_cells`); returns each attempted cell's exit status.

    A cell another live runner holds is passed over; Ctrl-C (exit status 130) stops after that cell."""
    outcomes: dict[str, int] = {}
    for cell in cells:
        if max_cells is not None and len(outcomes) >= max_cells:
            break
        if status(cell, layout) != "pending":
            continue
        with exclusive(layout.cell_dir(cell) / LOCK_FILE) as taken:
            if not taken:
                print(f"{cell.id}: held by runner {lock_holder(layout.cell_dir(cell) / LOCK_FILE)}; passed over", flush=True)
                continue
            print(f"{cell.id}: running (log: {shown(layout.cell_dir(cell) / LOG_FILE)})", flush=True)
            outcomes[cell.id] = run_cell(cell, layout, runner)
            finished = status(cell, layout) == "finished"
            if finished:
                drop_resume_state(layout.cell_dir(cell))
        print(f"{cell.id}: {'finished' if finished else f'not finished, exit status {outcomes[cell.id]}'}", flush=True)
        after_each()
        if outcomes[cell.id] in INTERRUPTED:
            break
    return outcomes


# --- report ------------------------------------------------------------------------------------------


def read_json(path: Path, default: object) -> object:
    """A JSON file's content, or `default` when the file is absent."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default


def cell_record(cell: Cell, layout: Layout) -> dict:
    """Everything results.json holds about one cell, read from its folder (or kept from the last report)."""
    recorded = recorded_record(cell, layout)
    if recorded is not None:
        return recorded
    folder = layout.cell_dir(cell)
    record = {
        "id": cell.id, "dataset": cell.dataset, "task": DATASETS[cell.dataset][1], "k": cell.k, "model": cell.model, "seed": cell.seed,
        "status": status(cell, layout), "reason": cell.skip_reason, "recipe": RECIPE,
        "commands": recorded_commands(cell, layout),
    }
    attempts = read_json(folder / ATTEMPTS_FILE, [])
    record["attempts"] = len(attempts)
    record["wall_seconds"] = round(sum(attempt["wall_seconds"] for attempt in attempts), 1) if attempts else None
    if record["status"] != "finished":
        return record
    results = read_json(folder / RESULTS_FILE, {})
    test = results["test"]
    record.update({
        "test": {"precision": test["precision"], "recall": test["recall"], "f1": test["f1"]},
        "dev_f1": results["dev"]["f1"],
        "best_step": results["best_step"],
        "steps": results.get("steps"),
        "stopped_by": results.get("stopped_by"),
        "thresholds": threshold_summary(results.get("thresholds")),
        "train_seconds": results["train_seconds"],
        "train_rows": results["train_rows"],
        "finished_at": datetime.fromtimestamp((folder / RESULTS_FILE).stat().st_mtime, timezone.utc).isoformat(timespec="seconds"),
        "machine": attempts[-1]["machine"] if attempts else None,
    })
    return record


def threshold_summary(record: dict | None) -> dict | None:
    """The thresholds a cell's model predicts with and the dev/test F1 of each way of choosing them."""
    if not record:
        return None
    chosen = record[record["chosen"]]
    return {
        "chosen": record["chosen"],
        "threshold": chosen["threshold"],
        "label_thresholds": chosen["label_thresholds"],
        **{f"{name}_{split}_f1": record[name][f"{split}_f1"] for name in ("fixed", "global", "per_label") for split in ("dev", "test")},
    }


def previous_recipe() -> dict:
    """Recipe 1's finished cells by id (test F1, dev F1, best step), to show beside the new ones."""
    return read_json(PREVIOUS_RECIPE_FILE, {"cells": {}})["cells"]


def aggregate(records: list[dict], previous: Mapping[str, dict]) -> list[dict]:
    """One table row per (dataset, K, model): mean and population std (plus min/max) of test F1 over finished seeds."""
    rows = []
    for k in KS:
        for dataset in DATASETS:
            for model in MODELS:
                group = [record for record in records if (record["dataset"], record["k"], record["model"]) == (dataset, k, model)]
                if not group:
                    continue
                finished = [record for record in group if record["status"] == "finished"]
                scores = [record["test"]["f1"] for record in finished]
                old = [previous[record["id"]]["test_f1"] for record in group if record["id"] in previous]
                rows.append({
                    "dataset": dataset, "k": k, "model": model,
                    "status": group[0]["status"] if group[0]["status"] == "skipped" else ("finished" if len(finished) == len(group) else "pending"),
                    "reason": group[0]["reason"],
                    "seeds": [record["seed"] for record in finished],
                    "seeds_planned": len(group),
                    "f1_mean": statistics.fmean(scores) if scores else None,
                    "f1_std": statistics.pstdev(scores) if len(scores) > 1 else None,
                    "f1_min": min(scores) if scores else None,
                    "f1_max": max(scores) if scores else None,
                    "precision_mean": statistics.fmean(record["test"]["precision"] for record in finished) if finished else None,
                    "recall_mean": statistics.fmean(record["test"]["recall"] for record in finished) if finished else None,
                    "recipe1_f1_mean": statistics.fmean(old) if old else None,
                    "recipe1_f1_std": statistics.pstdev(old) if len(old) > 1 else None,
                })
    return rows


def accuracy_section(cells: list[Cell], layout: Layout) -> dict:
    """The "accuracy" value of results.json: settings, machine, date, every cell, the aggregated table."""
    previous = previous_recipe()
    records = [{**cell_record(cell, layout), "recipe1": previous.get(cell.id)} for cell in cells]
    return {
        "recipe": RECIPE,
        "settings": SETTINGS,
        "machine": machine(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "runs_dir": shown(layout.runs_dir),
        "cells": records,
        "table": aggregate(records, previous),
        "pending": [record["id"] for record in records if record["status"] == "pending"],
    }


def table_cell(row: dict) -> str:
    if row["status"] == "skipped":
        return f"skipped: {row['reason']}"
    n = len(row["seeds"])
    old = ""
    if row["recipe1_f1_mean"] is not None:
        old_spread = f" ± {row['recipe1_f1_std']:.3f}" if row["recipe1_f1_std"] is not None else ""
        old = f"recipe 1: {row['recipe1_f1_mean']:.3f}{old_spread}"
    if not n:
        return f"— ({old})" if old else "—"
    seeds = f"{n} seed{'s' if n > 1 else ''}" if n == row["seeds_planned"] else f"{n} of {row['seeds_planned']} seeds"
    spread = f" ± {row['f1_std']:.3f}" if row["f1_std"] is not None else ""
    return f"{row['f1_mean']:.3f}{spread} ({seeds}{'; ' + old if old else ''})"


def figure(value: float | None, pattern: str) -> str:
    return "—" if value is None else format(value, pattern)


def run_machines(records: list[dict]) -> list[str]:
    """Distinct machines the finished cells ran on, as one line each."""
    lines = {
        f"{m['processor']}, {m['cpu_count']} CPUs ({m['usable_cpus']} usable)"
        + (f", GPU {' + '.join(m['gpus'])}" if m.get("gpus") else "")
        + f", {m['platform']}, Python {m['python']}, torch {m['torch']}"
        for m in (record.get("machine") for record in records) if m
    }
    return sorted(lines)


def ran_on(facts: dict | None) -> str:
    """A cell's machine in a word or two: its GPU when it had one (times are then not CPU times), else CPU."""
    if not facts:
        return ""
    return f"GPU ({facts['gpus'][0]})" if facts.get("gpus") else "CPU"


def markdown_block(section: dict) -> str:
    """The RESULTS.md text between the accuracy markers."""
    settings, records = section["settings"], section["cells"]
    machines = run_machines(records)
    lines = [
        BLOCK_START,
        "## Accuracy: test span F1",
        "",
        f"Rebuilt by `python benchmarks/accuracy.py --report` on {section['date']} (UTC) from `{section['runs_dir']}/`.",
        f"Cells ran on: {'; '.join(machines) if machines else 'none finished yet'}.",
        "",
        f"Same settings in every cell: encoder `{settings['encoder']}`{' with a frozen embedding table' if settings['freeze_embeddings'] else ''}, "
        f"batch {settings['batch_size']}, at most {settings['epochs']} epochs, {settings['threads']} CPU threads; {settings['selection']}; "
        f"learning rates: {settings['learning_rates']}. KnowFREE's band width: {settings['band_width']}. Fusion: {settings['fusion_annotator']}. "
        f"Seeds: {', '.join(map(str, SEEDS))} for weibo and resume at K = 250, {SEEDS[0]} elsewhere.",
        f"Cells read `F1 mean ± spread (n seeds; recipe 1: its mean ± spread)`, spread = {settings['spread']}; one seed has no spread; "
        f"`—` is pending under recipe {RECIPE}, with recipe 1's figure beside it where that ran.",
    ]
    for k in KS:
        lines += ["", f"### K = {k}", "", "| data | task | " + " | ".join(MODELS[model][1] for model in MODELS) + " |", "|---|---|" + "---|" * len(MODELS)]
        for dataset in DATASETS:
            row = {entry["model"]: entry for entry in section["table"] if (entry["dataset"], entry["k"]) == (dataset, k)}
            if row:
                lines.append(f"| {dataset} | {DATASETS[dataset][1]} | " + " | ".join(table_cell(row[model]) if model in row else "" for model in MODELS) + " |")
    pending, runnable = section["pending"], [record for record in records if record["status"] != "skipped"]
    lines += ["", f"**Pending: {len(pending)} of {len(runnable)} runnable cells** ({'none' if not pending else ', '.join(pending)})."]
    lines += [
        "", "### Every cell", "",
        "`train s`: train.py's `train_seconds` (training loop with the dev evaluations, last session only when resumed); "
        "`wall s`: every command the runner ran for the cell (fusion data included, crashed attempts too); "
        "`ran on`: the machine of the cell's last command. Times on a GPU are not comparable with CPU times; F1 is, up to seed noise (same commands and settings, but CUDA draws other random numbers than the CPU).",
        "",
        "`best step`: the dev-selected step of the steps run; `threshold`: the decision threshold calibrated on dev "
        "(per-label values in results.json); `recipe 1`: test F1 and best step of the same cell under the previous recipe "
        "(`benchmarks/previous_recipe.json`).",
        "",
        "| cell | status | test P | test R | test F1 | recipe 1 F1 | dev F1 | best step | recipe 1 best step | threshold | train rows | train s | wall s | ran on | command |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for record in records:
        test, old = record.get("test", {}), record.get("recipe1") or {}
        state = f"skipped: {record['reason']}" if record["status"] == "skipped" else record["status"]
        command = f"`{' && '.join(record['commands'])}`" if record["commands"] else ""
        best_step = f"{record['best_step']} of {record['steps']}" if record.get("steps") else figure(record.get("best_step"), "d")
        threshold = figure((record.get("thresholds") or {}).get("threshold"), ".2f")
        lines.append(
            f"| {record['id']} | {state} | {figure(test.get('precision'), '.3f')} | {figure(test.get('recall'), '.3f')} | {figure(test.get('f1'), '.3f')} "
            f"| {figure(old.get('test_f1'), '.3f')} | {figure(record.get('dev_f1'), '.3f')} | {best_step} | {figure(old.get('best_step'), 'd')} | {threshold} "
            f"| {figure(record.get('train_rows'), 'd')} "
            f"| {figure(record.get('train_seconds'), '.0f')} | {figure(record['wall_seconds'], '.0f')} | {ran_on(record.get('machine'))} | {command} |"
        )
    lines.append(BLOCK_END)
    return "\n".join(lines)


def write_report(section: dict, markdown_path: Path, json_path: Path) -> None:
    """Replace the accuracy block of RESULTS.md and the "accuracy" key of results.json, keeping the rest."""
    update_results(markdown_path, json_path, "accuracy", section, markdown_block(section), BLOCK_START, BLOCK_END)


# --- command line ------------------------------------------------------------------------------------


def listing(cells: list[Cell], layout: Layout) -> str:
    """`--list`: each cell's id and status, then the exact commands `--run` would run for it now."""
    lines, counts = [], {"finished": 0, "pending": 0, "skipped": 0}
    for cell in cells:
        state = status(cell, layout)
        counts[state] += 1
        if state == "skipped":
            lines.append(f"{cell.id}  skipped: {cell.skip_reason}")
            continue
        holder = lock_holder(layout.cell_dir(cell) / LOCK_FILE) if state == "pending" else None
        lines.append(f"{cell.id}  {state}" + (f" (running: {holder})" if holder else ""))
        commands = cell_commands(cell, layout) if state == "finished" else next_commands(cell, layout)
        lines += [f"    {shlex.join(command)}" for command in commands]
    lines.append(f"{len(cells)} cells: {counts['finished']} finished, {counts['pending']} pending, {counts['skipped']} skipped")
    return "\n".join(lines)


def missing_inputs(cells: list[Cell], layout: Layout) -> list[str]:
    """The encoder and data folders pending cells need but that are absent."""
    needed = {SETTINGS["encoder"]} | {str(Path(layout.data_root) / cell.dataset) for cell in cells if status(cell, layout) == "pending"}
    return sorted(path for path in needed if not (REPO_ROOT / path).exists())


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Accuracy table: test span F1 of the BIO baseline, KnowFREE without local attention, KnowFREE and "
            "KnowFREE + offline fusion on weibo, resume, cmeee, pku and ud at K = 250 and 1000. Each cell is one "
            "train.py run in RUNS_DIR/<cell_id>/, resumable; finished cells are never run again."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--list", action="store_true", help="print every selected cell, its status and the exact commands it needs")
    mode.add_argument("--run", action="store_true", help="run the selected pending cells one after another, then rebuild the report after each")
    mode.add_argument("--report", action="store_true", help="rebuild RESULTS.md (accuracy block) and results.json ('accuracy' key) from the finished cells")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), help="only these data sets")
    parser.add_argument("--k", nargs="+", type=int, choices=KS, help="only these K")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), help="only these models")
    parser.add_argument("--seeds", nargs="+", type=int, choices=SEEDS, help="only these seeds")
    parser.add_argument("--max_cells", type=int, help="with --run: attempt at most this many pending cells")
    parser.add_argument("--runs_dir", default="benchmarks/runs", help="cell folders (relative to the repository root)")
    parser.add_argument("--data_root", default="../shared/data", help="folder of the five data sets (relative to the repository root)")
    parser.add_argument("--results_md", default=str(BENCHMARKS / "RESULTS.md"))
    parser.add_argument("--results_json", default=str(BENCHMARKS / "results.json"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, runner: Runner = run_logged) -> int:
    options = parse_arguments(argv)
    layout = Layout(REPO_ROOT / options.runs_dir, options.data_root, recorded_finished(Path(options.results_json)))
    cells = select(grid(), options.datasets, options.k, options.models, options.seeds)

    def report() -> None:  # always the whole grid, whatever the filters
        write_report(accuracy_section(grid(), layout), Path(options.results_md), Path(options.results_json))

    if options.list:
        try:
            print(listing(cells, layout), flush=True)
        except BrokenPipeError:  # `--list | head`: the reader has had enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if options.report:
        report()
        print(f"wrote the accuracy block of {options.results_md} and the 'accuracy' key of {options.results_json}")
        return 0
    missing = missing_inputs(cells, layout)
    if missing:
        print("missing (relative to the repository root): " + ", ".join(missing), file=sys.stderr)
        return 2
    accept_ctrl_c()
    outcomes = run_pending(cells, layout, runner, options.max_cells, after_each=report)
    failed = {cell_id: code for cell_id, code in outcomes.items() if code}
    print(f"{len(outcomes) - len(failed)} of {len(outcomes)} attempted cells finished" + (f"; failed: {failed}" if failed else ""))
    if any(code in INTERRUPTED for code in failed.values()):
        return INTERRUPTED[0]
    return int(bool(failed))


if __name__ == "__main__":
    sys.exit(main())
