"""knowfree-augment extend end to end: offline and through a fake LLM, resume after SIGKILL, Hub push."""

import json
import os
import signal
import subprocess
import sys
import threading

import pytest
from conftest import REPO_ROOT, build_bert_char_tokenizer, training_rows, write_corpus, write_tiny_encoder
from fake_llm_server import HANG, FakeLLM
from hub_server import LocalHub, run_against_hub
from scripted_annotator import ScriptedAnnotator, prompt_kind

from knowfree import training as train
from augment.cli import main as augment_main
from augment.dataset_export import read_metadata
from augment.llm_client import CHAT_FORMS
from knowfree.data import load_corpus
from knowfree.label_weights import extension_alphas

LABELS = ["LOC", "ORG", "PER"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rows = training_rows()
    return write_corpus(tmp_path_factory.mktemp("augment") / "corpus", {"train": rows, "dev": rows[:4], "test": rows[4:8]}, LABELS)


@pytest.fixture(scope="module")
def offline_fusion(corpus, tmp_path_factory):
    output = tmp_path_factory.mktemp("offline") / "fusion"
    augment_main(["extend", "--data", str(corpus), "--output_dir", str(output)])
    return output


def test_help_lists_the_options(capsys):
    from augment.cli import parse_args

    with pytest.raises(SystemExit) as exited:
        parse_args(["extend", "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    for option in ("--endpoint", "--model", "--provider", "--route", "--concurrency", "--timeout", "--retries", "--cache", "--dry_run", "--push_to_hub", "--epsilon", "--top_p", "--min_name_similarity", "--embedding_model", "--structured", "--label_map"):
        assert option in shown


def test_offline_fusion_dataset_is_a_training_corpus(offline_fusion, corpus):
    fused = load_corpus(offline_fusion, train_splits=("fusion",))
    original = load_corpus(corpus)
    assert fused.splits["train"]["text"] == original.splits["train"]["text"]
    assert fused.splits["train"]["entities"] == original.splits["train"]["entities"]
    assert all(row["extensions"] for row in fused.splits["train"])
    assert fused.splits["dev"]["extensions"] == [[] for _ in range(len(fused.splits["dev"]))]
    metadata = read_metadata(offline_fusion)
    assert metadata["provenance"]["annotator"] == "jieba-posseg"
    assert list(fused.extension_labels) == metadata["extension_labels"]
    expected = extension_alphas(fused.splits["train"], LABELS, metadata["extension_labels"])
    assert list(metadata["extension_label_weights"].values()) == pytest.approx(expected)
    assert "ent:地名" in metadata["extension_labels"] and "pos:n" in metadata["extension_labels"]
    plain = load_corpus(offline_fusion)
    assert plain.splits["train"]["extensions"] == [[] for _ in range(len(plain.splits["train"]))]
    card = (offline_fusion / "README.md").read_text(encoding="utf-8")
    assert "--train_split fusion" in card and "ent:地名" in card


def test_extend_annotates_the_k_shot_sample_train_py_would_train_on(corpus, tmp_path):
    output = tmp_path / "five-shot"
    augment_main(["extend", "--data", str(corpus), "--k_shot", "2", "--data_seed", "3", "--output_dir", str(output)])
    fused = load_corpus(output, train_splits=("fusion",)).splits["train"]
    expected = train.load_training_corpus(train.parse_args(["--data", str(corpus), "--k_shot", "2", "--data_seed", "3", "--output_dir", "unused"]))
    assert fused["text"] == expected.splits["train"]["text"] and len(fused) < len(training_rows())
    assert read_metadata(output)["provenance"]["k_shot"] == 2
    assert "2-shot" in (output / "README.md").read_text(encoding="utf-8")


def test_train_py_trains_on_the_fusion_split(offline_fusion, tmp_path):
    encoder = write_tiny_encoder(tmp_path / "encoder", build_bert_char_tokenizer())
    results = train.main([
        "--data", str(offline_fusion), "--train_split", "fusion", "--encoder", str(encoder), "--output_dir", str(tmp_path / "run"),
        "--max_steps", "1", "--batch_size", "4", "--config_overrides", "projection_size=16,span_hidden_size=16,biaffine_heads=2,local_attention_heads=2",
    ])  # fmt: skip
    assert results["train_rows"] == len(training_rows()) and results["best_step"] == 1
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    metadata = read_metadata(offline_fusion)
    assert config["extension_labels"] == metadata["extension_labels"]
    assert config["extension_label_weights"] == pytest.approx(list(metadata["extension_label_weights"].values()))


def llm_environment() -> dict:
    environment = {key: value for key, value in os.environ.items() if key != "HF_HUB_OFFLINE"}
    environment["PYTHONPATH"] = str(REPO_ROOT)
    return environment


def extend_command(corpus, output, endpoint, *extra) -> list[str]:
    return [sys.executable, "-m", "augment", "extend", "--data", str(corpus), "--output_dir", str(output), "--endpoint", endpoint,
            "--concurrency", "1", "--retries", "0", "--timeout", "30", *extra]  # fmt: skip


ENTITIES = {row["text"]: json.dumps([{"entity": row["text"][span["start"]:span["end"]], "type": "专名"} for span in row["entities"]], ensure_ascii=False) for row in training_rows()}


class KillSwitch:
    """Answers normally, but holds request number `hold_at` (1-based) and signals that it got there."""

    def __init__(self, hold_at: int) -> None:
        self.inner = ScriptedAnnotator(ENTITIES)
        self.hold_at = hold_at
        self.seen = 0
        self.reached = threading.Event()
        self.armed = False
        self._lock = threading.Lock()

    def __call__(self, prompt):
        with self._lock:
            self.seen += 1
            if self.armed and self.seen == self.hold_at:
                self.reached.set()
                return HANG
        return self.inner(prompt)


def comparable(folder) -> tuple:
    metadata = read_metadata(folder)
    metadata["provenance"].pop("date")
    metadata.pop("llm_requests")
    metadata.pop("llm_usage")
    return (folder / "fusion.jsonl").read_text(encoding="utf-8"), metadata


@pytest.mark.usefixtures("hub_online")
def test_killed_annotation_resumes_without_repeating_a_request(corpus, tmp_path):
    script = KillSwitch(hold_at=17)
    with FakeLLM(script) as server:
        reference = subprocess.run(extend_command(corpus, tmp_path / "reference", server.url, "--cache", str(tmp_path / "reference.jsonl")), env=llm_environment(), capture_output=True, text=True, timeout=300)
        assert reference.returncode == 0, reference.stderr
        uninterrupted_requests = len(server.requests)
        script.seen, script.armed, server.requests[:] = 0, True, []

        cache = tmp_path / "resumed.jsonl"
        process = subprocess.Popen(extend_command(corpus, tmp_path / "resumed", server.url, "--cache", str(cache)), env=llm_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert script.reached.wait(timeout=300), "the annotation never reached the held request"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        assert not (tmp_path / "resumed").exists()
        cached = [json.loads(line)["request"] for line in cache.read_text(encoding="utf-8").splitlines()]
        cached_prompts = {"\n\n".join(message["content"] for message in request["messages"]) + "\n\n" for request in cached if "messages" in request}
        assert len(cached_prompts) == 16 - len(CHAT_FORMS)  # the first requests probed the schema forms (this server obeys none)
        script.armed, first_run_requests = False, len(server.requests)
        server.requests[:] = []

        resumed = subprocess.run(extend_command(corpus, tmp_path / "resumed", server.url, "--cache", str(cache)), env=llm_environment(), capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
    second_run_prompts = [prompt for _, prompt in server.requests]
    assert not cached_prompts & set(second_run_prompts)
    assert first_run_requests - 1 + len(second_run_prompts) == uninterrupted_requests  # the held request is asked again, nothing else
    assert comparable(tmp_path / "resumed") == comparable(tmp_path / "reference")
    assert {prompt_kind(prompt) for prompt in second_run_prompts} >= {"pos", "merge"}


@pytest.mark.usefixtures("hub_online")
def test_dry_run_prints_prompts_and_calls_nothing(corpus, tmp_path):
    with FakeLLM(ScriptedAnnotator()) as server:
        result = subprocess.run(extend_command(corpus, tmp_path / "dry", server.url, "--dry-run"), env=llm_environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert server.requests == [] and not (tmp_path / "dry").exists()
    rows = training_rows()
    assert rows[0]["text"] in result.stdout and "命名实体" in result.stdout
    assert f"requests: {2 * len(rows)} entity + segmentation (0 cached)" in result.stdout


def test_push_to_a_local_hub_and_load_back(corpus, tmp_path):
    with LocalHub(tmp_path / "hub") as hub:
        code = f"""
from augment.cli import main
main(["extend", "--data", {str(corpus)!r}, "--output_dir", {str(tmp_path / 'out')!r}, "--push_to_hub", "tester/fusion-demo"])
from datasets import load_dataset
from huggingface_hub import DatasetCard, hf_hub_download
import json
loaded = load_dataset("tester/fusion-demo")
print(json.dumps({{"splits": sorted(loaded), "fusion_extensions": sum(len(row) for row in loaded["fusion"]["extensions"]),
    "card": DatasetCard.load("tester/fusion-demo", repo_type="dataset").text,
    "labels": open(hf_hub_download("tester/fusion-demo", "labels.txt", repo_type="dataset")).read().split(),
    "metadata": json.load(open(hf_hub_download("tester/fusion-demo", "augmentation.json", repo_type="dataset")))["extension_labels"]}}, ensure_ascii=False))
"""
        result = run_against_hub(hub.url, code, cwd=REPO_ROOT)
    pushed = json.loads(result.stdout.strip().splitlines()[-1])
    assert pushed["splits"] == ["dev", "fusion", "test", "train"]
    assert pushed["fusion_extensions"] > 0
    assert pushed["labels"] == LABELS
    assert "ent:地名" in pushed["metadata"] and "KnowFREE augmented dataset" in pushed["card"]
    local = load_corpus(tmp_path / "out", train_splits=("fusion",))
    assert pushed["fusion_extensions"] == sum(len(row) for row in local.splits["train"]["extensions"])


def tiny_sentence_transformer(folder):
    from sentence_transformers import SentenceTransformer, models

    encoder = write_tiny_encoder(folder / "encoder", build_bert_char_tokenizer())
    transformer = models.Transformer(str(encoder))
    model = SentenceTransformer(modules=[transformer, models.Pooling(transformer.get_word_embedding_dimension())], device="cpu")
    model.save(str(folder / "st"))
    return folder / "st"


@pytest.mark.usefixtures("hub_online")
def test_llm_synonym_groups_are_decided_by_the_embedding_model(corpus, tmp_path):
    rows = training_rows()
    entities = {row["text"]: json.dumps([{"entity": row["text"][s["start"]:s["end"]], "type": {"PER": "人物", "LOC": "城市", "ORG": "组织"}[s["label"]]} for s in row["entities"]], ensure_ascii=False) for row in rows}
    groups = json.dumps({"人名": ["人物"], "地名": ["城市", "组织"]}, ensure_ascii=False)
    with FakeLLM(ScriptedAnnotator(entities, merge_reply=groups)) as server:
        augment_main(["extend", "--data", str(corpus), "--output_dir", str(tmp_path / "out"), "--endpoint", server.url, "--retries", "0",
                      "--embedding_model", str(tiny_sentence_transformer(tmp_path)), "--epsilon", "1000", "--min_name_similarity", "-1"])  # fmt: skip
    merging = read_metadata(tmp_path / "out")["merging"]
    assert merging["proposed_groups"] == {"人名": ["人物"], "地名": ["城市", "组织"]}
    assert merging["type_to_label"] == {"人物": "人名", "城市": "地名", "组织": "地名"}  # a huge epsilon merges every proposed synonym
    assert {decision["type"] for decision in merging["decisions"]} == {"人物", "城市", "组织"}
    labels = read_metadata(tmp_path / "out")["extension_labels"]
    assert "ent:地名" in labels and "ent:城市" not in labels and "pos:n" in labels
    assert "## Synonym merging" in (tmp_path / "out" / "README.md").read_text(encoding="utf-8")


@pytest.mark.usefixtures("hub_online")
def test_an_edited_label_map_rebuilds_the_fusion_without_a_request(corpus, tmp_path):
    rows = training_rows()
    entities = {row["text"]: json.dumps([{"entity": row["text"][s["start"]:s["end"]], "type": {"PER": "人物", "LOC": "城市", "ORG": "组织"}[s["label"]]} for s in row["entities"]], ensure_ascii=False) for row in rows}
    groups = json.dumps({"人名": ["人物"], "地名": ["城市", "组织"]}, ensure_ascii=False)
    embedding_model = str(tiny_sentence_transformer(tmp_path))
    first, edited_run = tmp_path / "first", tmp_path / "edited"
    arguments = ["extend", "--data", str(corpus), "--endpoint", "", "--retries", "0", "--embedding_model", embedding_model, "--epsilon", "1000", "--min_name_similarity", "-1", "--cache", str(tmp_path / "cache.jsonl")]
    with FakeLLM(ScriptedAnnotator(entities, merge_reply=groups)) as server:
        arguments[4] = server.url
        augment_main([*arguments, "--output_dir", str(first)])
        label_map = json.loads((first / "label_map.json").read_text(encoding="utf-8"))
        assert {(entry["member"], entry["group"], entry["decision"]) for entry in label_map["entries"]} == {("人物", "人名", "merge"), ("城市", "地名", "merge"), ("组织", "地名", "merge")}
        for entry in label_map["entries"]:
            if entry["member"] == "组织":
                entry["decision"] = "keep"
        edited = tmp_path / "label_map.json"
        edited.write_text(json.dumps(label_map, ensure_ascii=False), encoding="utf-8")
        asked_before = len(server.requests)
        augment_main([*arguments, "--output_dir", str(edited_run), "--label_map", str(edited)])
        assert len(server.requests) == asked_before  # rebuilt from the reply cache alone
    metadata = read_metadata(edited_run)
    assert metadata["merging"]["type_to_label"] == {"人物": "人名", "城市": "地名", "组织": "组织"}
    assert metadata["merging"]["from_label_map_file"] and metadata["llm_requests"].get("sent", 0) == 0
    assert {"ent:人名", "ent:地名"} <= set(metadata["extension_labels"])
    assert ("ent:组织" in metadata["extension_labels"]) == (metadata["extension_span_counts"].get("ent:组织", 0) > 0)
    card = (edited_run / "README.md").read_text(encoding="utf-8")
    assert "## Label map" in card and "edited label map file" in card and "| 组织 | 组织 |" in card


def test_a_broken_label_map_names_the_file_the_entry_and_the_field(tmp_path):
    from augment.label_map import LabelMapError, read_label_map

    path = tmp_path / "label_map.json"
    path.write_text(json.dumps({"entries": [{"group": "地名", "member": "城市", "decision": "merge"}, {"group": "地名", "member": "组织", "decision": "maybe"}]}), encoding="utf-8")
    with pytest.raises(LabelMapError, match=r"label_map\.json: entries\[1\] field 'decision'"):
        read_label_map(path)
    path.write_text('{"entries": [\n{"group": "a",}\n]}', encoding="utf-8")
    with pytest.raises(LabelMapError, match=r"label_map\.json line 2"):
        read_label_map(path)


@pytest.mark.usefixtures("hub_online")
def test_a_tgi_generate_endpoint_without_schema_support_still_works(corpus, tmp_path):
    """The structured path must not break servers that ignore schemas: TGI's /generate route, scripted replies."""
    with FakeLLM(ScriptedAnnotator(ENTITIES)) as server:
        augment_main(["extend", "--data", str(corpus), "--output_dir", str(tmp_path / "out"), "--endpoint", server.url + "/generate",
                      "--route", "generate", "--retries", "0", "--structured", "auto"])  # fmt: skip
    assert {route for route, _ in server.requests} == {"generate"}
    grammars = [body["parameters"].get("grammar") for body in server.bodies]
    assert grammars[0] is not None and all(grammar is None for grammar in grammars[1:])  # probed once, then plain
    metadata = read_metadata(tmp_path / "out")
    assert metadata["provenance"]["structured_output"] == "none"
    assert metadata["annotation_counts"]["entity_mentions"] > 0 and metadata["annotation_counts"]["rows_with_pos"] == len(training_rows())
