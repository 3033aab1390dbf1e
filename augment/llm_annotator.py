"""Extension annotation by an LLM: entities with free-form types, segmentation, then POS (P_ent, P_seg, P_pos).

Every reply is parsed leniently and aligned to character offsets of the source sentence; what
cannot be used is dropped and counted on the row (`RowAnnotation.counts`), never guessed. The POS
request is sent with the sentence's segmentation so that every word gets a tag.
"""

import logging
from collections.abc import Sequence

from augment.alignment import lay_words, mention_spans, repair_segmentation
from augment.annotation import RowAnnotation
from augment.llm_client import LLMClient
from augment.prompts import Messages, render
from augment.reply_cache import ReplyCache
from augment.reply_parsing import parse_json_reply

logger = logging.getLogger(__name__)


def _string_field(item: dict, *names: str) -> str | None:
    for name in names:
        value = item.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def reply_items(reply: str | None, step: str, annotation: RowAnnotation) -> list | None:
    """The JSON array of a reply, or None after counting why there is none (request failed, unreadable)."""
    if reply is None:
        annotation.count(f"{step}_request_failed")
        return None
    items = parse_json_reply(reply)
    if not isinstance(items, list):
        annotation.count(f"{step}_reply_unparsable")
        return None
    return items


def read_entities(text: str, reply: str | None, annotation: RowAnnotation) -> None:
    """Add the entity mentions of a P_ent reply that occur in `text`."""
    items = reply_items(reply, "entities", annotation)
    for item in items or []:
        mention = _string_field(item, "entity", "text", "name") if isinstance(item, dict) else None
        kind = _string_field(item, "type", "label", "category") if isinstance(item, dict) else None
        if mention is None or kind is None:
            annotation.count("entity_item_malformed")
            continue
        occurrence = item.get("occurrence")
        spans = mention_spans(text, mention, occurrence if isinstance(occurrence, int) and not isinstance(occurrence, bool) else None)
        if not spans:
            annotation.count("entity_not_in_text")
            continue
        annotation.entities.extend((start, end, kind) for start, end in spans)
    annotation.entities = sorted(set(annotation.entities))


def read_segmentation(text: str, reply: str | None, annotation: RowAnnotation) -> None:
    """Set the row's words from a P_seg reply, repairing small gaps; rejected rows keep no words."""
    items = reply_items(reply, "segmentation", annotation)
    if items is None:
        return
    words = [item if isinstance(item, str) else _string_field(item, "word", "text") if isinstance(item, dict) else None for item in items]
    if any(word is None for word in words):
        annotation.count("segmentation_rejected")
        return
    tiling = lay_words(text, words)
    spans = repair_segmentation(text, tiling) if tiling is not None else None
    if spans is None:
        annotation.count("segmentation_rejected")
        return
    if tiling.gaps:
        annotation.count("segmentation_repaired")
    annotation.words = spans


def read_pos(text: str, reply: str | None, annotation: RowAnnotation) -> None:
    """Set the row's POS spans from a P_pos reply when its words tile the text and all carry a tag."""
    items = reply_items(reply, "pos", annotation)
    if items is None:
        return
    if not all(isinstance(item, dict) for item in items):
        annotation.count("pos_reply_unparsable")
        return
    words = [_string_field(item, "word", "text") or "" for item in items]
    tags = [_string_field(item, "pos", "tag") for item in items]
    tiling = lay_words(text, words)
    if tiling is None or tiling.gaps or any(tags[index] is None for index in tiling.word_indices):
        annotation.count("pos_rejected_not_tiling")
        return
    annotation.pos = [(start, end, tags[index]) for (start, end), index in zip(tiling.spans, tiling.word_indices)]


def read_synonym_groups(reply: str | None, types: Sequence[str]) -> dict[str, list[str]]:
    """{standard name: [member types]} from a P_merge reply, keeping only types we actually have."""
    groups = parse_json_reply(reply)
    if not isinstance(groups, dict):
        logger.warning("synonym grouping reply unusable; every type stays its own label")
        return {}
    known = set(types)
    kept = {}
    for standard, members in groups.items():
        if isinstance(members, list):
            members = [member for member in members if isinstance(member, str) and member in known]
            if members:
                kept[str(standard)] = members
    return kept


class LLMAnnotator:
    """P_ent + P_seg for every sentence, then P_pos over each accepted segmentation."""

    name = "llm"

    def __init__(self, client: LLMClient, language: str = "zh") -> None:
        self.client = client
        self.language = language

    @property
    def version(self) -> str:
        return self.client.identity

    @classmethod
    def from_endpoint(cls, endpoint: str, model: str | None = None, token: str | None = None, language: str = "zh") -> "LLMAnnotator":
        """An annotator with an in-memory cache, for interactive use (the Space)."""
        return cls(LLMClient(endpoint=endpoint, model=model, token=token, cache=ReplyCache()), language)

    def first_stage_requests(self, texts: Sequence[str]) -> list[Messages]:
        """P_ent and P_seg per sentence, interleaved: [ent_0, seg_0, ent_1, seg_1, ...]."""
        requests = []
        for text in texts:
            requests.append(render("entities", self.language, text=text))
            requests.append(render("segmentation", self.language, text=text))
        return requests

    def pos_request(self, text: str, words: list[tuple[int, int]]) -> Messages:
        return render("pos", self.language, text=text, words=[text[start:end] for start, end in words])

    def annotate_texts(self, texts: Sequence[str]) -> list[RowAnnotation]:
        annotations = [RowAnnotation() for _ in texts]
        replies = self.client.complete_all(self.first_stage_requests(texts), "entities + segmentation")
        for index, text in enumerate(texts):
            read_entities(text, replies[2 * index], annotations[index])
            read_segmentation(text, replies[2 * index + 1], annotations[index])
        segmented = [index for index, annotation in enumerate(annotations) if annotation.words]
        for index, annotation in enumerate(annotations):
            if not annotation.words:
                annotation.count("pos_skipped_no_segmentation")
        pos_replies = self.client.complete_all([self.pos_request(texts[index], annotations[index].words) for index in segmented], "POS tags")
        for index, reply in zip(segmented, pos_replies):
            read_pos(texts[index], reply, annotations[index])
        return annotations

    def annotate(self, text: str) -> RowAnnotation:
        return self.annotate_texts([text])[0]

    def merge_request(self, types: Sequence[str]) -> Messages:
        return render("merge", self.language, types=sorted(types))

    def propose_synonym_groups(self, types: Sequence[str]) -> dict[str, list[str]]:
        """P_merge over the distinct entity types (eq. 2)."""
        if not types:
            return {}
        (reply,) = self.client.complete_all([self.merge_request(types)], "synonym groups")
        return read_synonym_groups(reply, types)
