"""scripts/record_llm_fixtures.py: replies kept per prompt kind and form, explanation replies only with the row they explain."""

import importlib.util
import json

from conftest import REPO_ROOT

from augment.prompts import render
from augment.synthesis import explanation_request

SPEC = importlib.util.spec_from_file_location("record_llm_fixtures", REPO_ROOT / "scripts" / "record_llm_fixtures.py")
recording = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(recording)

ROW = {"text": "马云在杭州。", "entities": [{"start": 0, "end": 2, "label": "PER"}], "extensions": [{"start": 3, "end": 5, "label": "ent:地点"}]}
UNKNOWN = {"text": "没有这一行。", "entities": [], "extensions": []}


def test_explanations_are_kept_with_their_row_and_kinds_are_chosen(tmp_path):
    cache = tmp_path / "cache.jsonl"
    entries = [
        {"key": "p", "request": {"probe": "structured-probe-1"}, "reply": "json_object_schema"},
        {"key": "a", "request": {"messages": render("entities", "zh", text=ROW["text"]), "structured": {"form": "json_object_schema"}}, "reply": "[]"},
        {"key": "b", "request": {"messages": explanation_request(ROW, "zh")}, "reply": "马云是企业家。"},
        {"key": "c", "request": {"messages": explanation_request(UNKNOWN, "zh")}, "reply": "无从对照。"},
    ]
    cache.write_text("".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries), encoding="utf-8")
    lines = recording.fixture_lines([cache], per_kind=5, rows=[ROW])
    assert [(line["kind"], line["structured_form"]) for line in lines] == [("entities", "json_object_schema"), ("explain_entities", "none")]
    assert lines[1]["row"] == {"text": ROW["text"], "entities": ROW["entities"]} and lines[1]["reply"] == "马云是企业家。"
    assert [line["kind"] for line in recording.fixture_lines([cache], per_kind=5, rows=[ROW], kinds=("explain_entities",))] == ["explain_entities"]
    assert [line["kind"] for line in recording.fixture_lines([cache], per_kind=5)] == ["entities"]  # no rows: no explanation can be kept
