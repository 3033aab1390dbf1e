"""benchmarks/few_shot.py without training: the grid, commands the real parsers accept, resumable runs
through a fake runner, and the report."""

import json
import shutil
import sys
from pathlib import Path

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import few_shot  # noqa: E402
from few_shot import Cell, Place  # noqa: E402


def test_grid_is_two_sets_two_shot_counts_three_sampling_seeds():
    cells = few_shot.grid()
    assert len(cells) == len({cell.id for cell in cells}) == 2 * 2 * 3
    assert [cell.seed for cell in cells[:4]] == [42] * 4


def test_commands_sample_the_same_k_shot_set_for_both_models(tmp_path):
    from accelerate.commands.launch import launch_command_parser

    from knowfree import training as train
    from augment.cli import parse_args as augment_arguments

    commands = few_shot.commands(Cell("resume", 10, 43), Place(tmp_path, "../shared/data"))
    launch = launch_command_parser().parse_args(commands["knowfree"][2:])
    plain = train.parse_args(launch.training_script_args)
    workflow = augment_arguments(commands["workflow"][1:])
    assert (plain.k_shot, plain.data_seed, plain.data) == (workflow.k_shot, workflow.data_seed, workflow.data) == (10, 43, "../shared/data/resume")
    assert plain.encoder == workflow.encoder and plain.freeze_embeddings and workflow.freeze_embeddings
    assert Path(workflow.work_dir) == tmp_path / "resume-10shot-seed43" / "workflow"


def write_results(path: Path, dev_f1: float, test_f1: float, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"train_rows": rows, "dev": {"f1": dev_f1}, "test": {"f1": test_f1}, "best_step": 8, "steps": 80, "train_seconds": 9.0}))


def test_run_skips_finished_parts_and_the_report_averages_seeds(tmp_path):
    runs = tmp_path / "runs"
    ran = []

    def runner(command, log):
        ran.append(command[0])
        folder = Path(command[command.index("--output_dir") + 1] if "--output_dir" in command else command[command.index("--work_dir") + 1])
        target = folder / "results.json" if command[0] != "knowfree-augment" else folder / "annotation-model" / "results.json"
        write_results(target, 0.2, 0.3 if command[0] != "knowfree-augment" else 0.25, 30)
        return 0

    done = Cell("weibo", 5, 42)
    write_results(runs / done.id / few_shot.RESULTS[few_shot.PLAIN], 0.4, 0.5, 28)
    markdown, results = tmp_path / "RESULTS.md", tmp_path / "results.json"
    cells, place = [done, Cell("weibo", 5, 43)], Place(runs, "../shared/data")
    assert few_shot.run(cells, place, lambda: few_shot.report(place, markdown, results), runner) == 0
    assert ran == ["knowfree-augment", "accelerate", "knowfree-augment"]
    table = markdown.read_text()
    assert "| weibo | 5 | 28, 30 | 0.400 ± 0.100 (2 of 3 seeds) | 0.200 ± 0.000 (2 of 3 seeds) | 0.250 ± 0.000 (2 of 3 seeds) |" in table
    assert "| resume | 10 | — | — | — | — |" in table
    section = json.loads(results.read_text())["few_shot"]
    assert {cell["id"] for cell in section["cells"] if "workflow" in cell} == {"weibo-5shot-seed42", "weibo-5shot-seed43"}


def test_a_fresh_clone_keeps_the_parts_its_committed_results_json_records(tmp_path):
    """The cell folders are not committed: a part results.json records with today's command is finished."""
    runs, markdown, results = tmp_path / "runs", tmp_path / "RESULTS.md", tmp_path / "results.json"
    cell = Cell("resume", 5, 44)
    write_results(runs / cell.id / few_shot.RESULTS[few_shot.PLAIN], 0.6, 0.55, 24)
    few_shot.report(Place(runs, "../shared/data"), markdown, results)
    shutil.rmtree(runs)
    clone = Place(runs, "../shared/data", few_shot.recorded_cells(results, "few_shot"))
    assert few_shot.part_figures(cell, clone, few_shot.PLAIN)["test_f1"] == 0.55
    assert few_shot.part_figures(cell, clone, few_shot.WORKFLOW) is None
    assert few_shot.part_figures(cell, Place(runs, "elsewhere", clone.recorded), few_shot.PLAIN) is None  # other command: stale
    few_shot.report(clone, markdown, results)
    assert "| resume | 5 | 24 | 0.550 (1 of 3 seeds) |" in markdown.read_text()
