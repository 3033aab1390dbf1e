"""Extension-label weights alpha_i (eq. 20) counted from rows, shared by augmentation and training."""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from modeling_knowfree import extension_label_weight


def extension_alphas(rows: Iterable[Mapping], target_labels: Sequence[str], extension_labels: Sequence[str]) -> list[float]:
    """alpha per extension label from the target and extension span counts of `rows`."""
    target_counts: Counter = Counter()
    extension_counts: Counter = Counter()
    for row in rows:
        target_counts.update(span["label"] for span in row["entities"])
        extension_counts.update(span["label"] for span in row["extensions"])
    return [extension_label_weight([target_counts[label] for label in target_labels], extension_counts[label]) for label in extension_labels]
