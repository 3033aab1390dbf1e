"""The local Hub (tests/hub_server.py) against the stock clients: huggingface_hub, datasets and transformers.

Every client call runs in a subprocess through `run_against_hub`, because HF_ENDPOINT is read at import time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_server import FAKE_USER, LocalHub, run_against_hub


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
