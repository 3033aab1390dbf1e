"""knowfree-predict: the spans of `predict`, a line out per line in, bad lines reported, and resumable."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import CORPUS, REPO_ROOT, build_bert_char_tokenizer, tiny_model

from knowfree.predict_command import main
from modeling_knowfree import KnowFreeModel


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    model = tiny_model(build_bert_char_tokenizer())
    with torch.no_grad():  # scores that straddle any threshold, so the untrained model predicts spans
        model.span_head.classifier.weight.mul_(5.0)
        model.span_head.classifier.bias.fill_(0.0)
    folder = tmp_path_factory.mktemp("predict") / "model"
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def jsonl_input(tmp_path_factory):
    path = tmp_path_factory.mktemp("input") / "texts.jsonl"
    lines = [json.dumps({"id": index, "text": text}, ensure_ascii=False) for index, text in enumerate(CORPUS[:5])]
    lines.insert(2, "{not json")
    lines.insert(4, json.dumps({"id": 99, "body": "no text field"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(model_dir, source, output, *extra) -> None:
    assert main(["--model", str(model_dir), "--input", str(source), "--output", str(output), "--batch_size", "2", *extra]) == 0


def test_every_line_gets_predict_s_spans_in_order_and_bad_lines_are_reported(model_dir, jsonl_input, tmp_path, capsys):
    run(model_dir, jsonl_input, tmp_path / "out.jsonl")
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(written) == 7 and written[2] == {"line": 3, "error": "invalid JSON (Expecting property name enclosed in double quotes at column 2)"}
    assert written[4] == {"line": 5, "error": "no string field 'text'"}
    model = KnowFreeModel.from_pretrained(model_dir)
    good = [record for record in written if "spans" in record]
    assert [record["id"] for record in good] == list(range(5))
    assert [record["spans"] for record in good] == model.predict([record["text"] for record in good])
    assert any(record["spans"] for record in good)
    assert "line 3: invalid JSON" in capsys.readouterr().err


def test_a_killed_run_is_resumed_and_writes_each_line_once(model_dir, jsonl_input, tmp_path):
    run(model_dir, jsonl_input, tmp_path / "full.jsonl")
    full = (tmp_path / "full.jsonl").read_text(encoding="utf-8")
    lines = full.splitlines(keepends=True)
    partial = tmp_path / "partial.jsonl"
    partial.write_text("".join(lines[:3]) + lines[3][:10], encoding="utf-8")  # killed while writing line 4
    run(model_dir, jsonl_input, partial)
    assert partial.read_text(encoding="utf-8") == full


def test_plain_text_through_the_console_script_with_a_threshold(model_dir, tmp_path):
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(CORPUS[:3]) + "\n", encoding="utf-8")
    command = [sys.executable, "-m", "knowfree.predict_command", "--model", str(model_dir), "--input", str(source), "--output", "-", "--threshold", "0.4"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    written = [json.loads(line) for line in result.stdout.splitlines()]
    model = KnowFreeModel.from_pretrained(model_dir)
    assert written == [{"line": number, "text": text, "spans": spans} for number, (text, spans) in enumerate(zip(CORPUS[:3], model.predict(CORPUS[:3], threshold=0.4)), start=1)]


def test_a_missing_input_is_one_line_and_exit_2(model_dir, tmp_path):
    command = [sys.executable, "-m", "knowfree.predict_command", "--model", str(model_dir), "--input", str(tmp_path / "none.txt"), "--output", str(tmp_path / "o.jsonl")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 2 and "none.txt not found" in result.stderr and "Traceback" not in result.stderr
