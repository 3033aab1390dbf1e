"""train.py end to end on a tiny encoder: selection and report, resume, two CPU processes, the baseline,
and a push to a local Hub server followed by a remote-code load from it."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from conftest import REPO_ROOT, build_bert_char_tokenizer, training_rows, write_corpus, write_tiny_encoder
from hub_server import LocalHub, run_against_hub
from safetensors.torch import load_file

from knowfree import training as train
from knowfree.command_line import run_command_line
from knowfree.data import DataError
from knowfree.evaluation import score_spans
from knowfree.thresholds import THRESHOLD_GRID
from knowfree.training_settings import settings_arguments
from modeling_knowfree import KnowFreeModel

LABELS = ["LOC", "ORG", "PER"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    rows = training_rows()
    corpus = write_corpus(root / "corpus", {"train": rows, "dev": rows[:8], "test": rows[8:16]}, LABELS)
    encoder = write_tiny_encoder(root / "encoder", build_bert_char_tokenizer())
    return root, corpus, encoder


def arguments(corpus, encoder, output_dir, *extra: str) -> list[str]:
    return [
        "--data", str(corpus), "--encoder", str(encoder), "--output_dir", str(output_dir),
        "--batch_size", "4", "--head_lr", "1e-2", "--encoder_lr", "1e-3", "--epochs", "15", "--seed", "7",
        "--config_overrides", "projection_size=32,span_hidden_size=40,biaffine_heads=2,local_attention_heads=4",
        *extra,
    ]  # fmt: skip


def test_help_documents_the_options(capsys):
    with pytest.raises(SystemExit) as exited:
        train.parse_args(["--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    for option in ("--data", "--encoder", "--k", "--k_shot", "--resume", "--push_to_hub", "--freeze_embeddings", "--model", "--report_to", "--mixed_precision"):
        assert option in shown


def test_trains_selects_on_dev_and_reports_test(workspace):
    root, corpus, encoder = workspace
    output_dir = root / "single"
    given = arguments(corpus, encoder, output_dir, "--eval_every", "4")
    results = train.main(given)
    assert results["test"]["f1"] > 0.8
    assert results["best_step"] == max(results["history"], key=lambda entry: entry["dev_f1"])["step"]
    saved = json.loads((output_dir / "results.json").read_text())
    assert saved["test"]["per_label"].keys() <= set(LABELS)
    card = (output_dir / "README.md").read_text()
    assert "trust_remote_code=True" in card and f"{results['test']['f1']:.4f}" in card
    assert train.card_command(settings_arguments(train.parse_args(given))) in card  # a command giving the same settings
    model = KnowFreeModel.from_pretrained(output_dir)
    assert model.config.target_labels == LABELS
    assert all(span["label"] in LABELS for span in model.predict(training_rows()[0]["text"]))


def test_the_first_evaluation_already_finds_spans_with_the_default_recipe(workspace, tmp_path):
    """Issue 18: with the paper's rates (2e-5 / 1e-3, 10% warm-up), eq. 18 unweighted and one prior per
    label, this run's first evaluation (5 steps) predicted no span at 0.5 (dev F1 0.0); the default
    recipe must find some at its first evaluation, at 0.5 as well as at the calibrated threshold."""
    root, corpus, encoder = workspace
    results = train.main(["--data", str(corpus), "--encoder", str(encoder), "--output_dir", str(tmp_path / "run"),
                          "--batch_size", "4", "--epochs", "2", "--seed", "7"])  # fmt: skip
    first = results["history"][0]
    assert first["step"] == 5
    assert first["fixed_threshold_dev_f1"] > 0 and first["dev_f1"] > 0


def test_thresholds_are_chosen_on_dev_stored_in_the_config_and_used_by_predict(workspace):
    root, corpus, encoder = workspace
    output_dir = root / "calibrated"
    results = train.main(arguments(corpus, encoder, output_dir, "--epochs", "6", "--thresholds", "per_label"))
    record = results["thresholds"]
    model = KnowFreeModel.from_pretrained(output_dir)
    dev_rows = [json.loads(line) for line in (corpus / "dev.jsonl").read_text().splitlines()]
    test_rows = [json.loads(line) for line in (corpus / "test.jsonl").read_text().splitlines()]

    def f1(rows, **options) -> float:
        return score_spans(model.predict([row["text"] for row in rows], batch_size=32, **options), [row["entities"] for row in rows])["f1"]

    # the global threshold is the grid value with the best dev F1, and per-label thresholds build on it
    assert record["global"]["dev_f1"] == max(f1(dev_rows, threshold=value) for value in THRESHOLD_GRID)
    assert record["global"]["dev_f1"] == f1(dev_rows, threshold=record["global"]["threshold"])
    assert record["per_label"]["dev_f1"] >= record["global"]["dev_f1"]
    # stored: predict without a threshold uses them and reproduces the reported test figures
    assert model.config.threshold == record["per_label"]["threshold"]
    assert model.config.label_thresholds == record["per_label"]["label_thresholds"]
    assert f1(test_rows) == results["test"]["f1"] == record["per_label"]["test_f1"]
    # an explicit threshold overrides them
    assert f1(test_rows, threshold=0.5) == record["fixed"]["test_f1"]
    card = (output_dir / "README.md").read_text()
    assert "Decision thresholds, chosen on dev (per_label)" in card and f"{record['fixed']['test_f1']:.4f}" in card


def test_a_wall_clock_stop_is_reported_in_the_log_results_and_card(workspace, caplog):
    root, corpus, encoder = workspace
    output_dir = root / "out-of-time"
    with caplog.at_level("WARNING", logger="knowfree.train"):
        results = train.main(arguments(corpus, encoder, output_dir, "--max_train_minutes", "0.0001"))
    assert results["stopped_by"] == "time" and results["steps"] == 1
    assert json.loads((output_dir / "results.json").read_text())["stopped_by"] == "time"
    assert "WALL-CLOCK CAP" in caplog.text
    assert "stopped by its wall-clock cap" in (output_dir / "README.md").read_text()


def same_weights(expected: torch.Tensor, actual: torch.Tensor) -> bool:
    """Bit for bit on CPU. accelerate trains on CUDA when there is a GPU, where some kernels (scatter,
    atomics in backward) are not deterministic: there the resumed run must agree to 1e-5."""
    return torch.equal(expected, actual) if not torch.cuda.is_available() else torch.allclose(expected, actual, atol=1e-5, rtol=0)


@pytest.mark.parametrize("augmentation", [(), ("--mention_replacement", "0.5")], ids=["plain", "mention-replacement"])
def test_resume_reaches_the_same_final_state(workspace, tmp_path, augmentation):
    _, corpus, encoder = workspace
    common = ("--max_steps", "9", "--eval_every", "3", "--epochs", "5", *augmentation)
    train.main(arguments(corpus, encoder, tmp_path / "straight", *common))
    with pytest.raises(SystemExit) as interrupted:
        train.main(arguments(corpus, encoder, tmp_path / "resumed", *common, "--interrupt_after_steps", "4"))
    assert interrupted.value.code == 130
    state = json.loads((tmp_path / "resumed" / "checkpoint" / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and state["batches_in_epoch"] == 4 and not state["finished"]
    train.main(arguments(corpus, encoder, tmp_path / "resumed", *common, "--resume"))
    straight = load_file(tmp_path / "straight" / "checkpoint" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "checkpoint" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert same_weights(straight[name], resumed[name]), name
    assert json.loads((tmp_path / "straight" / "results.json").read_text())["test"] == json.loads((tmp_path / "resumed" / "results.json").read_text())["test"]


def test_mention_replacement_feeds_swapped_rows_to_the_batches(workspace, tmp_path, monkeypatch):
    _, corpus, encoder = workspace
    batched: list[dict] = []
    collate = train.SpanCollator.__call__
    monkeypatch.setattr(train.SpanCollator, "__call__", lambda self, rows: (batched.extend(rows), collate(self, rows))[1])
    train.main(arguments(corpus, encoder, tmp_path / "run", "--epochs", "2", "--mention_replacement", "1.0"))
    original = {row["text"] for row in training_rows()}
    mentions = {(row["text"][span["start"] : span["end"]], span["label"]) for row in training_rows() for span in row["entities"]}
    assert len(batched) == 2 * len(training_rows()), "one row per training row and epoch: no row added or lost"
    assert any(row["text"] not in original for row in batched)
    assert all((row["text"][span["start"] : span["end"]], span["label"]) in mentions for row in batched for span in row["entities"])


@pytest.mark.parametrize(
    ("dev_f1s", "max_steps", "evaluations", "best_evaluation"),
    [
        # five evaluations at zero (the old rule stopped after three), then a plateau of two
        ([0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.4, 0.4, 0.9], 12, 8, 6),
        # never above zero: the step budget, not patience, ends the run
        ([0.0] * 6, 6, 6, 1),
    ],
)
def test_patience_counts_from_the_first_dev_score_above_zero(
    workspace, tmp_path, monkeypatch, dev_f1s, max_steps, evaluations, best_evaluation
):
    root, corpus, encoder = workspace
    scripted = iter(dev_f1s)
    real_evaluate = train.evaluate_split

    def scripted_dev_f1(args, accelerator, model, tokenizer, dataset):
        scores = real_evaluate(args, accelerator, model, tokenizer, dataset)
        return {**scores, "f1": next(scripted, scores["f1"])}

    monkeypatch.setattr(train, "evaluate_split", scripted_dev_f1)
    results = train.main(
        arguments(corpus, encoder, tmp_path / "run", "--eval_every", "1", "--max_steps", str(max_steps), "--patience", "2")
    )
    assert [entry["dev_f1"] for entry in results["history"]] == dev_f1s[:evaluations]
    assert results["best_step"] == results["history"][best_evaluation - 1]["step"]


def test_token_classification_baseline_uses_the_same_metric(workspace):
    root, corpus, encoder = workspace
    results = train.main(arguments(corpus, encoder, root / "baseline", "--model", "token-classification"))
    assert results["model"] == "token-classification"
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from knowfree.data import load_corpus
    from knowfree.evaluation import score_spans
    from knowfree.token_baseline import predict_token_spans

    test_rows = load_corpus(corpus).splits["test"]
    model = AutoModelForTokenClassification.from_pretrained(root / "baseline").eval()
    predicted = predict_token_spans(model, AutoTokenizer.from_pretrained(root / "baseline"), list(test_rows["text"]))
    rescored = score_spans(predicted, list(test_rows["entities"]))  # the saved model, rescored by the one metric
    assert {key: rescored[key] for key in ("precision", "recall", "f1")} == pytest.approx({key: results["test"][key] for key in ("precision", "recall", "f1")})
    assert rescored["per_label"].keys() == results["test"]["per_label"].keys()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_cpu_processes_run_to_completion(workspace):
    root, corpus, encoder = workspace
    output_dir = root / "two-processes"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
        str(REPO_ROOT / "train.py"), *arguments(corpus, encoder, output_dir, "--epochs", "2"),
    ]  # fmt: skip
    environment = {**os.environ, "ACCELERATE_USE_CPU": "1", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    results = json.loads((output_dir / "results.json").read_text())
    assert results["train_rows"] == 20
    state = json.loads((output_dir / "checkpoint" / "trainer_state.json").read_text())
    assert state["global_step"] == 2 * 3  # 20 rows, 4 per batch per process, 2 processes -> 3 steps per epoch


def test_push_to_hub_then_load_with_remote_code(workspace, tmp_path):
    root, corpus, encoder = workspace
    with LocalHub(tmp_path / "hub") as hub:
        code = f"""
import sys
sys.path.insert(0, {str(REPO_ROOT)!r})
from knowfree import training as train
train.main({arguments(corpus, encoder, tmp_path / "pushed", "--epochs", "1", "--push_to_hub", "tester/knowfree-tiny")!r})
"""
        run_against_hub(hub.url, code, cwd=tmp_path)
        loaded = run_against_hub(
            hub.url,
            """
import json
from transformers import AutoModel
model = AutoModel.from_pretrained("tester/knowfree-tiny", trust_remote_code=True)
from huggingface_hub import hf_hub_download
card = open(hf_hub_download("tester/knowfree-tiny", "README.md")).read()
print(json.dumps({"labels": model.config.target_labels, "spans": model.predict("马云去北京开会。"), "card": "trust_remote_code" in card}))
""",
            cwd=tmp_path,
        )
    reply = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert reply["labels"] == LABELS and reply["card"]
    assert isinstance(reply["spans"], list)


def test_extension_labels_named_like_targets_are_refused(workspace, tmp_path):
    root, _, encoder = workspace
    rows = [dict(row, extensions=[{"start": 0, "end": 1, "label": "PER"}]) for row in training_rows()]
    corpus = write_corpus(tmp_path / "fusion", {"train": rows, "dev": rows[:4], "test": rows[4:8]}, LABELS)
    with pytest.raises(ValueError, match=r"extension labels \['PER'\] have the names of target labels"):
        train.main(arguments(corpus, encoder, tmp_path / "out"))


def test_rows_with_empty_text_are_counted_and_never_batched(workspace, tmp_path):
    root, _, encoder = workspace
    rows = training_rows()
    emptied = [{"text": "", "entities": []} for _ in range(5)] + rows
    corpus = write_corpus(tmp_path / "corpus", {"train": emptied, "dev": rows[:4], "test": rows[4:8]}, LABELS)
    results = train.main(arguments(corpus, encoder, tmp_path / "run", "--epochs", "1", "--batch_size", "5"))  # the first batch would be all empty
    assert results["train_rows"] == len(rows) + 5 and results["empty_train_rows"] == 5
    nothing = write_corpus(tmp_path / "nothing", {"train": emptied[:5], "dev": rows[:4], "test": rows[4:8]}, LABELS)
    with pytest.raises(DataError, match="every one has empty text"):
        train.main(arguments(nothing, encoder, tmp_path / "nothing-run", "--epochs", "1"))


def test_the_command_line_reports_bad_data_in_one_line_and_exits_2(workspace, tmp_path):
    _, _, encoder = workspace
    broken = write_corpus(tmp_path / "broken", {"train": [{"text": "马云", "entities": [{"start": 0, "end": 9, "label": "PER"}]}], "dev": [], "test": []}, LABELS)
    command = [sys.executable, str(REPO_ROOT / "train.py"), "--data", str(broken), "--encoder", str(encoder), "--output_dir", str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "train.py: error: broken/train.jsonl line 1: entities[0]: end 9 > len(text) 2" in result.stderr
    with pytest.raises(DataError, match="end 9 > len"):  # --debug: the exception itself, for its traceback
        run_command_line(train.main, command[2:] + ["--debug"])


def test_a_kill_while_swapping_checkpoints_resumes_from_the_complete_copy_and_a_torn_one_is_named(workspace, tmp_path):
    import shutil

    from knowfree.checkpoints import TornCheckpoint

    root, corpus, encoder = workspace
    common = ("--max_steps", "9", "--eval_every", "3", "--epochs", "5")
    train.main(arguments(corpus, encoder, tmp_path / "straight", *common))
    run = tmp_path / "swapped"
    with pytest.raises(SystemExit):
        train.main(arguments(corpus, encoder, run, *common, "--interrupt_after_steps", "4"))
    torn = shutil.copytree(run, tmp_path / "torn")
    for name in ("checkpoint", "best"):  # killed between the two renames: old copy moved aside, new one unfinished
        (run / name).rename(run / f"{name}.previous")
        (run / f"{name}.partial").mkdir()
        (run / f"{name}.partial" / "model.safetensors").write_bytes(b"half")
    train.main(arguments(corpus, encoder, run, *common, "--resume"))
    assert not any((run / f"{name}{suffix}").exists() for name in ("checkpoint", "best") for suffix in (".partial", ".previous"))
    straight, resumed = load_file(tmp_path / "straight" / "checkpoint" / "model.safetensors"), load_file(run / "checkpoint" / "model.safetensors")
    assert all(same_weights(straight[name], resumed[name]) for name in straight)
    weights = next(path for path in (torn / "checkpoint").iterdir() if path.suffix in (".safetensors", ".bin"))
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(TornCheckpoint, match=r"checkpoint .*torn/checkpoint cannot be loaded .*delete that folder"):
        train.main(arguments(corpus, encoder, torn, *common, "--resume"))


def test_tensorboard_receives_loss_dev_and_test_figures(workspace, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, corpus, encoder = workspace
    results = train.main(arguments(corpus, encoder, tmp_path / "tracked", "--max_steps", "4", "--eval_every", "2", "--report_to", "tensorboard"))
    events = EventAccumulator(str(next((tmp_path / "tracked" / "runs").rglob("events.out.tfevents.*")).parent))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/loss", "dev/f1", "test/f1"} <= set(scalars)
    assert [event.step for event in events.Scalars("train/loss")] == [1, 2, 3, 4]
    assert [event.value for event in events.Scalars("dev/f1")] == pytest.approx([entry["dev_f1"] for entry in results["history"]])
    assert events.Scalars("test/f1")[-1].value == pytest.approx(results["test"]["f1"])


def test_bf16_mixed_precision_trains_on_cpu(workspace, tmp_path):
    """In its own process: accelerate fixes the precision of the first Accelerator a process makes."""
    root, corpus, encoder = workspace
    command = [sys.executable, str(REPO_ROOT / "train.py"), *arguments(corpus, encoder, tmp_path / "bf16", "--max_steps", "3", "--mixed_precision", "bf16")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "bf16" / "results.json").read_text())
    assert results["steps"] == 3 and 0.0 <= results["test"]["f1"] <= 1.0 and results["mixed_precision"] == "bf16"


def test_the_default_band_width_is_the_longest_span_plus_a_margin_capped(workspace, tmp_path):
    """One outlier span does not size every sentence's band: the default width stops at SPAN_WIDTH_CAP
    (the span is counted as untrainable), and an explicit --max_span_width still wins."""
    from knowfree.training_settings import SPAN_WIDTH_CAP, SPAN_WIDTH_MARGIN

    _, _, encoder = workspace
    rows = training_rows()
    long_name = "中国科学技术大学" * 5  # 40 characters
    rows.append({"text": long_name + "位于合肥市。", "entities": [{"start": 0, "end": len(long_name), "label": "ORG"}]})
    corpus_dir = write_corpus(tmp_path / "long", {"train": rows, "dev": rows[:4], "test": rows[4:8]}, LABELS)

    def built(corpus, *extra: str) -> tuple[int, int]:
        settings = train.parse_args(arguments(corpus, encoder, tmp_path / "out", "--synthetic_weight", "1.0", *extra))
        model, _, _, untrainable = train.build_knowfree(settings, train.load_training_corpus(settings))
        return model.config.max_span_width, untrainable

    assert len(long_name) + SPAN_WIDTH_MARGIN > SPAN_WIDTH_CAP
    assert built(corpus_dir) == (SPAN_WIDTH_CAP, 1)
    assert built(corpus_dir, "--max_span_width", "48") == (48, 0)
    short = write_corpus(tmp_path / "short", {"train": training_rows(), "dev": rows[:4], "test": rows[4:8]}, LABELS)
    longest = max(span["end"] - span["start"] for row in training_rows() for span in row["entities"])
    assert built(short) == (longest + SPAN_WIDTH_MARGIN, 0)
