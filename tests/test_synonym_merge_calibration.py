"""benchmarks/synonym_merge_calibration.py: it reads the (mention, type) pairs of cached entity replies
only, decides each pair of types as the workflow would, and counts merges against hand-made classes."""

import gzip
import importlib.util
import json

import numpy as np
from conftest import REPO_ROOT

from augment.prompts import render

SPEC = importlib.util.spec_from_file_location("synonym_merge_calibration", REPO_ROOT / "benchmarks" / "synonym_merge_calibration.py")
calibration = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(calibration)


def cached(text: str, reply: list[dict], kind: str = "entities") -> dict:
    return {"key": text, "request": {"messages": render(kind, "zh", text=text) if kind == "entities" else render(kind, "zh", types=["人"])}, "reply": json.dumps(reply, ensure_ascii=False)}


def test_pairs_come_from_entity_replies_only_and_mentions_outside_the_text_are_dropped(tmp_path):
    rows = [
        cached("李明在北京", [{"entity": "李明", "type": "人名"}, {"entity": "北京", "type": "地点"}, {"entity": "上海", "type": "地点"}]),
        cached("unused", [], kind="merge"),
    ]
    path = tmp_path / "cache.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as file:
        file.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    assert calibration.cached_entity_pairs(calibration.cache_rows(path)) == [("李明", "人名"), ("北京", "地点")]


def test_the_name_check_keeps_apart_what_the_geometry_lets_merge():
    vectors = {"甲 is 人": (0.0, 0.0), "乙 is 人": (0.2, 0.0), "丙 is 人名": (0.1, 0.0),
               "丁 is 时间": (0.0, 0.05), "戊 is 时间": (0.2, 0.05), "己 is 时间": (0.1, 0.05),
               "人": (1.0, 0.0), "人名": (0.99, 0.14), "时间": (0.0, 1.0)}  # fmt: skip
    embed = calibration.memoised(lambda texts: np.array([vectors[text] for text in texts]))
    # 时间 has the most samples, so it is the reference of its pair with 人, which sorts first
    pairs = [("甲", "人"), ("乙", "人"), ("丙", "人名"), ("丁", "时间"), ("戊", "时间"), ("己", "时间")]
    outcomes = calibration.pair_merges(pairs, embed)
    judge = calibration.synonym_judge({"synonyms": [["人", "人名"]], "undecided": [["人名", "时间"]]})
    rows = {(row["epsilon"], row["min_name_similarity"]): row for row in calibration.tally(outcomes, judge)}
    assert rows[1.5, -1.0] == {"epsilon": 1.5, "min_name_similarity": -1.0, "synonyms_merged": 1, "synonyms": 1, "others_merged": 1, "others": 1}
    assert (rows[1.5, 0.93]["synonyms_merged"], rows[1.5, 0.93]["others_merged"]) == (1, 0)
    assert "| 1.5 | off (paper) | 1 of 1 | 1 of 1 |" in calibration.table(calibration.tally(outcomes, judge))
