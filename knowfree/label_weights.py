"""Extension-label weights alpha_i (eq. 20): the formula and the counting, shared by augmentation and training.

The model only reads the weights stored in its config (`extension_label_weights`); they are computed
here, once, from the rows they are trained on.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence


def extension_label_weight(target_label_counts: list[int], extension_label_count: int) -> float:
    """alpha_i = 0.5 * C_hat / C_i (appendix G, eq. 20), capped at 1.

    C_hat is the mean count of the target labels, C_i the count of extension label i; frequent
    extension labels (POS tags, words) get small weights so they do not drown the targets.
    """
    if extension_label_count <= 0:
        raise ValueError("an extension label with no occurrences has no weight")
    mean_target = sum(target_label_counts) / len(target_label_counts) if target_label_counts else 0.0
    return min(1.0, 0.5 * mean_target / extension_label_count)


def extension_alphas(rows: Iterable[Mapping], target_labels: Sequence[str], extension_labels: Sequence[str]) -> list[float]:
    """alpha per extension label from the target and extension span counts of `rows`."""
    target_counts: Counter = Counter()
    extension_counts: Counter = Counter()
    for row in rows:
        target_counts.update(span["label"] for span in row["entities"])
        extension_counts.update(span["label"] for span in row["extensions"])
    return [extension_label_weight([target_counts[label] for label in target_labels], extension_counts[label]) for label in extension_labels]
