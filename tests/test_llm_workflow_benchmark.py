"""benchmarks/llm_workflow.py without an LLM or training: commands the real parsers accept, the reply
caches committed and restored around a run, resumable parts through a fake runner, and the report."""

import gzip
import json
import shutil
import sys
from pathlib import Path

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import llm_workflow  # noqa: E402
from llm_workflow import Cell, Place  # noqa: E402


def test_every_part_samples_the_same_sentences_and_the_llm_parts_keep_their_replies_apart(tmp_path):
    from accelerate.commands.launch import launch_command_parser

    from knowfree import training as train
    from augment.cli import parse_args as augment_arguments

    place = Place(tmp_path, "../shared/data", "http://127.0.0.1:9999", tmp_path / "few-shot", tmp_path / "replies")
    commands = llm_workflow.commands(Cell("weibo", "k50", 43), place)
    plain = train.parse_args(launch_command_parser().parse_args(commands["knowfree"][2:]).training_script_args)
    offline, small, large = (augment_arguments(commands[part][1:]) for part in ("offline", "llm-0.5b", "llm-1.5b"))
    assert (plain.k, plain.data_seed) == (offline.k, offline.data_seed) == (small.k, small.data_seed) == (50, 43)
    assert offline.endpoint is None and small.endpoint == large.endpoint == "http://127.0.0.1:9999" and small.model == "qwen"
    assert small.cache != large.cache and small.work_dir != large.work_dir and small.structured == "auto"
    assert Path(small.cache).parent == tmp_path / "weibo-k50-seed43"


def test_the_llm_free_parts_of_a_10_shot_cell_are_few_shot_py_s_own():
    import few_shot

    place = Place(REPO_ROOT / "benchmarks/runs/llm-workflow", "../shared/data", plain_runs_dir=REPO_ROOT / "benchmarks/runs/few-shot")
    ours = llm_workflow.commands(Cell("resume", "10shot", 44), place)
    theirs = few_shot.commands(few_shot.Cell("resume", 10, 44), few_shot.Place(REPO_ROOT / "benchmarks/runs/few-shot", "../shared/data"))
    assert (ours["knowfree"], ours["offline"]) == (theirs["knowfree"], theirs["workflow"])


def fake_summary(folder: Path, fusion_f1: float, synthetic_f1: float | None) -> None:
    (folder / "fusion").mkdir(parents=True, exist_ok=True)
    summary = {"fusion_only_test": {"f1": fusion_f1}, "extension_labels": 7}
    if synthetic_f1 is not None:
        summary |= {
            "fusion_synthetic_test": {"f1": synthetic_f1}, "step_seconds": {"extend": 60.0, "synthesize": 30.0}, "structured_output": "json_object_schema",
            "synthesis": {"counts": {"reply_used": 9, "synthetic_rows": 12, "sentence_prompt_echo": 2}},
            "llm_usage": {"extend": {"entities": {"answered": 10, "completion_tokens": 200, "request_seconds": 20.0}, "pos": {"answered": 8, "failed_timeout": 1}},
                          "synthesize": {"explanations": {"answered": 10, "completion_tokens": 1000, "request_seconds": 50.0}}},
        }  # fmt: skip
    (folder / "summary.json").write_text(json.dumps(summary))
    counts = {"entity_mentions": 31, "entity_not_in_text": 2, "rows_with_pos": 6, "pos_clause": 3, "pos_reply_unparsable": 2}
    (folder / "fusion" / "augmentation.json").write_text(json.dumps({"annotation_counts": counts}))


def test_a_run_commits_the_replies_and_the_report_shows_every_column(tmp_path):
    place = Place(tmp_path / "runs", "../shared/data", replies_dir=tmp_path / "replies")
    cell = Cell("weibo", "10shot", 42)
    ran = []

    def runner(command, log):
        ran.append(command[0] if "--endpoint" not in command else "llm")
        folder = llm_workflow.output_folder(command)
        if command[0] == "accelerate":
            folder.mkdir(parents=True)
            (folder / "results.json").write_text(json.dumps({"test": {"f1": 0.30}, "dev": {"f1": 0.2}, "train_rows": 54}))
        elif "--endpoint" in command:
            cache = Path(command[command.index("--cache") + 1])
            cache.write_text('{"key": "k", "request": {}, "reply": "[]"}\n')
            fake_summary(folder, 0.40, 0.45)
        else:
            fake_summary(folder, 0.35, None)
        return 0

    markdown, results = tmp_path / "RESULTS.md", tmp_path / "results.json"
    assert llm_workflow.run([cell], place, ["knowfree", "offline", "llm-0.5b"], lambda: llm_workflow.report(place, markdown, results), runner) == 0
    assert ran == ["accelerate", "knowfree-augment", "llm"]
    committed = tmp_path / "replies" / "weibo-10shot-seed42-llm-0.5b.jsonl.gz"
    assert gzip.decompress(committed.read_bytes()).decode() == '{"key": "k", "request": {}, "reply": "[]"}\n'
    table = markdown.read_text()
    assert "| weibo | 10shot | 0.5b | 0.300 (1 of 3) | 0.350 (1 of 3) | 0.400 (1 of 3) | 0.450 (1 of 3) |" in table
    assert "| weibo | 10shot | 1.5b | 0.300 (1 of 3) | 0.350 (1 of 3) | — | — |" in table
    assert "| entities | 10 | 0 | 31 mentions kept; 2 not in the text" in table and "| 10.0 |" in table
    assert "| pos | 8 | 1 | 6 rows with POS; 2 replies unreadable, 0 rows without a segmentation to align against; 0 word unaligned, 3 clause" in table
    assert "| explanations | 10 | 0 | 9 replies used, 12 synthetic rows; dropped: 2 sentence_prompt_echo | 20.0 |" in table
    assert "structured output: json_object_schema" in table and "extend 60 s, synthesize 30 s" in table

    shutil.rmtree(place.runs_dir)
    clone = Place(place.runs_dir, "../shared/data", replies_dir=place.replies_dir, recorded=llm_workflow.recorded_cells(results, "llm_workflow"))
    assert llm_workflow.measured(cell, clone, "llm-0.5b")["synthetic_test_f1"] == 0.45  # a fresh clone keeps the record
    llm_workflow._restore_replies(cell, clone, "0.5b")
    assert llm_workflow.reply_cache(cell, clone, "0.5b").read_text().endswith('"reply": "[]"}\n')  # replies ready for an offline re-run
