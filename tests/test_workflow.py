"""knowfree-augment workflow end to end on a tiny corpus and encoder, with the scripted LLM server:
every step runs, a re-run skips them all, a SIGKILL during synthesis resumes to the same result, and
the pushed dataset and model load back from a local Hub."""

import json
import re
import signal
import subprocess
import sys
import threading

import pytest
from conftest import REPO_ROOT, build_bert_char_tokenizer, training_rows, write_corpus, write_tiny_encoder
from fake_llm_server import HANG, FakeLLM
from hub_server import FAKE_TOKEN, LocalHub, hub_client_env, run_against_hub
from scripted_annotator import ScriptedAnnotator, prompt_kind, prompt_sentence
from augment.llm_client import CHAT_FORMS

from augment.cli import main as augment_main
from knowfree.data import load_corpus
from modeling_knowfree import KnowFreeModel

LABELS = ["LOC", "ORG", "PER"]
ENTITIES = {row["text"]: json.dumps([{"entity": row["text"][s["start"]:s["end"]], "type": "专名"} for s in row["entities"]], ensure_ascii=False) for row in training_rows()}
STEPS = ["extend", "annotation_model", "synthesize", "annotate_synthetic", "dataset", "final_model"]


class HoldFirstExplanation:
    """The scripted LLM, except that once armed the first explanation request hangs (and says so)."""

    def __init__(self) -> None:
        self.inner = ScriptedAnnotator(ENTITIES)
        self.armed = False
        self.reached = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, prompt):
        with self._lock:
            if self.armed and prompt_kind(prompt) == "explain" and not self.reached.is_set():
                self.reached.set()
                return HANG
        return self.inner(prompt)


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    root = tmp_path_factory.mktemp("workflow")
    rows = training_rows()[:8]
    corpus = write_corpus(root / "corpus", {"train": rows, "dev": rows[:4], "test": rows[4:8]}, LABELS)
    encoder = write_tiny_encoder(root / "encoder", build_bert_char_tokenizer())
    return root, corpus, encoder


def workflow_args(corpus, encoder, work_dir, endpoint, *extra) -> list[str]:
    return [
        "workflow", "--data", str(corpus), "--work_dir", str(work_dir), "--endpoint", endpoint, "--retries", "0", "--timeout", "60",
        "--encoder", str(encoder), "--epochs", "1", "--batch_size", "4", "--max_chars", "40", "--min_chars", "4",
        "--train_args", "--head_lr 1e-2 --config_overrides projection_size=16,span_hidden_size=16,biaffine_heads=2,local_attention_heads=2",
        *extra,
    ]  # fmt: skip


def outcome(work_dir) -> dict:
    summary = json.loads((work_dir / "summary.json").read_text())
    return {
        "synthetic": (work_dir / "synthetic.jsonl").read_text(encoding="utf-8"),
        "fusion": (work_dir / "dataset" / "fusion.jsonl").read_text(encoding="utf-8"),
        "fusion_only_f1": summary["fusion_only_test"]["f1"],
        "final_f1": summary["fusion_synthetic_test"]["f1"],
    }


@pytest.fixture(scope="module")
def reference_run(setting, tmp_path_factory):
    """One uninterrupted in-process run, then an immediate re-run of the same command."""
    root, corpus, encoder = setting
    import huggingface_hub.constants

    original = huggingface_hub.constants.HF_HUB_OFFLINE
    huggingface_hub.constants.HF_HUB_OFFLINE = False
    try:
        with FakeLLM(ScriptedAnnotator(ENTITIES)) as server:
            augment_main(workflow_args(corpus, encoder, root / "reference", server.url))
            first_requests = len(server.requests)
            results_time = (root / "reference" / "final-model" / "results.json").stat().st_mtime_ns
            augment_main(workflow_args(corpus, encoder, root / "reference", server.url))
            rerun_requests = len(server.requests) - first_requests
    finally:
        huggingface_hub.constants.HF_HUB_OFFLINE = original
    return root / "reference", first_requests, rerun_requests, results_time


def test_every_step_runs_and_produces_its_output(reference_run, setting):
    work, first_requests, _, _ = reference_run
    _, corpus, _ = setting
    assert json.loads((work / "steps.json").read_text())["finished"].keys() == set(STEPS)
    augmented = load_corpus(work / "dataset", splits=("train", "fusion", "synthetic", "dev", "test"))
    synthetic = augmented.splits["synthetic"]
    assert len(synthetic) > 0 and all(synthetic["synthetic"])
    assert all(len(text) <= 40 and "**" not in text and "##" not in text for text in synthetic["text"])
    assert len(set(synthetic["text"])) == len(synthetic)
    model = KnowFreeModel.from_pretrained(work / "annotation-model").eval()
    predicted = model.predict(list(synthetic["text"]))
    assert [[(s["start"], s["end"], s["label"]) for s in row] for row in synthetic["entities"]] == [sorted((s["start"], s["end"], s["label"]) for s in spans) for spans in predicted]
    assert any(row for row in synthetic["extensions"])
    assert augmented.splits["train"]["text"] == load_corpus(corpus).splits["train"]["text"]
    summary = json.loads((work / "summary.json").read_text())
    assert summary["synthesis"]["synthetic_rows"] == len(synthetic) and summary["synthesis"]["beta"] == 0.4
    for model_dir in (work / "annotation-model", work / "final-model"):  # the selected weights stay, the resume state goes
        assert (model_dir / "model.safetensors").is_file() and not (model_dir / "checkpoint").exists() and not (model_dir / "best").exists()
    config = json.loads((work / "final-model" / "config.json").read_text())
    assert config["synthetic_weight"] == 0.4
    card = (work / "dataset" / "README.md").read_text(encoding="utf-8")
    assert "## Synthesis" in card and "--train_split fusion,synthetic" in card
    assert json.loads((work / "dataset" / "workflow.json").read_text())["prompts"]["version"]
    distinct = len(set(augmented.splits["train"]["text"]))  # a repeated sentence is answered from the cache
    usage = summary["llm_usage"]
    assert usage["extend"]["entities"]["answered"] == distinct and usage["extend"]["segmentation"]["answered"] == distinct
    assert usage["synthesize"]["explanations"]["answered"] == distinct and set(usage["synthesize"]) == {"explanations"}
    assert usage["annotate_synthetic"]["entities"]["answered"] == len(synthetic)
    assert usage["extend"]["entities"]["completion_tokens"] == distinct  # the fake server reports one token per reply
    assert summary["step_seconds"].keys() == set(STEPS) and summary["structured_output"] == "none"
    probes = len(CHAT_FORMS)  # the first request probed the schema forms once (this server obeys none)
    assert first_requests == probes + distinct * 3 + 1 + distinct + len(synthetic) * 3  # entities/segmentation/POS per row, merge, explanations, the same three per synthetic row


def test_a_rerun_skips_every_step(reference_run):
    _, _, rerun_requests, results_time = reference_run
    work = reference_run[0]
    assert rerun_requests == 0
    assert (work / "final-model" / "results.json").stat().st_mtime_ns == results_time


def test_a_dry_run_counts_the_replies_the_workflow_cached(reference_run, setting, capsys, hub_online):
    """The dry run reads the cache the workflow writes (work_dir/llm.llm-cache.jsonl), so after a full
    run every first-stage request shows as cached, and nothing is sent (the fake server is gone)."""
    work = reference_run[0]
    _, corpus, encoder = setting
    cache_lines = (work / "llm.llm-cache.jsonl").read_text(encoding="utf-8").splitlines()
    endpoint = json.loads(cache_lines[0])["request"]["model"]  # replies are cached per endpoint: the run's own
    capsys.readouterr()
    augment_main(workflow_args(corpus, encoder, work, endpoint, "--dry_run"))
    requests, cached = re.search(r"requests: (\d+) entity \+ segmentation \((\d+) cached\)", capsys.readouterr().out).groups()
    assert int(cached) == int(requests) > 0


def test_kill_during_synthesis_resumes_to_the_same_result_and_pushes(reference_run, setting, tmp_path):
    root, corpus, encoder = setting
    script = HoldFirstExplanation()
    with FakeLLM(script) as server, LocalHub(tmp_path / "hub") as hub:
        environment = hub_client_env(hub.url, tmp_path / "hf-home")
        environment.update(PYTHONPATH=str(REPO_ROOT), HF_DATASETS_OFFLINE="0")
        command = [sys.executable, "-m", "augment", *workflow_args(corpus, encoder, tmp_path / "killed", server.url)]
        script.armed = True
        process = subprocess.Popen(command, env=environment, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert script.reached.wait(timeout=400), "the workflow never reached synthesis"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        state = json.loads((tmp_path / "killed" / "steps.json").read_text())
        assert set(state["finished"]) == {"extend", "annotation_model"} and "synthesize" in state["started"]
        before = len(server.requests)
        push = ["--push_to_hub", "tester/workflow-data", "--push_model", "tester/workflow-model", "--token", FAKE_TOKEN]  # the token, also in HF_TOKEN, is the secret to keep
        resumed = subprocess.run(command + push, env=environment, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "step extend: up to date" in resumed.stderr and "step annotation_model: up to date" in resumed.stderr
        training_texts = {row["text"] for row in training_rows()}
        asked_again = [prompt for _, prompt in server.requests[before:] if prompt_kind(prompt) != "explain" and prompt_sentence(prompt) in training_texts]
        assert asked_again == []  # pipeline 1 was finished before the kill: nothing of it is asked again
        assert outcome(tmp_path / "killed") == outcome(reference_run[0])
        code = """
import json
from datasets import load_dataset
from huggingface_hub import DatasetCard, hf_hub_download
from transformers import AutoModel
data = load_dataset("tester/workflow-data")
model = AutoModel.from_pretrained("tester/workflow-model", trust_remote_code=True)
print(json.dumps({"splits": sorted(data), "synthetic": all(data["synthetic"]["synthetic"]), "card": DatasetCard.load("tester/workflow-data", repo_type="dataset").text,
    "workflow": "prompts" in json.load(open(hf_hub_download("tester/workflow-data", "workflow.json", repo_type="dataset"))), "labels": model.config.target_labels}))
"""
        pushed = json.loads(run_against_hub(hub.url, code, cwd=REPO_ROOT).stdout.strip().splitlines()[-1])
    assert pushed["splits"] == ["dev", "fusion", "synthetic", "test", "train"]
    assert pushed["synthetic"] and pushed["workflow"] and "## Synthesis" in pushed["card"] and pushed["labels"] == LABELS
    secret = FAKE_TOKEN.encode()
    assert secret not in resumed.stdout.encode() and secret not in resumed.stderr.encode()
    written = [path for folder in (tmp_path / "killed", tmp_path / "hub") for path in folder.rglob("*") if path.is_file()]
    assert len(written) > 20 and [path for path in written if secret in path.read_bytes()] == []  # work folder and every pushed file


@pytest.mark.usefixtures("hub_online")
def test_the_whole_workflow_runs_against_a_tgi_generate_endpoint_without_schema_support(setting, tmp_path):
    """Every step, synthesis included, through TGI's /generate route: the schema probe fails once and the rest is asked plainly."""
    _, corpus, encoder = setting
    with FakeLLM(ScriptedAnnotator(ENTITIES)) as server:
        augment_main(workflow_args(corpus, encoder, tmp_path / "work", server.url + "/generate", "--route", "generate", "--structured", "auto"))
    assert {route for route, _ in server.requests} == {"generate"}
    assert sum(body["parameters"].get("grammar") is not None for body in server.bodies) == 1
    summary = json.loads((tmp_path / "work" / "summary.json").read_text())
    assert json.loads((tmp_path / "work" / "steps.json").read_text())["finished"].keys() == set(STEPS)
    assert summary["structured_output"] == "none" and summary["synthesis"]["synthetic_rows"] > 0
    assert summary["llm_usage"]["synthesize"]["explanations"]["answered"] > 0


def test_without_an_llm_synthesis_is_skipped_with_the_reason(setting, tmp_path, caplog):
    _, corpus, encoder = setting
    arguments = [argument for argument in workflow_args(corpus, encoder, tmp_path / "offline", "unused") if argument not in ("--endpoint", "unused")]
    augment_main(arguments)
    summary = json.loads((tmp_path / "offline" / "summary.json").read_text())
    assert "needs an LLM" in summary["synthesis"] and "fusion_synthetic_test" not in summary
    assert summary["final_model"].endswith("annotation-model")
    splits = load_corpus(tmp_path / "offline" / "dataset", splits=("train", "fusion", "dev", "test")).splits
    assert sum(len(row) for row in splits["fusion"]["extensions"]) > 0
    card = (tmp_path / "offline" / "annotation-model" / "README.md").read_text(encoding="utf-8")
    assert f"accelerate launch train.py --data {tmp_path / 'offline' / 'fusion'} --train_split fusion" in card and "--head_lr 0.01" in card  # the settings it was trained with


def test_train_args_override_the_workflow_options_of_both_models(tmp_path):
    from augment.settings import WorkflowTraining
    from augment.workflow import training_settings

    options = WorkflowTraining(encoder="enc", task="pos", epochs=1, batch_size=4, patience=5, seed=42, freeze_embeddings=True,
                               max_train_minutes=None, synthetic_weight=None, train_args="--epochs 3 --head_lr 1e-2 --character_embeddings")  # fmt: skip
    settings = training_settings(options, tmp_path / "dataset", "fusion,synthetic", tmp_path / "final-model", "me/data")
    assert (settings.data, settings.train_split, settings.output_dir) == (str(tmp_path / "dataset"), "fusion,synthetic", str(tmp_path / "final-model"))
    assert (settings.encoder, settings.task, settings.batch_size, settings.freeze_embeddings, settings.hub_dataset_id) == ("enc", "pos", 4, True, "me/data")
    assert (settings.epochs, settings.head_lr, settings.character_embeddings) == (3, 0.01, True)


def test_the_workflow_trains_with_settings_in_process_and_keeps_its_step_fingerprints(setting, tmp_path, monkeypatch):
    """No train.py argv is built; the step inputs are these dicts, key for key, or existing work folders would redo their steps."""
    import augment.workflow as workflow
    from knowfree import training
    from knowfree.training_settings import TrainingSettings

    _, corpus, encoder = setting
    trained = []

    def fake_train(settings):
        assert isinstance(settings, TrainingSettings)
        trained.append(settings)
        (tmp_path / "work" / "annotation-model").mkdir(parents=True)
        (tmp_path / "work" / "annotation-model" / "results.json").write_text(json.dumps({"test": {"f1": 0.5}}))
        return {}

    def no_command_line(*_):
        raise AssertionError("the workflow parsed a train.py command line")

    monkeypatch.setattr(workflow, "train", fake_train)
    monkeypatch.setattr(training, "main", no_command_line)
    monkeypatch.setattr(training, "parse_args", no_command_line)
    augment_main(["workflow", "--data", str(corpus), "--work_dir", str(tmp_path / "work"), "--encoder", str(encoder), "--epochs", "1", "--batch_size", "4",
                  "--freeze_embeddings", "--synthetic_weight", "0.7", "--train_args", "--head_lr 1e-2 --epochs 2"])  # fmt: skip
    [settings] = trained
    assert (settings.data, settings.train_split, settings.epochs, settings.head_lr, settings.synthetic_weight) == (str(tmp_path / "work" / "fusion"), "fusion", 2, 0.01, 0.7)
    finished = json.loads((tmp_path / "work" / "steps.json").read_text())["finished"]
    source = {"data": str(corpus), "files": workflow.source_fingerprint(str(corpus)), "k": None, "k_shot": None, "train_file": None, "seed": 42}
    extend = {"source": source, "annotator": "offline", "llm": None, "language": "zh", "embedding_model": "encoders/multilingual-e5-small-st", "epsilon": 1.5, "top_p": 5, "min_name_similarity": 0.93}
    training_options = {"encoder": str(encoder), "task": "ner", "epochs": 1, "batch_size": 4, "patience": 5, "seed": 42, "freeze_embeddings": True,
                        "max_train_minutes": None, "synthetic_weight": 0.7, "train_args": "--head_lr 1e-2 --epochs 2"}  # fmt: skip
    assert finished["extend"] == workflow.fingerprint(extend)
    assert finished["annotation_model"] == workflow.fingerprint({"fusion": finished["extend"], "training": training_options})


def test_the_llm_part_of_the_fingerprints_keeps_its_keys():
    from augment.prompts import PROMPTS_VERSION
    from augment.settings import LLMSettings
    from augment.workflow import llm_inputs

    llm = LLMSettings(endpoint="http://x", model="m", provider=None, token="secret", route="chat", structured="auto", concurrency=9, timeout=1.0, retries=7,
                      backoff=2.0, max_new_tokens=512, temperature=0.0, cache="c.jsonl")  # fmt: skip
    assert llm_inputs(llm) == {"endpoint": "http://x", "model": "m", "provider": None, "route": "chat", "max_new_tokens": 512, "temperature": 0.0, "structured": "auto", "prompts": PROMPTS_VERSION}
    assert "secret" not in repr(llm)
