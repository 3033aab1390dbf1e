"""Pipeline 1 end to end: annotate the train rows, merge synonymous types, build the fusion split.

Input is a validated corpus (knowfree.data); output is the fusion rows (each original row plus its
`extensions`) and the metadata that travels with them: label sets, alpha per extension label
(eq. 20), merge decisions (also as the editable label map, `augment.label_map`), annotation
counts and provenance.

Rare labels: an extension label with fewer than `min_label_count` spans in the fusion split carries
no signal a model can learn from a few hundred sentences, yet still takes a class and an alpha.
It is folded into its kind's catch-all label (`ent:other`, `pos:other`); a catch-all that is still
below the count is dropped. Every fold and drop is reported in the metadata (`rare_labels`).
"""

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from augment.annotation import ENTITY_PREFIX, POS_PREFIX, RowAnnotation, extension_spans
from augment.label_map import map_entries
from augment.label_merging import DEFAULT_EPSILON, DEFAULT_MIN_NAME_SIMILARITY, DEFAULT_TOP_P, Embedder, MergeDecision, merge_synonym_types
from augment.prompts import PROMPTS_VERSION
from knowfree.data import check_label_names_apart
from knowfree.label_weights import extension_alphas

logger = logging.getLogger(__name__)

CATCH_ALL = "other"


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


def _catch_all(label: str) -> str | None:
    prefix = next((prefix for prefix in (ENTITY_PREFIX, POS_PREFIX) if label.startswith(prefix)), None)
    return prefix + CATCH_ALL if prefix else None


def fold_rare_labels(rows: Sequence[dict], min_count: int) -> tuple[list[dict], dict[str, dict]]:
    """Rows whose rare extension labels are folded into `ent:other` / `pos:other` (or dropped), and the report.

    The report maps each rare label to its span count and what it became (None: dropped).
    """
    counts = Counter(span["label"] for row in rows for span in row["extensions"])
    rare = {label for label, count in counts.items() if count < min_count}
    folded = {label: _catch_all(label) for label in rare}
    for catch_all in {target for target in folded.values() if target is not None}:
        members = [label for label, target in folded.items() if target == catch_all and label != catch_all]
        if counts.get(catch_all, 0) + sum(counts[label] for label in members) >= min_count:
            folded.pop(catch_all, None)
        else:
            folded.update({label: None for label in members + ([catch_all] if catch_all in folded else [])})
    report = {label: {"spans": counts[label], "folded_into": target} for label, target in sorted(folded.items())}
    if not folded:
        return list(rows), report
    kept_rows = []
    for row in rows:
        spans = {(span["start"], span["end"], folded.get(span["label"], span["label"])) for span in row["extensions"]}
        kept = sorted((start, end, label) for start, end, label in spans if label is not None)
        kept_rows.append({**row, "extensions": [{"start": start, "end": end, "label": label} for start, end, label in kept]})
    dropped = sum(target is None for target in folded.values())
    logger.info("rare extension labels (< %d spans): %d folded, %d dropped", min_count, len(folded) - dropped, dropped)
    return kept_rows, report


def build_fusion(
    rows: Sequence[dict],
    target_labels: Sequence[str],
    annotator,
    embedder_factory: Callable[[], Embedder],
    epsilon: float = DEFAULT_EPSILON,
    top_p: int = DEFAULT_TOP_P,
    provenance: dict | None = None,
    min_name_similarity: float = DEFAULT_MIN_NAME_SIMILARITY,
    label_map: Mapping[str, str] | None = None,
    min_label_count: int = 1,
) -> FusionResult:
    """Annotate `rows` with `annotator`, merge its entity types and return the fusion rows and metadata.

    With `label_map` ({type: label}, from an edited label map file) no synonym groups are asked for:
    the map decides, and types it does not name keep their own label.
    """
    texts = [row["text"] for row in rows]
    annotations = annotator.annotate_texts(texts)
    pairs = entity_type_pairs(texts, annotations)
    types = sorted({kind for _, kind in pairs})
    samples = Counter(kind for _, kind in pairs)
    groups, decisions = {}, []
    if label_map is not None:
        type_to_label = {kind: label_map.get(kind, kind) for kind in types}
        entries = [{"group": label, "member": kind, "samples": samples[kind], "distance": None, "threshold": None, "name_similarity": None, "decision": "merge" if label != kind else "keep"} for kind, label in type_to_label.items()]
    else:
        groups = annotator.propose_synonym_groups(types)
        if groups:
            type_to_label, decisions = merge_synonym_types(pairs, groups, embedder_factory(), epsilon, top_p, min_name_similarity)
        else:
            logger.info("no synonym groups proposed; each of the %d entity types stays its own label", len(types))
            type_to_label = {kind: kind for kind in types}
        entries = map_entries(types, samples, [decision.to_json() for decision in decisions])
    fused, rare_labels = fold_rare_labels(fuse(rows, annotations, type_to_label), min_label_count)
    extension_labels = sorted({span["label"] for row in fused for span in row["extensions"]})
    check_label_names_apart(target_labels, extension_labels, "the fused rows")
    alphas = extension_alphas(fused, target_labels, extension_labels) if extension_labels else []
    span_counts = Counter(span["label"] for row in fused for span in row["extensions"])
    metadata = {
        "target_labels": list(target_labels),
        "extension_labels": extension_labels,
        "extension_label_weights": dict(zip(extension_labels, alphas)),
        "extension_span_counts": dict(sorted(span_counts.items())),
        "extension_spans": sum(span_counts.values()),
        "annotation_counts": annotation_totals(annotations),
        "rare_labels": {"min_label_count": min_label_count, "labels": rare_labels},
        "merging": {
            "entity_types": types,
            "proposed_groups": groups,
            "type_to_label": type_to_label,
            "epsilon": epsilon,
            "top_p": top_p,
            "min_name_similarity": min_name_similarity,
            "decisions": [decision.to_json() for decision in decisions],
            "label_map": entries,
            "from_label_map_file": label_map is not None,
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
