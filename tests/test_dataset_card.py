"""augment.dataset_card: what a reader of the Hub page learns about an augmented dataset."""

from augment.dataset_card import render_dataset_card


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
            "epsilon": 1.5, "top_p": 5,
            "decisions": [{"group": "地名", "type": "城市", "reference": "地点", "samples": 5, "distance": 0.2, "threshold": 0.4, "merged": True}],
            "label_map": [
                {"group": "地名", "member": "城市", "samples": 5, "distance": 0.2, "threshold": 0.4, "decision": "merge"},
                {"group": "时间", "member": "时间", "samples": 2, "distance": None, "threshold": None, "decision": "keep"},
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
    assert "| 地名 | 城市 | 地点 | 5 | 0.2000 | 0.4000 | merged |" in card
    assert "accelerate launch train.py ..." in card


def test_a_card_built_from_an_edited_map_says_so_and_a_plain_one_has_no_empty_sections():
    edited = metadata()
    edited["merging"] = {**edited["merging"], "from_label_map_file": True, "decisions": []}
    card = render_dataset_card(edited, {"train": 1}, "cmd")
    assert "(decided by an edited label map file)" in card and "## Synonym merging" not in card
    plain = metadata(rare_labels={"min_label_count": 1, "labels": {}}, merging={"epsilon": 1.5, "top_p": 5, "decisions": []})
    card = render_dataset_card(plain, {"train": 1}, "cmd")
    assert "Rare extension labels" not in card and "## Label map" not in card
