"""`transformers.pipeline()` drives a saved KnowFREE model (remote code, task found from the config)
and returns exactly `predict`'s spans, for a string, a list, a KeyDataset and with batch_size and device."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import CORPUS, REPO_ROOT, build_bert_char_tokenizer, tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    model = tiny_model(build_bert_char_tokenizer())
    with torch.no_grad():  # scores above and below any threshold: the untrained model predicts spans
        model.span_head.classifier.weight.mul_(5.0)
        model.span_head.classifier.bias.fill_(0.0)
    folder = tmp_path_factory.mktemp("pipeline") / "model"
    model.save_pretrained(folder)
    return folder


def test_the_saved_folder_names_its_pipeline(model_dir):
    config = json.loads((model_dir / "config.json").read_text())
    assert config["custom_pipelines"]["knowfree-span-labeling"]["impl"] == "pipeline_knowfree.KnowFreeSpanPipeline"
    assert (model_dir / "pipeline_knowfree.py").is_file()


def test_pipeline_in_a_fresh_process_gives_predict_s_spans(model_dir):
    code = f"""
import json
from datasets import Dataset
from transformers import AutoModel, pipeline
from transformers.pipelines.pt_utils import KeyDataset
texts = {CORPUS[:5]!r}
labeller = pipeline(model={str(model_dir)!r}, trust_remote_code=True, device="cpu")
model = AutoModel.from_pretrained({str(model_dir)!r}, trust_remote_code=True)
dataset = Dataset.from_dict({{"text": texts}})
print(json.dumps({{
    "task": labeller.task,
    "one": labeller(texts[0]) == model.predict(texts[0]),
    "list": labeller(texts, batch_size=2) == model.predict(texts),
    "threshold": labeller(texts, threshold=0.3, decoding="nested") == model.predict(texts, threshold=0.3, decoding="nested"),
    "key_dataset": list(labeller(KeyDataset(dataset, "text"), batch_size=2)) == model.predict(dataset),
    "spans": sum(len(spans) for spans in model.predict(texts)),
}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT.parent, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["spans"] > 0
    assert outcome == {"task": "knowfree-span-labeling", "one": True, "list": True, "threshold": True, "key_dataset": True, "spans": outcome["spans"]}


def test_predict_takes_a_dataset_and_any_iterable(model_dir):
    from datasets import Dataset

    from modeling_knowfree import KnowFreeModel

    model = KnowFreeModel.from_pretrained(model_dir)
    expected = model.predict(list(CORPUS[:4]))
    assert model.predict(Dataset.from_dict({"body": CORPUS[:4]}), text_column="body") == expected
    assert model.predict(text for text in CORPUS[:4]) == expected
    assert model.predict(tuple(CORPUS[:4]), show_progress_bar=True) == expected
    with pytest.raises(KeyError, match="no column 'text'"):
        model.predict(Dataset.from_dict({"body": CORPUS[:1]}))
    with pytest.raises(TypeError, match="item 1 is a int"):
        model.predict(["马云", 3])
