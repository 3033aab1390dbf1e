from augment.annotation import extension_spans
from augment.offline_annotator import OfflineAnnotator, major_class

SENTENCES = ["马云在杭州创办了阿里巴巴。", "我们在北京的清华大学见到了李明老师。", "2024年 Hello 世界"]


def test_jieba_words_tile_every_character_and_carry_tags():
    annotator = OfflineAnnotator()
    for sentence in SENTENCES:
        annotation = annotator.annotate(sentence)
        assert "".join(sentence[start:end] for start, end in annotation.words) == "".join(sentence.split())
        assert all(end <= next_start for (_, end), (next_start, _) in zip(annotation.words, annotation.words[1:]))
        assert [(start, end) for start, end, _ in annotation.pos] == annotation.words
        assert all(tag for _, _, tag in annotation.pos)


def test_proper_nouns_become_entity_types():
    annotation = OfflineAnnotator().annotate("马云在杭州创办了阿里巴巴。")
    entities = {("马云在杭州创办了阿里巴巴。"[start:end], kind) for start, end, kind in annotation.entities}
    assert ("马云", "人名") in entities and ("杭州", "地名") in entities
    spans = extension_spans(annotation)
    assert {"start": 3, "end": 5, "label": "ent:地名"} in spans and {"start": 3, "end": 5, "label": "pos:n"} in spans
    assert all(span["label"].startswith(("ent:", "pos:")) for span in spans)


def test_extension_spans_map_types_and_fall_back_to_words():
    from augment.annotation import RowAnnotation

    annotation = RowAnnotation(entities=[(0, 2, "城市")], words=[(0, 2), (2, 3)])
    assert extension_spans(annotation, {"城市": "地名"}) == [
        {"start": 0, "end": 2, "label": "ent:地名"},
        {"start": 0, "end": 2, "label": "seg:word"},
        {"start": 2, "end": 3, "label": "seg:word"},
    ]


def test_pos_tags_are_reduced_to_major_classes():
    assert [major_class(tag) for tag in ["nr", "ns", "vn", "uj", "eng", "x", "m"]] == ["n", "n", "v", "u", "eng", "x", "m"]
