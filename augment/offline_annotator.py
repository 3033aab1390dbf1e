"""An annotator that needs no LLM and no network: jieba's segmentation and POS tags.

Its proper-noun tags stand in for the LLM's free-form entity types (nr* person, ns* place, nt*
organisation, nz other proper noun), so the whole extension pipeline, merging included, runs on a
laptop. It returns the same `RowAnnotation` as the LLM annotator. POS tags are reduced to jieba's
major classes (the first letter: nr/ns/ng -> n, vn/vd -> v, ...): about 20 labels instead of 50,
since every extension label draws as much gradient as half a target label under eq. 20, and the
fine proper-noun distinctions are already carried by the entity types.
"""

from collections.abc import Sequence

from augment.annotation import RowAnnotation

ANNOTATOR_NAME = "jieba-posseg"
# jieba tag prefix -> entity type, in the language of the data (jieba is Chinese-only)
PROPER_NOUN_TYPES = (("nr", "人名"), ("ns", "地名"), ("nt", "机构名"), ("nz", "其他专名"))


def major_class(tag: str) -> str:
    """jieba's major POS class: the tag's first letter, except 'eng' (Latin words) and 'x' kept whole."""
    return tag if tag == "eng" else tag[:1]


def _entity_type(tag: str) -> str | None:
    for prefix, kind in PROPER_NOUN_TYPES:
        if tag.startswith(prefix):
            return kind
    return None


class OfflineAnnotator:
    """jieba.posseg over each sentence: words tile the text, every word gets a tag."""

    name = ANNOTATOR_NAME

    def __init__(self) -> None:
        import jieba
        import jieba.posseg

        jieba.setLogLevel(60)
        self._tokenizer = jieba.posseg.POSTokenizer(jieba.Tokenizer())
        self.version = f"jieba {jieba.__version__}"

    def annotate(self, text: str) -> RowAnnotation:
        annotation = RowAnnotation()
        position = 0
        for pair in self._tokenizer.cut(text, HMM=True):
            word, tag = pair.word, pair.flag
            start, end = position, position + len(word)
            position = end
            if not word.strip():
                continue
            annotation.words.append((start, end))
            annotation.pos.append((start, end, major_class(tag)))
            kind = _entity_type(tag)
            if kind is not None:
                annotation.entities.append((start, end, kind))
        if position != len(text):
            raise RuntimeError(f"jieba's words do not tile the text ({position} of {len(text)} characters): {text!r}")
        return annotation

    def annotate_texts(self, texts: Sequence[str]) -> list[RowAnnotation]:
        return [self.annotate(text) for text in texts]

    def propose_synonym_groups(self, types: Sequence[str]) -> dict[str, list[str]]:
        """No LLM to ask: jieba's four proper-noun types are distinct by construction."""
        return {}
