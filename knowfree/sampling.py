"""Low-resource training subsets: nested K-sentence prefixes and greedy N-way K-shot samples.

Both samplers walk the same seeded permutation (`random.Random(seed).shuffle` over row indices), the
construction behind the shared `train_{250,500,1000}.jsonl` files, so a fixed seed gives nested,
reproducible subsets.
"""

import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence

from datasets import Dataset

DEFAULT_SEED = 42
logger = logging.getLogger("knowfree.sampling")

Rows = Dataset | Sequence[Mapping]


def _permutation(size: int, seed: int) -> list[int]:
    indices = list(range(size))
    random.Random(seed).shuffle(indices)
    return indices


def take_k(rows: Rows, k: int, seed: int = DEFAULT_SEED) -> Rows:
    """The first `k` rows of the seeded permutation, in permutation order.

    Prefixes of one permutation nest (K=250 within 500 within 1000), as in the paper's protocol. A
    `Dataset` comes back as a `Dataset`, any other sequence as a list.
    """
    if not 0 < k <= len(rows):
        raise ValueError(f"k must be between 1 and the number of rows ({len(rows)}), got {k}")
    indices = _permutation(len(rows), seed)[:k]
    if isinstance(rows, Dataset):
        return rows.select(indices)
    return [rows[index] for index in indices]


def _mentions(row: Mapping, labels: set[str]) -> Counter[str]:
    spans = {(span["start"], span["end"], span["label"]) for span in row["entities"]}
    return Counter(label for _, _, label in spans if label in labels)


def sample_n_way_k_shot(rows: Rows, labels: Sequence[str], k: int, seed: int = DEFAULT_SEED) -> list[int]:
    """Indices (ascending) of a greedy N-way K-shot sample: every label gets at least `k` mentions.

    Sentences are visited in seeded-permutation order and kept when they mention a label still below
    its quota, until all labels reach it. A mention is a distinct (start, end, label) span of a
    sentence; labels outside `labels` are ignored. A label with fewer than `k` mentions in all of
    `rows` (Weibo's GPE.NOM has 8 in its 1,350 training sentences) gets every one of them, and a
    warning names it and its count.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    wanted = set(labels)
    mentions = [_mentions(row, wanted) for row in rows]
    available: Counter[str] = Counter()
    for row_mentions in mentions:
        available.update(row_mentions)
    quota = {label: min(k, available[label]) for label in wanted}
    short = {label: available[label] for label in labels if available[label] < k}
    if short:
        details = ", ".join(f"{label!r} has {count}" for label, count in short.items())
        logger.warning("%d-shot sample: these labels have fewer mentions than that in the data and get all of them: %s", k, details)

    counts: Counter[str] = Counter()
    selected = []
    for index in _permutation(len(rows), seed):
        if all(counts[label] >= quota[label] for label in wanted):
            break
        if any(counts[label] < quota[label] for label in mentions[index]):
            selected.append(index)
            counts.update(mentions[index])
    return sorted(selected)
