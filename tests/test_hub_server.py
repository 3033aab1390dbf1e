"""The local Hub (tests/hub_server.py) against the stock clients: huggingface_hub, datasets and transformers, and
its check of README metadata, which refuses what the Hub refuses.

Every client call runs in a subprocess through `run_against_hub`, because HF_ENDPOINT is read at import time.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_server import FAKE_TOKEN, FAKE_USER, LocalHub, RepoKey, RepoStore, card_metadata_errors, run_against_hub


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[LocalHub]:
    with LocalHub(tmp_path / "hub") as local_hub:
        yield local_hub


def test_stop_joins_every_server_thread(tmp_path: Path) -> None:
    threads_before = set(threading.enumerate())
    with LocalHub(tmp_path / "hub") as hub:
        run_against_hub(hub.url, "from huggingface_hub import whoami; assert whoami()['name'] == 'tester'")
    assert set(threading.enumerate()) == threads_before


def test_folder_round_trip_with_text_and_binary_files(hub: LocalHub, tmp_path: Path) -> None:
    folder = tmp_path / "upload"
    (folder / "weights").mkdir(parents=True)
    (folder / "notes.txt").write_text("bonjour, hub\n", encoding="utf-8")
    binary = bytes(range(256)) * 40  # contains NUL bytes: preupload sends it through LFS
    (folder / "weights" / "blob.bin").write_bytes(binary)
    code = f"""
import filecmp, os
from pathlib import Path
from huggingface_hub import HfApi, HfFileSystem, hf_hub_download, snapshot_download

api = HfApi()
repo_url = api.create_repo("{FAKE_USER}/round-trip")
assert repo_url.repo_id == "{FAKE_USER}/round-trip", repo_url
commit = api.upload_folder(repo_id="{FAKE_USER}/round-trip", folder_path={str(folder)!r})
assert api.model_info("{FAKE_USER}/round-trip").sha == commit.oid

snapshot = Path(snapshot_download("{FAKE_USER}/round-trip"))
assert snapshot.name == commit.oid, snapshot
for relative in ("notes.txt", "weights/blob.bin"):
    assert filecmp.cmp(snapshot / relative, Path({str(folder)!r}) / relative, shallow=False), relative

text_path = hf_hub_download("{FAKE_USER}/round-trip", "notes.txt", revision=commit.oid, force_download=True)
assert Path(text_path).read_text(encoding="utf-8") == "bonjour, hub\\n"
binary_path = hf_hub_download("{FAKE_USER}/round-trip", "weights/blob.bin", force_download=True)
assert Path(binary_path).read_bytes() == Path({str(folder)!r}, "weights", "blob.bin").read_bytes()
ranged = HfFileSystem().cat_file("{FAKE_USER}/round-trip/weights/blob.bin", start=250, end=262)
assert ranged == Path(binary_path).read_bytes()[250:262], ranged  # HfFileSystem reads with a Range header

lfs_info = {{entry.path: entry.lfs for entry in api.list_repo_tree("{FAKE_USER}/round-trip", recursive=True)
             if hasattr(entry, "lfs")}}
assert lfs_info["notes.txt"] is None and lfs_info["weights/blob.bin"].size == {len(binary)}, lfs_info
"""
    run_against_hub(hub.url, code)


def test_dataset_dict_push_then_load_dataset(hub: LocalHub) -> None:
    rows = {
        "train": {"text": ["alpha", "beta", "gamma"], "label": [0, 1, 0]},
        "test": {"text": ["delta", "epsilon"], "label": [1, 1]},
    }
    code = f"""
import datasets
from huggingface_hub import HfApi, hf_hub_download

rows = {rows!r}
dataset = datasets.DatasetDict({{split: datasets.Dataset.from_dict(columns) for split, columns in rows.items()}})
dataset.push_to_hub("{FAKE_USER}/tiny-dataset")

files = HfApi().list_repo_files("{FAKE_USER}/tiny-dataset", repo_type="dataset")
assert "README.md" in files and sum(name.endswith(".parquet") for name in files) == 2, files
card = open(hf_hub_download("{FAKE_USER}/tiny-dataset", "README.md", repo_type="dataset"), encoding="utf-8").read()
assert "dataset_info:" in card and "- split: train" in card, card

loaded = datasets.load_dataset("{FAKE_USER}/tiny-dataset")
assert sorted(loaded) == ["test", "train"], loaded
for split, columns in rows.items():
    assert loaded[split].to_dict() == columns, (split, loaded[split].to_dict())
"""
    run_against_hub(hub.url, code)


TINY_CONFIGURATION = """
from transformers import PretrainedConfig


class TinyConfig(PretrainedConfig):
    model_type = "tiny-remote"

    def __init__(self, hidden_size=4, **kwargs):
        self.hidden_size = hidden_size
        super().__init__(**kwargs)
"""

TINY_MODELING = """
import torch
from transformers import PreTrainedModel

try:
    from .configuration_tiny import TinyConfig
except ImportError:
    from configuration_tiny import TinyConfig


class TinyModel(PreTrainedModel):
    config_class = TinyConfig

    def __init__(self, config):
        super().__init__(config)
        self.linear = torch.nn.Linear(config.hidden_size, config.hidden_size)
        self.post_init()

    def forward(self, inputs):
        return self.linear(inputs)
"""


def test_remote_code_model_push_then_auto_model_load(hub: LocalHub, tmp_path: Path) -> None:
    source = tmp_path / "tiny_source"
    source.mkdir()
    (source / "configuration_tiny.py").write_text(TINY_CONFIGURATION, encoding="utf-8")
    (source / "modeling_tiny.py").write_text(TINY_MODELING, encoding="utf-8")
    expected_path = tmp_path / "expected.json"
    push = f"""
import json, torch
from configuration_tiny import TinyConfig
from modeling_tiny import TinyModel

TinyConfig.register_for_auto_class()
TinyModel.register_for_auto_class("AutoModel")
torch.manual_seed(0)
model = TinyModel(TinyConfig(hidden_size=4)).eval()
model.push_to_hub("{FAKE_USER}/tiny-remote")
with torch.no_grad():
    outputs = model(torch.arange(8, dtype=torch.float32).reshape(2, 4))
json.dump(outputs.tolist(), open({str(expected_path)!r}, "w"))
"""
    run_against_hub(hub.url, push, cwd=source)

    load = f"""
import json, torch
from transformers import AutoModel

model = AutoModel.from_pretrained("{FAKE_USER}/tiny-remote", trust_remote_code=True).eval()
assert type(model).__name__ == "TinyModel" and "transformers_modules" in type(model).__module__, type(model)
with torch.no_grad():
    outputs = model(torch.arange(8, dtype=torch.float32).reshape(2, 4))
expected = torch.tensor(json.load(open({str(expected_path)!r})))
assert torch.allclose(outputs, expected), (outputs, expected)
"""
    run_against_hub(hub.url, load, cwd=tmp_path)


def test_delete_repo_then_missing_repo_is_repository_not_found(hub: LocalHub) -> None:
    code = f"""
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import RepositoryNotFoundError

api = HfApi()
api.create_repo("{FAKE_USER}/short-lived", repo_type="dataset")
assert api.repo_exists("{FAKE_USER}/short-lived", repo_type="dataset")
api.delete_repo("{FAKE_USER}/short-lived", repo_type="dataset")
assert not api.repo_exists("{FAKE_USER}/short-lived", repo_type="dataset")

for call in (
    lambda: api.model_info("{FAKE_USER}/never-created"),
    lambda: hf_hub_download("{FAKE_USER}/never-created", "config.json"),
    lambda: api.delete_repo("{FAKE_USER}/short-lived", repo_type="dataset"),
):
    try:
        call()
    except RepositoryNotFoundError:
        continue
    raise AssertionError("expected RepositoryNotFoundError")
print("ok")
"""
    assert run_against_hub(hub.url, code).stdout.strip() == "ok"


VALID_MODEL_CARD = """---
base_model: intfloat/multilingual-e5-small
datasets:
- tester/weibo
license: apache-2.0
model-index:
- name: tester/knowfree
  results:
  - task:
      type: token-classification
    dataset:
      name: weibo
      type: tester/weibo
    metrics:
    - type: f1
      value: 0.61
---
# A model
"""


def with_metadata(card: str, old: str, new: str) -> str:
    assert old in card
    return card.replace(old, new)


def test_a_card_following_the_hub_rules_and_one_without_metadata_are_accepted() -> None:
    assert card_metadata_errors(VALID_MODEL_CARD, "model") == []
    assert card_metadata_errors("# no metadata at all\n", "model") == []
    assert card_metadata_errors("---\nlicense: mit\nsize_categories:\n- n<1K\n---\n", "dataset") == []


NOT_REPO_IDS = ("encoders/multilingual-e5-small/v1", "/tmp/tmpx1/encoder", "./encoder", "examples/weibo data", "../shared/data/weibo", "org--x/name")


@pytest.mark.parametrize("value", NOT_REPO_IDS)
def test_base_model_and_datasets_must_be_repo_ids_not_paths(value: str) -> None:
    card = with_metadata(with_metadata(VALID_MODEL_CARD, "intfloat/multilingual-e5-small", value), "- tester/weibo", f"- {value}")
    assert card_metadata_errors(card, "model") == [
        f'"{field}" with value "{value}" is not valid. It must be a {kind} id on the Hub: "name" or "namespace/name"'
        for field, kind in (("base_model", "model"), ("datasets", "dataset"))
    ]


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("      type: tester/weibo\n", "", "results[0].dataset.type"),
        ("      type: token-classification\n", "      name: NER\n", "results[0].task.type"),
        ("      value: 0.61\n", "", "results[0].metrics[0].value"),
        ("- name: tester/knowfree\n", "- results_only: true\n", "name"),
    ],
)
def test_a_model_index_entry_missing_a_required_field_is_named(old: str, new: str, field: str) -> None:
    (error,) = card_metadata_errors(with_metadata(VALID_MODEL_CARD, old, new), "model")
    assert error.startswith(f'"model-index[0].{field}" is required')


def test_an_empty_metric_list_an_unknown_license_and_broken_yaml_are_refused() -> None:
    no_metrics = with_metadata(VALID_MODEL_CARD, "    metrics:\n    - type: f1\n      value: 0.61\n", "    metrics: []\n")
    assert card_metadata_errors(no_metrics, "model") == ['"model-index[0].results[0].metrics" must be a non-empty array']
    (license_error,) = card_metadata_errors(with_metadata(VALID_MODEL_CARD, "apache-2.0", "Apache 2.0"), "model")
    assert license_error.startswith('"license" with value "Apache 2.0" is not valid')
    (yaml_error,) = card_metadata_errors(with_metadata(VALID_MODEL_CARD, "apache-2.0", "[unterminated"), "model")
    assert yaml_error.startswith("YAML metadata could not be parsed")


def test_dataset_cards_need_a_known_size_bucket_and_license() -> None:
    errors = card_metadata_errors("---\nlicense: CC BY-SA 3.0\nsize_categories:\n- n<1B\n---\n", "dataset")
    assert [error.split(" is not valid")[0] for error in errors] == ['"license" with value "CC BY-SA 3.0"', '"size_categories" with value "n<1B"']


def test_a_push_with_bad_metadata_is_refused_with_a_400_and_nothing_is_committed(hub: LocalHub, tmp_path: Path) -> None:
    bad = with_metadata(VALID_MODEL_CARD, "intfloat/multilingual-e5-small", "encoders/multilingual-e5-small/v1")
    code = f"""
import json
from huggingface_hub import HfApi, ModelCard

api = HfApi()
api.create_repo("{FAKE_USER}/strict")
api.upload_file(path_or_fileobj={VALID_MODEL_CARD.encode()!r}, path_in_repo="README.md", repo_id="{FAKE_USER}/strict")
head = api.model_info("{FAKE_USER}/strict").sha
refused = {{}}
try:
    api.upload_file(path_or_fileobj={bad.encode()!r}, path_in_repo="README.md", repo_id="{FAKE_USER}/strict")
except ValueError as error:
    refused["client"] = str(error)
try:
    ModelCard({bad!r}).validate()
except ValueError as error:
    refused["validate"] = str(error)
assert api.model_info("{FAKE_USER}/strict").sha == head
print(json.dumps(refused))
"""
    refused = json.loads(run_against_hub(hub.url, code).stdout.strip().splitlines()[-1])
    assert refused["client"].startswith("Invalid metadata in README.md.\n- \"base_model\" with value")
    assert refused["validate"].startswith('Invalid metadata in README.md.\n- "base_model" with value "encoders/multilingual-e5-small/v1"')


def test_a_commit_that_skips_the_yaml_check_is_refused_too(hub: LocalHub) -> None:
    """The Hub checks the metadata on the commit itself as well, whatever the client asked before."""
    hub_store = RepoStore(hub.root)
    key = RepoKey("dataset", f"{FAKE_USER}/raw")
    hub_store.create(key)
    card = "---\nlicense: mit\nsize_categories:\n- 10 rows\n---\n# data\n"
    operation = {"key": "file", "value": {"path": "README.md", "content": base64.b64encode(card.encode()).decode(), "encoding": "base64"}}
    request = urllib.request.Request(
        f"{hub.url}/api/datasets/{key.repo_id}/commit/main",
        data="\n".join(json.dumps(line) for line in ({"key": "header", "value": {"summary": "raw"}}, operation)).encode(),
        headers={"Authorization": f"Bearer {FAKE_TOKEN}", "Content-Type": "application/x-ndjson"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400
    assert '"size_categories" with value "10 rows" is not valid' in json.loads(refused.value.read())["error"]
    assert list(hub_store.commit_record(key, hub_store.head(key))["files"]) == [".gitattributes"]
