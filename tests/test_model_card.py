"""knowfree.model_card: Hub metadata that names repos, never local paths, and a body that keeps every section;
then a model folder trained by train.py, pushed to the local Hub, which validates README metadata as the Hub does."""

import argparse
import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT, build_bert_char_tokenizer, training_rows, write_corpus, write_tiny_encoder
from hub_server import LocalHub, run_against_hub

from knowfree import training as train
from knowfree.model_card import CITATION, DEFAULT_LICENSE, SOURCE_MODEL_KEY, data_language, hub_license, hub_repo_id, write_model_card

LABELS = ["LOC", "ORG", "PER"]
E5_ID = "intfloat/multilingual-e5-small"
METRICS = {"precision": 0.75, "recall": 0.5, "f1": 0.6, "per_label": {"LOC": {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 4}}}
THRESHOLDS = {
    "chosen": "global",
    **{name: {"threshold": 0.4, "label_thresholds": {}, "dev_f1": 0.7, "test_f1": 0.6} for name in ("fixed", "global", "per_label")},
}


def front_matter(readme: str) -> dict:
    """The YAML block at the top of a card, as the Hub reads it."""
    assert readme.startswith("---\n")
    return yaml.safe_load(readme.split("---\n")[1])


def card(tmp_path: Path, **changes) -> str:
    """Write a card with realistic arguments (local data, a local encoder folder) and return its text."""
    arguments = dict(
        model_name="tester/knowfree-tiny", architecture="KnowFREE span", task="named-entity-recognition",
        dataset=str(tmp_path), base_model=str(tmp_path), train_rows=20, subset_note=", K = 250", target_labels=LABELS,
        extension_labels=["pos:n"], dev_metrics=METRICS, test_metrics=METRICS, thresholds=THRESHOLDS, stopped_by="max_steps",
        settings={"seed": 7}, command="accelerate launch train.py --data corpus", examples=["马云在杭州创办了阿里巴巴集团。"],
        repo_or_path="tester/knowfree-tiny",
    )  # fmt: skip
    return write_model_card(tmp_path, **{**arguments, **changes}).read_text(encoding="utf-8")


def encoder_folder(folder: Path, source: str | None = None) -> Path:
    """A folder with the config.json an encoder has, recording `source` the way knowfree-build-encoder does."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", **({SOURCE_MODEL_KEY: source} if source else {})}))
    return folder


def test_local_data_and_an_encoder_with_no_recorded_id_leave_no_path_in_the_metadata(tmp_path):
    text = card(tmp_path, base_model=str(encoder_folder(tmp_path / "encoder")))
    metadata = front_matter(text)
    assert "base_model" not in metadata and "datasets" not in metadata
    assert str(tmp_path) not in text.split("---\n")[1]
    assert metadata["license"] == DEFAULT_LICENSE and metadata["language"] == ["zh"]
    assert metadata["pipeline_tag"] == "token-classification" and metadata["library_name"] == "transformers"
    assert metadata["widget"] == [{"text": "马云在杭州创办了阿里巴巴集团。"}]
    (entry,) = metadata["model-index"]
    (result,) = entry["results"]
    assert entry["name"] == "tester/knowfree-tiny" and result["task"]["type"] == "token-classification"
    assert result["dataset"] == {"name": tmp_path.name, "type": tmp_path.name, "split": "test"}
    assert {metric["type"]: metric["value"] for metric in result["metrics"]} == {"f1": 0.6, "precision": 0.75, "recall": 0.5}
    assert "records no Hub id, so the metadata names no base model" in text


def test_base_model_is_the_id_an_encoder_folder_records_or_the_id_it_was_given(tmp_path):
    recorded = card(tmp_path, base_model=str(encoder_folder(tmp_path / "e5", E5_ID)))
    assert front_matter(recorded)["base_model"] == E5_ID
    assert f"[{E5_ID}](https://huggingface.co/{E5_ID}) (its local conversion" in recorded
    assert front_matter(card(tmp_path, base_model="my-org/my-encoder"))["base_model"] == "my-org/my-encoder"
    assert "base_model" not in front_matter(card(tmp_path, base_model=str(tmp_path / "no-such-folder" / "x")))


def test_datasets_name_a_hub_id_given_as_data_or_as_the_repo_a_local_copy_came_from(tmp_path):
    metadata = front_matter(card(tmp_path, dataset="my-org/weibo-ner"))
    assert metadata["datasets"] == ["my-org/weibo-ner"]
    assert metadata["model-index"][0]["results"][0]["dataset"]["type"] == "my-org/weibo-ner"
    text = card(tmp_path, dataset=str(tmp_path), hub_dataset_id="my-org/weibo-ner")
    assert front_matter(text)["datasets"] == ["my-org/weibo-ner"]
    assert f"[my-org/weibo-ner](https://huggingface.co/datasets/my-org/weibo-ner) (its local copy `{tmp_path}`)" in text


def test_license_and_language_come_from_the_arguments(tmp_path):
    metadata = front_matter(card(tmp_path, license="cc-by-sa-3.0", language="en"))
    assert metadata["license"] == "cc-by-sa-3.0" and metadata["language"] == ["en"]
    assert "language" not in front_matter(card(tmp_path, examples=["Hello world, nothing Chinese here."]))


def test_the_body_keeps_every_section_and_adds_versions_and_the_citation(tmp_path):
    text = card(tmp_path)
    for section in ("## Results", "## Labels", "## Usage", "## Training", "## Framework versions", "## License", "## Citation"):
        assert section in text
    assert "| test | 0.7500 | 0.5000 | 0.6000 |" in text and "| LOC | 1.0000 | 0.5000 | 0.6667 | 4 |" in text
    assert "Decision thresholds, chosen on dev (global): 0.40" in text and "step budget (`--max_steps`)" in text
    assert "overlapping windows, never truncated" in text and "1 extension labels (never predicted): pos:n" in text
    assert 'AutoModel.from_pretrained("tester/knowfree-tiny", trust_remote_code=True)' in text and 'revision="<commit hash>"' in text
    assert "accelerate launch train.py --data corpus" in text and "| seed | 7 |" in text
    assert "- knowfree: " in text and "- transformers: " in text and "- torch: " in text
    assert CITATION in text and "Lai, Peichao and Gan, Jiaxin" in CITATION and "Empirical Methods in Natural Language Processing" in CITATION
    assert "https://github.com/)" not in text


@pytest.mark.parametrize(
    ("texts", "language"),
    [
        (["马云在杭州创办了阿里巴巴集团。", "Hello 你好"], "zh"),
        (["The quick brown fox."], None),
        (["東京タワーはとても高いです。"], None),
        (["서울은 한국의 수도입니다."], None),
        ([], None),
    ],
)
def test_the_language_is_detected_only_when_the_script_tells_it(texts, language):
    assert data_language(texts) == language


def test_license_and_dataset_options_refuse_what_the_hub_would_refuse():
    assert hub_license("cc-by-nc-sa-4.0") == "cc-by-nc-sa-4.0" and hub_repo_id("org/data") == "org/data"
    for value in ("Apache 2.0", "apache2", "CC-BY-SA-3.0"):
        with pytest.raises(argparse.ArgumentTypeError, match="not a Hub license identifier"):
            hub_license(value)
    with pytest.raises(argparse.ArgumentTypeError):
        hub_repo_id("/tmp/weibo")
    arguments = ["--data", "corpus", "--output_dir", "out"]
    assert train.parse_args(arguments).license == DEFAULT_LICENSE
    with pytest.raises(SystemExit):
        train.parse_args([*arguments, "--license", "Apache 2.0"])


@pytest.fixture(scope="module")
def trained_folders(tmp_path_factory) -> dict[str, Path]:
    """Two models trained one step by train.py on local data: one on a tiny encoder folder that records no Hub id,
    one on a copy that records the e5 id, as a folder built by knowfree-build-encoder does."""
    root = tmp_path_factory.mktemp("model-card")
    rows = training_rows()
    corpus = write_corpus(root / "corpus", {"train": rows, "dev": rows[:4], "test": rows[4:8]}, LABELS)
    plain = write_tiny_encoder(root / "encoder", build_bert_char_tokenizer())
    recorded = shutil.copytree(plain, root / "encoder-e5")
    config = json.loads((recorded / "config.json").read_text())
    (recorded / "config.json").write_text(json.dumps({**config, SOURCE_MODEL_KEY: E5_ID}))
    folders = {}
    for name, encoder in (("plain", plain), ("recorded", recorded)):
        folders[name] = root / name
        train.main([
            "--data", str(corpus), "--encoder", str(encoder), "--output_dir", str(folders[name]), "--max_steps", "1",
            "--batch_size", "4", "--config_overrides", "projection_size=16,span_hidden_size=16,biaffine_heads=2,local_attention_heads=2",
        ])  # fmt: skip
    return folders


def test_models_trained_by_train_py_push_to_a_hub_that_validates_their_metadata(trained_folders, tmp_path):
    code = f"""
import json, sys
from pathlib import Path
sys.path.insert(0, {str(REPO_ROOT)!r})
from knowfree import training as train
from huggingface_hub import hf_hub_download
cards = {{}}
for name, folder in {({name: str(folder) for name, folder in trained_folders.items()})!r}.items():
    train.push_folder(Path(folder), f"tester/knowfree-{{name}}", private=False)
    cards[name] = Path(hf_hub_download(f"tester/knowfree-{{name}}", "README.md")).read_text(encoding="utf-8")
print(json.dumps(cards))
"""
    with LocalHub(tmp_path / "hub") as hub:
        cards = json.loads(run_against_hub(hub.url, code, cwd=tmp_path).stdout.strip().splitlines()[-1])
    for name, folder in trained_folders.items():
        assert cards[name] == (folder / "README.md").read_text(encoding="utf-8")
        assert str(folder.parent) not in cards[name].split("---\n")[1]
    plain, recorded = front_matter(cards["plain"]), front_matter(cards["recorded"])
    assert "base_model" not in plain and "datasets" not in plain
    assert recorded["base_model"] == E5_ID and "datasets" not in recorded
    assert plain["license"] == DEFAULT_LICENSE and plain["language"] == ["zh"]
