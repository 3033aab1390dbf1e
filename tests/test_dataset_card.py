"""augment.dataset_card and the card dataset_export writes: what a reader of the Hub page learns about an augmented
dataset, and front matter the Hub accepts (task, license, size, language)."""

import json

import pytest
from conftest import REPO_ROOT, training_rows, write_corpus
from datasets import Dataset, DatasetDict
from hub_server import LocalHub, run_against_hub
from huggingface_hub import DatasetCard

from augment.cli import main as augment_main
from augment.dataset_card import labelling_task, render_dataset_card, size_category
from augment.dataset_export import save_augmented, source_license
from knowfree.data import FEATURES


def metadata(**changes) -> dict:
    base = {
        "provenance": {"source": "../shared/data/weibo", "k": 250, "k_shot": None, "date": "2026-11-29", "annotator": "llm", "annotator_version": "qwen"},
        "target_labels": ["PER.NAM", "GPE.NAM"],
        "extension_labels": ["ent:地名", "ent:other", "pos:n"],
        "extension_label_weights": {"ent:地名": 1.0, "ent:other": 0.5, "pos:n": 0.0123},
        "extension_span_counts": {"ent:地名": 12, "ent:other": 4, "pos:n": 800},
        "annotation_counts": {"entity_mentions": 16, "pos_clause": 3},
        "rare_labels": {"min_label_count": 3, "labels": {"ent:网址": {"spans": 1, "folded_into": "ent:other"}, "pos:o": {"spans": 1, "folded_into": None}}},
        "merging": {
            "epsilon": 1.5, "top_p": 5, "min_name_similarity": 0.93,
            "decisions": [{"group": "地名", "type": "城市", "reference": "地点", "samples": 5, "distance": 0.2, "threshold": 0.4, "name_similarity": 0.95, "merged": True}],
            "label_map": [
                {"group": "地名", "member": "城市", "samples": 5, "distance": 0.2, "threshold": 0.4, "name_similarity": 0.95, "decision": "merge"},
                {"group": "时间", "member": "时间", "samples": 2, "distance": None, "threshold": None, "name_similarity": None, "decision": "keep"},
            ],
            "from_label_map_file": False,
        },
    }  # fmt: skip
    return base | changes


def test_the_card_states_labels_weights_rare_labels_and_the_final_map():
    card = render_dataset_card(metadata(), {"train": 250, "fusion": 250, "dev": 270, "test": 270}, "accelerate launch train.py ...")
    assert "(K = 250)" in card and "`llm` (qwen)" in card
    assert "| ent:地名 | 12 | 1.0000 |" in card and "| pos:n | 800 | 0.0123 |" in card
    assert "| ent:网址 | 1 | ent:other |" in card and "| pos:o | 1 | dropped |" in card
    assert "## Label map" in card and "| 城市 | 地名 | 5 |" in card and "| 时间 | 时间 | 2 |" in card
    assert "1 merged into another name" in card and "edited label map file" not in card
    assert "| 地名 | 城市 | 地点 | 5 | 0.2000 | 0.4000 | 0.950 | merged |" in card
    assert "accelerate launch train.py ..." in card


def test_a_card_built_from_an_edited_map_says_so_and_a_plain_one_has_no_empty_sections():
    edited = metadata()
    edited["merging"] = {**edited["merging"], "from_label_map_file": True, "decisions": []}
    card = render_dataset_card(edited, {"train": 1}, "cmd")
    assert "(decided by an edited label map file)" in card and "## Synonym merging" not in card
    plain = metadata(rare_labels={"min_label_count": 1, "labels": {}}, merging={"epsilon": 1.5, "top_p": 5, "decisions": []})
    card = render_dataset_card(plain, {"train": 1}, "cmd")
    assert "Rare extension labels" not in card and "## Label map" not in card


def rows(*texts_and_spans: tuple[str, list[tuple[int, int, str]]]) -> tuple[list[str], list[list[dict]]]:
    texts = [text for text, _ in texts_and_spans]
    return texts, [[{"start": start, "end": end, "label": label} for start, end, label in spans] for _, spans in texts_and_spans]


def test_the_task_is_read_from_whether_the_target_spans_tile_the_sentences():
    words = rows(("马云在杭州", [(0, 2, "WORD"), (2, 3, "WORD"), (3, 5, "WORD")]), ("", []))
    assert labelling_task(*words, ["WORD"]) == "segmentation"
    tagged = rows(("马云在杭州", [(2, 3, "ADP"), (0, 2, "PROPN"), (3, 5, "PROPN")]))
    assert labelling_task(*tagged, ["ADP", "PROPN"]) == "pos"
    entities = rows(("马云在杭州", [(0, 2, "PER"), (3, 5, "LOC")]), ("今天", []))
    assert labelling_task(*entities, ["LOC", "PER"]) == "ner"
    assert labelling_task([], [], ["PER"]) == "ner"


@pytest.mark.parametrize(("count", "category"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (54_321, "10K<n<100K"), (10**12, "n>1T")])
def test_size_categories_are_the_hub_buckets(count, category):
    assert size_category(count) == category


def splits(texts_and_spans: tuple[list[str], list[list[dict]]]) -> DatasetDict:
    texts, entities = texts_and_spans
    train = Dataset.from_list([{"text": text, "entities": spans, "extensions": [], "synthetic": False} for text, spans in zip(texts, entities)], features=FEATURES)
    return DatasetDict({"train": train, "fusion": train, "dev": train, "test": train})


def saved_card(folder, source, **options) -> str:
    data = metadata(provenance={**metadata()["provenance"], "source": str(source), "language": "zh"}, target_labels=["WORD"])
    texts_and_spans = rows(("马云在杭州", [(0, 2, "WORD"), (2, 3, "WORD"), (3, 5, "WORD")]))
    save_augmented(folder, splits(texts_and_spans), data, render_dataset_card(data, {"train": 1}, "cmd"), **options)
    return (folder / "README.md").read_text(encoding="utf-8")


def test_the_front_matter_states_task_size_language_and_the_license_given(tmp_path):
    card = DatasetCard(saved_card(tmp_path / "out", tmp_path / "missing-source", license="cc-by-4.0"))
    assert card.data.task_categories == ["token-classification"] and card.data.task_ids is None
    assert card.data.tags == ["knowfree", "word-segmentation", "low-resource"]
    assert card.data.size_categories == ["n<1K"] and card.data.language == ["zh"] and card.data.license == "cc-by-4.0"
    assert "## License\n\n`cc-by-4.0`.\n" in card.text and "## Training on it" in card.text


def test_without_a_license_the_source_card_decides_or_none_is_stated(tmp_path, caplog):
    source = tmp_path / "source"
    source.mkdir()
    assert "license" not in DatasetCard(saved_card(tmp_path / "plain", source)).data.to_dict()
    assert "None is stated: the source" in saved_card(tmp_path / "plain", source)
    (source / "README.md").write_text("---\nlicense: cc-by-sa-3.0\n---\n# Weibo NER\n", encoding="utf-8")
    inherited = DatasetCard(saved_card(tmp_path / "inherited", source))
    assert inherited.data.license == "cc-by-sa-3.0" and f"the license the source `{source}` states" in inherited.text
    (source / "README.md").write_text("---\nlicense: CC BY-SA 3.0\n---\n", encoding="utf-8")
    assert source_license(str(source)) is None and "no Hub license id" in caplog.text


def test_an_extended_dataset_pushes_its_card_through_the_metadata_check(tmp_path):
    sentences = training_rows()
    corpus = write_corpus(tmp_path / "corpus", {"train": sentences, "dev": sentences[:4], "test": sentences[4:8]}, ["LOC", "ORG", "PER"])
    (corpus / "README.md").write_text("---\nlicense: cc-by-sa-3.0\n---\n# Tiny NER\n", encoding="utf-8")
    augment_main(["extend", "--data", str(corpus), "--output_dir", str(tmp_path / "fusion")])
    code = f"""
import json
from datasets import load_dataset
from huggingface_hub import hf_hub_download
from augment.dataset_export import push_augmented
push_augmented({str(tmp_path / "fusion")!r}, "tester/fusion-card")
readme = open(hf_hub_download("tester/fusion-card", "README.md", repo_type="dataset"), encoding="utf-8").read()
print(json.dumps({{"readme": readme, "splits": sorted(load_dataset("tester/fusion-card"))}}))
"""
    with LocalHub(tmp_path / "hub") as hub:
        pushed = json.loads(run_against_hub(hub.url, code, cwd=REPO_ROOT).stdout.strip().splitlines()[-1])
    card = DatasetCard(pushed["readme"])
    assert pushed["splits"] == ["dev", "fusion", "test", "train"]
    assert card.data.license == "cc-by-sa-3.0" and card.data.task_categories == ["token-classification"]
    assert card.data.task_ids == ["named-entity-recognition"] and "named-entity-recognition" in card.data.tags
    assert card.data.size_categories == ["n<1K"] and card.data.language == ["zh"]
    assert card.data.get("dataset_info") and card.data.get("configs")
    assert card.text == DatasetCard.load(tmp_path / "fusion" / "README.md").text
