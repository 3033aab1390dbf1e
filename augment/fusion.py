"""Pipeline 1 end to end: annotate the train rows, merge synonymous types, build the fusion split.

Input is a validated corpus (knowfree.data); output is the fusion rows (each original row plus its
`extensions`) and the metadata that travels with them: label sets, alpha per extension label
(eq. 20), merge decisions, annotation counts and provenance.
"""

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from augment.annotation import RowAnnotation, extension_spans
from augment.label_merging import DEFAULT_EPSILON, DEFAULT_TOP_P, Embedder, MergeDecision, merge_synonym_types
from augment.prompts import PROMPTS_VERSION
from knowfree.label_weights import extension_alphas

logger = logging.getLogger(__name__)


@dataclass
class FusionResult:
    rows: list[dict]
    metadata: dict
    decisions: list[MergeDecision] = field(default_factory=list)


def entity_type_pairs(texts: Sequence[str], annotations: Sequence[RowAnnotation]) -> list[tuple[str, str]]:
    """(entity text, free-form type) for every extension entity, repeats included (they are samples)."""
    return [(text[start:end], kind) for text, annotation in zip(texts, annotations) for start, end, kind in annotation.entities]


def annotation_totals(annotations: Sequence[RowAnnotation]) -> dict[str, int]:
    """Summed per-row counts (failures, drops, repairs) plus what was kept."""
    totals: Counter = Counter()
    for annotation in annotations:
        totals.update(annotation.counts)
        totals["entity_mentions"] += len(annotation.entities)
        totals["rows_with_pos"] += bool(annotation.pos)
        totals["rows_with_words_only"] += bool(annotation.words and not annotation.pos)
    return dict(sorted(totals.items()))


def fuse(rows: Sequence[dict], annotations: Sequence[RowAnnotation], type_to_label: dict[str, str]) -> list[dict]:
    """Original rows with their extension spans; extensions already on a row are kept."""
    fused = []
    for row, annotation in zip(rows, annotations, strict=True):
        spans = {(span["start"], span["end"], span["label"]) for span in row["extensions"]}
        spans |= {(span["start"], span["end"], span["label"]) for span in extension_spans(annotation, type_to_label)}
        fused.append({**row, "extensions": [{"start": start, "end": end, "label": label} for start, end, label in sorted(spans)]})
    return fused


def build_fusion(
    rows: Sequence[dict],
    target_labels: Sequence[str],
    annotator,
    embedder_factory: Callable[[], Embedder],
    epsilon: float = DEFAULT_EPSILON,
    top_p: int = DEFAULT_TOP_P,
    provenance: dict | None = None,
) -> FusionResult:
    """Annotate `rows` with `annotator`, merge its entity types and return the fusion rows and metadata."""
    texts = [row["text"] for row in rows]
    annotations = annotator.annotate_texts(texts)
    pairs = entity_type_pairs(texts, annotations)
    types = sorted({kind for _, kind in pairs})
    groups = annotator.propose_synonym_groups(types)
    if groups:
        type_to_label, decisions = merge_synonym_types(pairs, groups, embedder_factory(), epsilon, top_p)
    else:
        logger.info("no synonym groups proposed; each of the %d entity types stays its own label", len(types))
        type_to_label, decisions = {kind: kind for kind in types}, []
    fused = fuse(rows, annotations, type_to_label)
    extension_labels = sorted({span["label"] for row in fused for span in row["extensions"]})
    colliding = sorted(set(extension_labels) & set(target_labels))
    if colliding:
        raise ValueError(f"extension labels {colliding} have the names of target labels")
    alphas = extension_alphas(fused, target_labels, extension_labels) if extension_labels else []
    span_counts = Counter(span["label"] for row in fused for span in row["extensions"])
    metadata = {
        "target_labels": list(target_labels),
        "extension_labels": extension_labels,
        "extension_label_weights": dict(zip(extension_labels, alphas)),
        "extension_span_counts": dict(sorted(span_counts.items())),
        "extension_spans": sum(span_counts.values()),
        "annotation_counts": annotation_totals(annotations),
        "merging": {
            "entity_types": types,
            "proposed_groups": groups,
            "type_to_label": type_to_label,
            "epsilon": epsilon,
            "top_p": top_p,
            "decisions": [decision.to_json() for decision in decisions],
        },
        "provenance": {
            "annotator": annotator.name,
            "annotator_version": annotator.version,
            "prompts_version": PROMPTS_VERSION if annotator.name == "llm" else None,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **(provenance or {}),
        },
    }
    return FusionResult(fused, metadata, decisions)
