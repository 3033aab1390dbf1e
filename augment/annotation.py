"""What every annotator (LLM or offline) returns for one sentence, and how it becomes extension spans.

All positions are character offsets into the sentence, end exclusive (the project's one span
convention). Entity types are free-form until synonym merging maps them onto standard labels.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

ENTITY_PREFIX = "ent:"
POS_PREFIX = "pos:"
WORD_LABEL = "seg:word"


@dataclass
class RowAnnotation:
    """Extension knowledge for one sentence plus the counts of what could not be used."""

    entities: list[tuple[int, int, str]] = field(default_factory=list)
    words: list[tuple[int, int]] = field(default_factory=list)
    pos: list[tuple[int, int, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, event: str, amount: int = 1) -> None:
        self.counts[event] = self.counts.get(event, 0) + amount

    def to_json(self) -> dict:
        return {
            "entities": [list(span) for span in self.entities],
            "words": [list(span) for span in self.words],
            "pos": [list(span) for span in self.pos],
            "counts": dict(self.counts),
        }

    @classmethod
    def from_json(cls, data: Mapping) -> "RowAnnotation":
        return cls(
            entities=[(int(start), int(end), str(label)) for start, end, label in data["entities"]],
            words=[(int(start), int(end)) for start, end in data["words"]],
            pos=[(int(start), int(end), str(tag)) for start, end, tag in data["pos"]],
            counts={str(key): int(value) for key, value in data["counts"].items()},
        )


def extension_spans(annotation: RowAnnotation, type_to_label: Mapping[str, str] | None = None) -> list[dict]:
    """The `extensions` column of a fusion row: entities under their merged label, then POS words.

    Entity types are looked up in `type_to_label` (the synonym-merging result; identity when None)
    and prefixed `ent:`; POS tags are prefixed `pos:`. Segmentation words that no POS span covers
    (a row without POS, or the words a partial POS reply left untagged) are kept as `seg:word` so the
    boundary knowledge is not lost. Identical (start, end, label) triples are kept once; spans are
    sorted by position then label.
    """
    spans = {(start, end, ENTITY_PREFIX + (type_to_label or {}).get(kind, kind)) for start, end, kind in annotation.entities}
    spans |= {(start, end, POS_PREFIX + tag) for start, end, tag in annotation.pos}
    tagged = {position for start, end, _ in annotation.pos for position in range(start, end)}
    spans |= {(start, end, WORD_LABEL) for start, end in annotation.words if tagged.isdisjoint(range(start, end))}
    return [{"start": start, "end": end, "label": label} for start, end, label in sorted(spans)]
