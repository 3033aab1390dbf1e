"""Synonymous label merging (paper eqs. 2-8): the LLM proposes groups, the embedding geometry decides.

Every (entity, type) pair is embedded as "[entity] is [type]". Per type we take the centre c_k of
its vectors and the radius r_k, the mean distance to c_k of its p farthest vectors. Within each
proposed group the type with the most samples (ties: the largest radius) is the reference; another
type of the group merges into the group's standard name when ||c_j - c_ref|| <= epsilon * r_ref, and
otherwise stays a label of its own. Every decision is returned for the log and the dataset card.

Departure from the paper: a member must also be named like its reference, the cosine of the two
type names' own embeddings reaching `min_name_similarity`. With the offline e5-small encoder, the
geometric test alone tells synonyms from other types poorly. Over the 10,772 pairs of types that
Qwen2.5-Coder 0.5B and 1.5B named in four runs (63 of them synonyms by hand), epsilon 1.5 merged 39
synonym pairs and 2,155 others (time into place, dates into proper nouns); with the name check at
0.93 it merges 22 and 21 (`benchmarks/synonym_merge_calibration.py`). -1 turns it off.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_EPSILON = 1.5
DEFAULT_TOP_P = 5
DEFAULT_MIN_NAME_SIMILARITY = 0.93
PAIR_TEMPLATE = "{entity} is {type}"

Embedder = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class TypeGeometry:
    samples: int
    centre: np.ndarray
    radius: float


@dataclass(frozen=True)
class MergeDecision:
    group: str
    type: str
    reference: str
    samples: int
    distance: float
    threshold: float
    name_similarity: float
    merged: bool

    def to_json(self) -> dict:
        return asdict(self)


def type_geometry(vectors: np.ndarray, top_p: int = DEFAULT_TOP_P) -> TypeGeometry:
    """Centre (eq. 6) and radius over the top-p farthest vectors (eq. 7) of one type."""
    centre = vectors.mean(axis=0)
    distances = np.sort(np.linalg.norm(vectors - centre, axis=1))[::-1]
    return TypeGeometry(len(vectors), centre, float(distances[:top_p].mean()))


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays zero), so that a dot product is a cosine."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def merge_synonym_types(
    pairs: Sequence[tuple[str, str]],
    groups: Mapping[str, Sequence[str]],
    embed: Embedder,
    epsilon: float = DEFAULT_EPSILON,
    top_p: int = DEFAULT_TOP_P,
    min_name_similarity: float = DEFAULT_MIN_NAME_SIMILARITY,
    template: str = PAIR_TEMPLATE,
) -> tuple[dict[str, str], list[MergeDecision]]:
    """Map every type of `pairs` to its label; types in no group (or not merged) map to themselves.

    `pairs` are (entity text, type) over the whole corpus (repeats count as samples); `groups` is the
    LLM's {standard name: [types]}. A type listed in several groups is decided in the first only.
    """
    by_type: dict[str, list[str]] = defaultdict(list)
    for entity, kind in pairs:
        by_type[kind].append(template.format(entity=entity, type=kind))
    type_to_label = {kind: kind for kind in by_type}
    decisions: list[MergeDecision] = []
    decided: set[str] = set()
    for standard, members in groups.items():
        members = [kind for kind in dict.fromkeys(members) if kind in by_type and kind not in decided]
        if not members:
            continue
        geometry = {kind: type_geometry(np.asarray(embed(by_type[kind]), dtype=np.float64), top_p) for kind in members}
        reference = max(members, key=lambda kind: (geometry[kind].samples, geometry[kind].radius))
        threshold = epsilon * geometry[reference].radius
        names = dict(zip(members, unit_rows(np.asarray(embed(members), dtype=np.float64))))
        for kind in members:
            distance = float(np.linalg.norm(geometry[kind].centre - geometry[reference].centre))
            name_similarity = float(names[kind] @ names[reference])
            merged = kind == reference or (distance <= threshold and name_similarity >= min_name_similarity)
            if merged:
                type_to_label[kind] = standard
            decisions.append(MergeDecision(standard, kind, reference, geometry[kind].samples, distance, threshold, name_similarity, merged))
            logger.info(
                "group %r: %r (%d samples) %s reference %r (distance %.4f, threshold %.4f, name similarity %.3f)",
                standard, kind, geometry[kind].samples, "merged into" if merged else "kept apart from", reference, distance, threshold, name_similarity,
            )
        decided.update(members)
    return type_to_label, decisions


def sentence_transformer_embedder(model_path: str, prompt_name: str | None = "query") -> Embedder:
    """Embed with a sentence-transformers folder (the offline e5 folder uses e5's 'query: ' prompt)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu")
    prompt = prompt_name if prompt_name in (model.prompts or {}) else None

    def embed(texts: list[str]) -> np.ndarray:
        return model.encode(texts, prompt_name=prompt, convert_to_numpy=True, batch_size=64, show_progress_bar=False)

    return embed
