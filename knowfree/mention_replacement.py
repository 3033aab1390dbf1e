"""Mention replacement: an online training augmentation for the few-hundred-sentence regime.

Each epoch, a target mention is swapped, with a given probability, for another mention of the same
label seen in the training rows (Dai and Adel 2020, "An Analysis of Simple Data Augmentation for Named
Entity Recognition"). The model then meets every name in more contexts and every context with more
names, which is what a K = 250 sample lacks: most test names are never seen in training (README, "What
limits the plateau"). The number of optimizer steps does not change; the draw is fixed by (seed,
epoch, row), so a resumed run sees the same rows.

Only mentions that overlap no other target mention are swapped, so nested data keeps its structure.
Extension spans that cross or lie inside a swapped mention described the old text and are dropped;
the ones that enclose it or lie apart keep their label at the shifted offsets.
"""

import random
from collections.abc import Iterable, Mapping


def mention_pool(rows: Iterable[Mapping]) -> dict[str, list[str]]:
    """Label -> the distinct texts of its target mentions in `rows`, in order of first appearance."""
    pool: dict[str, dict[str, None]] = {}
    for row in rows:
        for span in row["entities"]:
            pool.setdefault(span["label"], {})[row["text"][span["start"] : span["end"]]] = None
    return {label: list(texts) for label, texts in pool.items()}


def overlaps(span: Mapping, other: Mapping) -> bool:
    return span["start"] < other["end"] and other["start"] < span["end"]


def replace_mentions(row: Mapping, pool: Mapping[str, list[str]], probability: float, rng: random.Random) -> dict:
    """A copy of `row` with some target mentions swapped for other mentions of their label.

    Each mention that overlaps no other target mention is swapped with `probability` for a different
    text from `pool[label]` (left alone when the label has no other text). Extension spans that cross
    a swapped mention or lie inside it are left out; every other span keeps its label at offsets moved
    by the length changes before it.
    """
    text, entities = row["text"], row["entities"]
    swaps: list[tuple[Mapping, str]] = []
    for span in sorted(entities, key=lambda span: (span["start"], span["end"])):
        if any(other is not span and overlaps(span, other) for other in entities):
            continue
        original = text[span["start"] : span["end"]]
        choices = [candidate for candidate in pool.get(span["label"], ()) if candidate != original]
        if choices and rng.random() < probability:
            swaps.append((span, rng.choice(choices)))
    if not swaps:
        return dict(row)

    def moved(offset: int) -> int:
        """Where a span boundary at `offset` lands: shifted by every swap that ends at or before it."""
        return offset + sum(len(new) - (old["end"] - old["start"]) for old, new in swaps if old["end"] <= offset)

    def kept(span: Mapping) -> bool:
        """False for a span that crosses a swapped mention or lies strictly inside one."""
        for old, _ in swaps:
            encloses = span["start"] <= old["start"] and old["end"] <= span["end"]
            if overlaps(span, old) and not encloses:
                return False
        return True

    pieces, position = [], 0
    for old, new in swaps:
        pieces += [text[position : old["start"]], new]
        position = old["end"]
    pieces.append(text[position:])
    augmented = dict(row)
    augmented["text"] = "".join(pieces)
    for field in ("entities", "extensions"):
        if field in row:
            augmented[field] = [
                {**span, "start": moved(span["start"]), "end": moved(span["end"])} for span in row[field] if field == "entities" or kept(span)
            ]
    return augmented
