"""benchmarks/accuracy.py without training: the cell grid, the commands, --list, the report built from fake
finished cells, and resumability through a fake command runner."""

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import accuracy  # noqa: E402
from accuracy import Cell, Layout  # noqa: E402

SPEED_BLOCK = "<!-- speed:start -->\n## Speed\nfigures of the other helper\n<!-- speed:end -->"


@pytest.fixture
def layout(tmp_path) -> Layout:
    return Layout(tmp_path / "runs", "../shared/data")


@pytest.fixture(autouse=True)
def no_previous_recipe(tmp_path, monkeypatch):
    """Reports built here compare with an empty recipe-1 file unless a test writes one."""
    monkeypatch.setattr(accuracy, "PREVIOUS_RECIPE_FILE", tmp_path / "previous_recipe.json")


def option_value(command: list[str], option: str) -> str:
    return command[command.index(option) + 1]


def finish(layout: Layout, cell: Cell, f1: float, precision: float = 0.6, recall: float = 0.5, train_seconds: float = 100.0) -> None:
    """What train.py leaves in a finished cell folder, reduced to what the report reads."""
    folder = layout.cell_dir(cell)
    folder.mkdir(parents=True, exist_ok=True)
    results = {
        "test": {"precision": precision, "recall": recall, "f1": f1, "per_label": {}},
        "dev": {"precision": 0.7, "recall": 0.6, "f1": 0.65},
        "best_step": 96, "train_seconds": train_seconds, "train_rows": cell.k, "history": [],
    }
    (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")


def crash_with_checkpoint(layout: Layout, cell: Cell) -> None:
    checkpoint = layout.cell_dir(cell) / "checkpoint"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}", encoding="utf-8")


class FakeRunner:
    """Records commands; 'trains' by writing results.json (F1 0.5) and 'augments' by writing the fusion folder."""

    def __init__(self, layout: Layout, returncode: int = 0):
        self.layout, self.returncode, self.commands = layout, returncode, []

    def __call__(self, command: list[str], log: Path) -> int:
        self.commands.append(command)
        log.write_text("fake\n", encoding="utf-8")
        output = REPO_ROOT / option_value(command, "--output_dir")
        if self.returncode:
            return self.returncode
        output.mkdir(parents=True, exist_ok=True)
        if command[0] == "knowfree-augment":
            (output / accuracy.FUSION_READY).write_text("{}", encoding="utf-8")
        else:
            (output / "results.json").write_text(json.dumps({
                "test": {"precision": 0.5, "recall": 0.5, "f1": 0.5}, "dev": {"f1": 0.5}, "best_step": 1, "train_seconds": 1.0, "train_rows": 250,
            }), encoding="utf-8")
        return 0


# --- the grid and its commands -----------------------------------------------------------------------


def test_grid_counts_seeds_and_the_nested_baseline_skip():
    cells = accuracy.grid()
    assert len(cells) == 5 * 2 * 4 + 2 * 4 * 2  # one seed per (data, K, model), two more at K = 250 on weibo and resume
    assert len({cell.id for cell in cells}) == len(cells)
    skipped = [cell for cell in cells if cell.skip_reason]
    assert {cell.id for cell in skipped} == {"cmeee-k250-baseline-seed42", "cmeee-k1000-baseline-seed42"}
    assert skipped[0].skip_reason == "nested spans: BIO cannot represent them"
    for cell in cells:
        expected = {42, 43, 44} if (cell.dataset, cell.k) in {("weibo", 250), ("resume", 250)} else {42}
        assert {other.seed for other in cells if (other.dataset, other.k, other.model) == (cell.dataset, cell.k, cell.model)} == expected
    assert cells[0].id == "weibo-k250-baseline-seed42"
    first_other_seed = next(index for index, cell in enumerate(cells) if cell.seed != 42)
    assert all(cell.k == 250 and cell.seed == 42 for cell in cells[:first_other_seed])  # a one-seed K = 250 table comes first


def test_filters_select_cells():
    cells = accuracy.select(accuracy.grid(), datasets=["weibo"], ks=[250], models=["knowfree"])
    assert [cell.id for cell in cells] == [f"weibo-k250-knowfree-seed{seed}" for seed in (42, 43, 44)]
    assert len(accuracy.select(accuracy.grid(), seeds=[43])) == 8


def test_train_commands_share_the_settings_and_differ_by_model(layout):
    commands = {model: accuracy.train_command(Cell("pku", 1000, model, 42), layout) for model in accuracy.MODELS}
    for model, command in commands.items():
        assert command[:2] == ["accelerate", "launch"] and "train.py" in command
        assert option_value(command, "--task") == "segmentation"
        assert (option_value(command, "--epochs"), option_value(command, "--patience"), option_value(command, "--batch_size")) == ("12", "4", "8")
        assert option_value(command, "--encoder") == "encoders/multilingual-e5-small" and "--freeze_embeddings" in command
        assert option_value(command, "--output_dir") == str(layout.runs_dir / f"pku-k1000-{model}-seed42")
    assert option_value(commands["baseline"], "--model") == "token-classification"
    assert "--no_local_attention" in commands["knowfree-no-local"] and "--no_local_attention" not in commands["knowfree"]
    assert option_value(commands["knowfree"], "--data") == "../shared/data/pku" and option_value(commands["knowfree"], "--k") == "1000"
    fusion = commands["knowfree-fusion"]
    assert option_value(fusion, "--data") == str(layout.fusion_dir("pku", 1000)) and option_value(fusion, "--train_split") == "fusion"
    assert accuracy.fusion_command(Cell("pku", 1000, "knowfree-fusion", 42), layout)[:2] == ["knowfree-augment", "extend"]


def test_commands_parse_with_the_real_command_lines(layout):
    """accelerate launch, train.py and knowfree-augment accept every command as written (nothing runs)."""
    from accelerate.commands.launch import launch_command_parser

    from knowfree import training as train
    from augment.cli import parse_args as augment_arguments

    for cell in accuracy.select(accuracy.grid(), seeds=[42], ks=[250]):
        for command in accuracy.cell_commands(cell, layout):
            if command[0] == "knowfree-augment":
                assert augment_arguments(command[1:]).k == cell.k
                continue
            launch = launch_command_parser().parse_args(command[2:])
            assert (launch.training_script, launch.num_processes, launch.num_cpu_threads_per_process) == ("train.py", 1, 2)
            args = train.parse_args(launch.training_script_args)
            assert (args.seed, args.epochs, args.patience, args.batch_size, args.freeze_embeddings) == (42, 12, 4, 8, True)
            assert args.no_local_attention == (cell.model == "knowfree-no-local")


def test_commands_inside_the_repository_are_relative_to_it():
    command = accuracy.train_command(Cell("ud", 250, "knowfree", 42), Layout(REPO_ROOT / "benchmarks" / "runs", "../shared/data"))
    assert option_value(command, "--output_dir") == "benchmarks/runs/ud-k250-knowfree-seed42"


# --- --list ------------------------------------------------------------------------------------------


def test_list_prints_status_and_the_commands_run_would_run(tmp_path, capsys):
    runs = tmp_path / "runs"
    layout = Layout(runs, "../shared/data")
    finish(layout, Cell("weibo", 250, "knowfree", 42), 0.5)
    crash_with_checkpoint(layout, Cell("weibo", 250, "baseline", 42))
    assert accuracy.main(["--list", "--runs_dir", str(runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "56 cells: 1 finished, 53 pending, 2 skipped"
    assert "weibo-k250-knowfree-seed42  finished" in lines
    assert "cmeee-k1000-baseline-seed42  skipped: nested spans: BIO cannot represent them" in lines
    resumed = lines[lines.index("weibo-k250-baseline-seed42  pending") + 1]
    assert resumed.strip().startswith("accelerate launch") and resumed.endswith("--resume")
    fusion = lines.index("resume-k250-knowfree-fusion-seed42  pending")
    assert lines[fusion + 1].strip().startswith("knowfree-augment extend --data ../shared/data/resume --k 250")


def test_list_filters(tmp_path, capsys):
    accuracy.main(["--list", "--runs_dir", str(tmp_path), "--datasets", "resume", "--k", "250", "--models", "baseline"])
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if not line.startswith(" ")] == [f"resume-k250-baseline-seed{seed}  pending" for seed in (42, 43, 44)] + [
        "3 cells: 0 finished, 3 pending, 0 skipped"
    ]


# --- report ------------------------------------------------------------------------------------------


def test_aggregate_mean_and_population_spread(layout):
    for seed, f1 in zip((42, 43, 44), (0.4, 0.5, 0.6)):
        finish(layout, Cell("weibo", 250, "knowfree", seed), f1)
    for seed, f1 in zip((42, 43), (0.3, 0.5)):
        finish(layout, Cell("resume", 250, "knowfree", seed), f1)
    finish(layout, Cell("ud", 1000, "baseline", 42), 0.9)
    rows = {(row["dataset"], row["k"], row["model"]): row for row in accuracy.accuracy_section(accuracy.grid(), layout)["table"]}
    weibo = rows["weibo", 250, "knowfree"]
    assert weibo["status"] == "finished" and weibo["seeds"] == [42, 43, 44]
    assert weibo["f1_mean"] == pytest.approx(0.5) and weibo["f1_std"] == pytest.approx(statistics.pstdev([0.4, 0.5, 0.6]))
    assert (weibo["f1_min"], weibo["f1_max"]) == (0.4, 0.6)
    assert accuracy.table_cell(weibo) == "0.500 ± 0.082 (3 seeds)"
    resume = rows["resume", 250, "knowfree"]
    assert resume["status"] == "pending" and accuracy.table_cell(resume) == "0.400 ± 0.100 (2 of 3 seeds)"
    ud = rows["ud", 1000, "baseline"]
    assert ud["f1_std"] is None and accuracy.table_cell(ud) == "0.900 (1 seed)"
    assert accuracy.table_cell(rows["pku", 250, "knowfree"]) == "—"
    assert accuracy.table_cell(rows["cmeee", 250, "baseline"]) == "skipped: nested spans: BIO cannot represent them"


def test_report_writes_both_files_and_keeps_the_speed_part(tmp_path, layout):
    finish(layout, Cell("weibo", 250, "knowfree", 42), 0.47, precision=0.66, recall=0.36, train_seconds=660.4)
    markdown, results = tmp_path / "RESULTS.md", tmp_path / "results.json"
    markdown.write_text(f"# Results\n\n{SPEED_BLOCK}\n", encoding="utf-8")
    results.write_text(json.dumps({"speed": {"ratio": 1.2}}), encoding="utf-8")
    for _ in range(2):  # a second report replaces the block instead of adding one
        assert accuracy.main(["--report", "--runs_dir", str(layout.runs_dir), "--results_md", str(markdown), "--results_json", str(results)]) == 0
    document = markdown.read_text(encoding="utf-8")
    assert SPEED_BLOCK in document and document.count(accuracy.BLOCK_START) == 1 and document.count(accuracy.BLOCK_END) == 1
    assert "### K = 250" in document and "### K = 1000" in document
    assert "| weibo | flat NER | — | — | 0.470 (1 of 3 seeds) | — |" in document
    assert "| cmeee | nested NER | skipped: nested spans: BIO cannot represent them |" in document
    assert "**Pending: 53 of 54 runnable cells**" in document
    row = next(line for line in document.splitlines() if line.startswith("| weibo-k250-knowfree-seed42 |"))
    assert "| finished | 0.660 | 0.360 | 0.470 | — | 0.650 | 96 | — | — | 250 | 660 |" in row and "--output_dir" in row
    saved = json.loads(results.read_text(encoding="utf-8"))
    assert saved["speed"] == {"ratio": 1.2}
    section = saved["accuracy"]
    assert {"settings", "machine", "date", "cells", "table", "pending"} <= set(section)
    assert section["settings"]["epochs"] == 12 and section["machine"]["cpu_count"] >= 1 and section["machine"]["torch"]
    cell = next(record for record in section["cells"] if record["id"] == "weibo-k250-knowfree-seed42")
    assert cell["test"] == {"precision": 0.66, "recall": 0.36, "f1": 0.47}
    assert (cell["dev_f1"], cell["best_step"], cell["train_seconds"], cell["train_rows"]) == (0.65, 96, 660.4, 250)
    assert cell["commands"][0].startswith("accelerate launch")
    assert len(section["pending"]) == 53


def test_the_report_shows_recipe_1_beside_each_cell(layout):
    accuracy.PREVIOUS_RECIPE_FILE.write_text(json.dumps({"cells": {
        f"weibo-k250-knowfree-seed{seed}": {"test_f1": f1, "best_step": 384} for seed, f1 in ((42, 0.45), (43, 0.47), (44, 0.43))
    }}), encoding="utf-8")  # fmt: skip
    for seed, f1 in zip((42, 43, 44), (0.55, 0.56, 0.57)):
        finish(layout, Cell("weibo", 250, "knowfree", seed), f1)
    section = accuracy.accuracy_section(accuracy.grid(), layout)
    row = next(row for row in section["table"] if (row["dataset"], row["k"], row["model"]) == ("weibo", 250, "knowfree"))
    assert row["recipe1_f1_mean"] == pytest.approx(0.45) and row["recipe1_f1_std"] == pytest.approx(statistics.pstdev([0.45, 0.47, 0.43]))
    assert accuracy.table_cell(row) == "0.560 ± 0.008 (3 seeds; recipe 1: 0.450 ± 0.016)"
    pending = next(row for row in section["table"] if (row["dataset"], row["k"], row["model"]) == ("weibo", 250, "baseline"))
    assert accuracy.table_cell(pending) == "—"
    accuracy.PREVIOUS_RECIPE_FILE.write_text(json.dumps({"cells": {"weibo-k250-baseline-seed42": {"test_f1": 0.32, "best_step": 384}}}), encoding="utf-8")
    pending = next(row for row in accuracy.accuracy_section(accuracy.grid(), layout)["table"] if (row["dataset"], row["k"], row["model"]) == ("weibo", 250, "baseline"))
    assert accuracy.table_cell(pending) == "— (recipe 1: 0.320)"
    line = next(line for line in accuracy.markdown_block(section).splitlines() if line.startswith("| weibo-k250-knowfree-seed43 |"))
    assert "| 0.560 | 0.470 | 0.650 | 96 | 384 |" in line


def test_a_fresh_clone_keeps_the_finished_cells_its_committed_results_json_records(tmp_path, layout):
    """The cell folders are not committed: the report's own record of a finished cell stands in for it, so a
    fresh clone neither runs the cell again nor drops it from the next report."""
    markdown, results = tmp_path / "RESULTS.md", tmp_path / "results.json"
    report = ["--report", "--runs_dir", str(layout.runs_dir), "--results_md", str(markdown), "--results_json", str(results)]
    kept, other = Cell("ud", 1000, "knowfree", 42), Cell("ud", 1000, "baseline", 42)
    finish(layout, kept, 0.87, train_seconds=1730.0)
    assert accuracy.main(report) == 0
    before = next(record for record in json.loads(results.read_text(encoding="utf-8"))["accuracy"]["cells"] if record["id"] == kept.id)
    shutil.rmtree(layout.runs_dir)  # the clone has results.json but no cell folders
    clone = Layout(layout.runs_dir, layout.data_root, accuracy.recorded_finished(results))
    assert accuracy.status(kept, clone) == "finished" and accuracy.status(other, clone) == "pending"
    runner = FakeRunner(clone)
    assert accuracy.run_pending([kept, other], clone, runner) == {other.id: 0}
    assert [option_value(command, "--output_dir") for command in runner.commands] == [str(clone.cell_dir(other))]
    assert accuracy.main(report) == 0
    cells = {record["id"]: record for record in json.loads(results.read_text(encoding="utf-8"))["accuracy"]["cells"]}
    assert cells[kept.id] == before
    assert cells[other.id]["status"] == "finished" and cells[other.id]["test"]["f1"] == 0.5
    assert "| ud | POS | 0.500 (1 seed) | — | 0.870 (1 seed) | — |" in markdown.read_text(encoding="utf-8")


def test_a_recorded_cell_made_by_other_commands_runs_again(tmp_path, layout):
    """A record whose commands differ from the cell's commands now (other settings or data) is stale."""
    cell = Cell("pku", 1000, "knowfree", 42)
    record = {"id": cell.id, "status": "finished", "recipe": accuracy.RECIPE, "commands": [accuracy.shlex.join(accuracy.train_command(cell, Layout(layout.runs_dir, "elsewhere")))]}
    assert accuracy.status(cell, Layout(layout.runs_dir, layout.data_root, {cell.id: record})) == "pending"
    record["commands"] = [accuracy.shlex.join(command) for command in accuracy.cell_commands(cell, layout)]
    assert accuracy.status(cell, Layout(layout.runs_dir, layout.data_root, {cell.id: record})) == "finished"
    # the same commands under an earlier recipe (train.py's defaults then) are stale too
    assert accuracy.status(cell, Layout(layout.runs_dir, layout.data_root, {cell.id: {**record, "recipe": accuracy.RECIPE - 1}})) == "pending"
    assert accuracy.status(cell, Layout(layout.runs_dir, layout.data_root, {cell.id: {key: value for key, value in record.items() if key != "recipe"}})) == "pending"
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"accuracy": {"cells": [record, {**record, "id": "other", "status": "pending"}]}}), encoding="utf-8")
    assert set(accuracy.recorded_finished(results)) == {cell.id}
    assert accuracy.recorded_finished(tmp_path / "absent.json") == {}


def test_the_report_says_which_cells_ran_on_a_gpu(tmp_path, layout, monkeypatch):
    """A cell trained on a GPU machine is marked so: its training time is not comparable with the CPU cells'."""
    on_gpu, on_cpu = Cell("pku", 1000, "knowfree", 42), Cell("pku", 1000, "baseline", 42)
    for cell, gpus in ((on_gpu, ["NVIDIA H100 80GB HBM3"]), (on_cpu, [])):
        monkeypatch.setattr(accuracy, "gpu_models", lambda gpus=gpus: gpus)
        accuracy.run_pending([cell], layout, FakeRunner(layout))
    section = accuracy.accuracy_section(accuracy.grid(), layout)
    rows = {line.split(" | ")[0][2:]: line for line in accuracy.markdown_block(section).splitlines() if line.startswith("| pku-k1000-")}
    assert "| GPU (NVIDIA H100 80GB HBM3) |" in rows[on_gpu.id] and "| CPU |" in rows[on_cpu.id]
    assert any("GPU NVIDIA H100 80GB HBM3" in line for line in accuracy.run_machines(section["cells"]))


def test_gpu_models_reads_nvidia_smi_and_is_empty_without_it(tmp_path, monkeypatch):
    import machine_facts

    monkeypatch.setenv("PATH", str(tmp_path))
    assert machine_facts.gpu_models() == []
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf 'NVIDIA H100 80GB HBM3\\nNVIDIA H100 80GB HBM3\\n'\n", encoding="utf-8")
    fake.chmod(0o755)
    assert machine_facts.gpu_models() == ["NVIDIA H100 80GB HBM3"] * 2
    fake.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2; exit 9\n", encoding="utf-8")
    assert machine_facts.gpu_models() == []


# --- running -----------------------------------------------------------------------------------------


def test_finished_cells_are_skipped_and_crashed_ones_resume(layout):
    finished, crashed, fresh = Cell("weibo", 250, "knowfree", 42), Cell("weibo", 250, "knowfree", 43), Cell("weibo", 250, "knowfree", 44)
    finish(layout, finished, 0.5)
    crash_with_checkpoint(layout, crashed)
    runner = FakeRunner(layout)
    outcomes = accuracy.run_pending([finished, crashed, fresh], layout, runner)
    assert outcomes == {crashed.id: 0, fresh.id: 0}
    assert [option_value(command, "--output_dir") for command in runner.commands] == [str(layout.cell_dir(cell)) for cell in (crashed, fresh)]
    assert runner.commands[0][-1] == "--resume" and "--resume" not in runner.commands[1]
    attempts = json.loads((layout.cell_dir(crashed) / "attempts.json").read_text(encoding="utf-8"))
    assert attempts[0]["command"].endswith("--resume") and attempts[0]["returncode"] == 0 and attempts[0]["wall_seconds"] >= 0
    assert accuracy.run_pending([finished, crashed, fresh], layout, runner) == {}  # everything finished now


def test_a_finished_cell_drops_its_resume_state_and_a_failed_one_keeps_it(layout):
    """The checkpoint and best/ only serve a resume; the runner deletes them once the cell is finished."""
    finished, failed = Cell("weibo", 1000, "knowfree", 42), Cell("weibo", 1000, "baseline", 42)
    for cell in (finished, failed):
        crash_with_checkpoint(layout, cell)
        (layout.cell_dir(cell) / "best").mkdir()
    accuracy.run_pending([finished], layout, FakeRunner(layout))
    accuracy.run_pending([failed], layout, FakeRunner(layout, returncode=1))
    assert accuracy.status(finished, layout) == "finished" and not (layout.cell_dir(finished) / "checkpoint").exists()
    assert not (layout.cell_dir(finished) / "best").exists() and (layout.cell_dir(finished) / "results.json").exists()
    assert accuracy.status(failed, layout) == "pending" and accuracy.has_checkpoint(layout.cell_dir(failed))
    assert (layout.cell_dir(failed) / "best").is_dir()


def test_fusion_data_is_built_once_per_dataset_and_k(layout):
    cells = [Cell("resume", 250, "knowfree-fusion", seed) for seed in (42, 43)]
    runner = FakeRunner(layout)
    accuracy.run_pending(cells, layout, runner)
    assert [command[0] for command in runner.commands] == ["knowfree-augment", "accelerate", "accelerate"]
    assert option_value(runner.commands[0], "--output_dir") == str(layout.fusion_dir("resume", 250))
    record = accuracy.cell_record(cells[0], layout)
    assert record["attempts"] == 2 and len(record["commands"]) == 2  # the build and the training, both recorded


def test_failures_continue_max_cells_limits_and_ctrl_c_stops(layout):
    cells = [Cell("ud", 250, model, 42) for model in ("baseline", "knowfree", "knowfree-no-local")]
    assert accuracy.run_pending(cells, layout, FakeRunner(layout, returncode=1)) == {cell.id: 1 for cell in cells}
    assert all(accuracy.status(cell, layout) == "pending" for cell in cells)
    assert accuracy.run_pending(cells, layout, FakeRunner(layout, returncode=130)) == {cells[0].id: 130}
    reports = []
    assert list(accuracy.run_pending(cells, layout, FakeRunner(layout), max_cells=2, after_each=lambda: reports.append(1))) == [cells[0].id, cells[1].id]
    assert len(reports) == 2 and accuracy.status(cells[2], layout) == "pending"


def test_ctrl_c_during_a_command_that_still_succeeds_stops_the_run(layout):
    """Ctrl-C while the fusion data is built: the build exits 0, but nothing is trained after it."""
    cells = [Cell("weibo", 250, "knowfree-fusion", 42), Cell("weibo", 250, "baseline", 42)]
    fake = FakeRunner(layout)

    def interrupted_after_the_command(command: list[str], log: Path) -> int:
        raise accuracy.CommandInterrupted(fake(command, log))

    assert accuracy.run_pending(cells, layout, interrupted_after_the_command) == {cells[0].id: 130}
    assert [command[0] for command in fake.commands] == ["knowfree-augment"]
    assert (layout.fusion_dir("weibo", 250) / accuracy.FUSION_READY).exists()
    attempts = json.loads((layout.cell_dir(cells[0]) / accuracy.ATTEMPTS_FILE).read_text(encoding="utf-8"))
    assert [attempt["returncode"] for attempt in attempts] == [0]
    accuracy.run_pending(cells, layout, fake)  # the next run trains, without building the data again
    assert [command[0] for command in fake.commands] == ["knowfree-augment", "accelerate", "accelerate"]


def test_the_default_runner_reports_ctrl_c_with_the_commands_exit_status(tmp_path, monkeypatch):
    class InterruptedProcess:
        def __init__(self, *args, **kwargs):
            self.waits = 0

        def wait(self) -> int:
            self.waits += 1
            if self.waits == 1:
                raise KeyboardInterrupt
            return 0

    monkeypatch.setattr(accuracy.subprocess, "Popen", InterruptedProcess)
    with pytest.raises(accuracy.CommandInterrupted) as caught:
        accuracy.run_logged(["knowfree-augment", "extend"], tmp_path / "train.log")
    assert caught.value.returncode == 0


def test_a_runner_started_with_sigint_ignored_gives_its_commands_ctrl_c_back():
    """`nohup ... &` starts the runner with SIGINT ignored; its train.py runs must still get Ctrl-C."""
    script = (
        "import signal, subprocess, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        f"sys.path.insert(0, {str(REPO_ROOT / 'benchmarks')!r}); import accuracy; "
        "accuracy.accept_ctrl_c(); "
        "child = 'import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)'; "
        "print(subprocess.run([sys.executable, '-c', child], capture_output=True, text=True).stdout.strip())"
    )
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert shown.stdout.strip() == "True", shown.stderr


def test_a_cell_held_by_a_live_runner_is_passed_over_and_a_stale_lock_taken(layout):
    held, stale = Cell("pku", 250, "knowfree", 42), Cell("pku", 250, "baseline", 42)
    for cell in (held, stale):
        layout.cell_dir(cell).mkdir(parents=True)
    host = accuracy.socket.gethostname()
    (layout.cell_dir(held) / accuracy.LOCK_FILE).write_text(f"{host} {accuracy.os.getpid()}\n", encoding="utf-8")
    finished_process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    (layout.cell_dir(stale) / accuracy.LOCK_FILE).write_text(f"{host} {finished_process.stdout.strip()}\n", encoding="utf-8")
    assert accuracy.run_pending([held, stale], layout, FakeRunner(layout)) == {stale.id: 0}
    assert not (layout.cell_dir(stale) / accuracy.LOCK_FILE).exists()  # released after the run
    assert "(running: " in accuracy.listing([held], layout)


def test_the_default_runner_appends_the_command_and_its_output_to_the_log(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("earlier attempt\n", encoding="utf-8")
    command = [sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"]
    assert accuracy.run_logged(command, log) == 3
    text = log.read_text(encoding="utf-8")
    assert text.startswith("earlier attempt\n") and f"$ {accuracy.shlex.join(command)}" in text and "out" in text and "err" in text
