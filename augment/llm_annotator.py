"""Extension annotation by an LLM: entities with free-form types, segmentation, then POS (P_ent, P_seg, P_pos).

Every reply is parsed leniently and aligned to character offsets of the source sentence; what
cannot be used is dropped and counted on the row (`RowAnnotation.counts`), never guessed. The POS
request is sent with the sentence's segmentation so that every word gets a tag.
"""

import logging
from collections.abc import Sequence

from augment.alignment import MatchingView, lay_words, matching_form, mention_spans, repair_segmentation
from augment.annotation import RowAnnotation
from augment.llm_client import LLMClient
from augment.pos_tags import normalize_tag
from augment.prompts import Messages, render
from augment.reply_cache import ReplyCache
from augment.reply_parsing import parse_json_reply
from augment.reply_schemas import reply_schema

logger = logging.getLogger(__name__)

MAX_COMPOUND_WORDS = 4  # a POS word over more segmentation words than this is a clause, not a word
_CLAUSE_MARKS = frozenset(",;:!?.")  # in matching form: ，、；：！？。… and their ASCII forms


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
    annotation.words = _split_clauses(text, spans, annotation)


def _split_clauses(text: str, spans: list[tuple[int, int]], annotation: RowAnnotation) -> list[tuple[int, int]]:
    """Words that are whole clauses (a `，。！？；：` inside them) cut at those marks, each mark a word of its own.

    Small models return a clause as one "word"; kept whole, it would teach the segmentation
    extension label nothing and make the POS request tag it as one. Each cut word is counted
    (`segmentation_clause_split`).
    """
    words = []
    for start, end in spans:
        marks = [position for position in range(start, end) if _separates_clauses(text, position)]
        if end - start < 2 or not marks:
            words.append((start, end))
            continue
        annotation.count("segmentation_clause_split")
        piece_start = start
        for mark in marks:
            words += [(piece_start, mark)] if mark > piece_start else []
            words.append((mark, mark + 1))
            piece_start = mark + 1
        words += [(piece_start, end)] if end > piece_start else []
    return words


def _separates_clauses(text: str, position: int) -> bool:
    """Whether text[position] is a comma, stop, colon or the like, and not inside a number (3.5, 10:30, 1,000)."""
    if not _CLAUSE_MARKS.intersection(matching_form(text[position])):
        return False
    return not (0 < position < len(text) - 1 and text[position - 1].isdigit() and text[position + 1].isdigit())


def _segmentation_problem(text: str, span: tuple[int, int], words: list[tuple[int, int]]) -> str | None:
    """Why a found POS word cannot stand over the row's segmentation (a count name), or None when it can."""
    start, end = span
    covered = [(word_start, word_end) for word_start, word_end in words if word_start < end and word_end > start]
    if len(covered) > 1 and (len(covered) > MAX_COMPOUND_WORDS or any(_separates_clauses(text, position) for position in range(start, end))):
        return "pos_clause"
    if not covered or covered[0][0] != start or covered[-1][1] != end:
        return "pos_word_off_segmentation"
    return None


def read_pos(text: str, reply: str | None, annotation: RowAnnotation, language: str = "zh") -> None:
    """Set the row's POS spans from a P_pos reply, keeping every reply word that can be placed and read.

    Reply words are found in `text` in order, each at or after the end of the previous word found
    (in matching form, so `,` finds `，`); a word not found is counted (`pos_word_unaligned`) and
    the next word is looked for from the same place, so one bad word costs only itself. A found
    word must then agree with the row's segmentation (`annotation.words`, set by
    `read_segmentation`): it is kept when it starts and ends on segmentation word boundaries,
    covering one word or a run of up to MAX_COMPOUND_WORDS words (a compound, tagged as a whole).
    Dropped and counted, first reason only: a clause (`pos_clause`: two or more segmentation words
    with a clause-separating mark `，、。；：！？…` among them, or more than MAX_COMPOUND_WORDS
    words); a span that cuts a segmentation word (`pos_word_off_segmentation`); a missing tag or
    one `normalize_tag` cannot map into `language`'s inventory (`pos_tag_unknown`). Items without a
    word are `pos_item_malformed`; segmentation words left without a POS span are counted as
    `pos_words_untagged`.
    """
    items = reply_items(reply, "pos", annotation)
    if items is None:
        return
    view = MatchingView(text)
    kept, position = [], 0
    for item in items:
        word = _string_field(item, "word", "text") if isinstance(item, dict) else None
        if word is None:
            annotation.count("pos_item_malformed")
            continue
        span = next(view.spans(word, position), None)
        if span is None:
            annotation.count("pos_word_unaligned")
            continue
        position = span[1]
        problem = _segmentation_problem(text, span, annotation.words)
        if problem is not None:
            annotation.count(problem)
            continue
        written_tag = _string_field(item, "pos", "tag")
        tag = normalize_tag(written_tag, language) if written_tag is not None else None
        if tag is None:
            annotation.count("pos_tag_unknown")
            continue
        kept.append((*span, tag))
    untagged = sum(1 for start, end in annotation.words if not any(kept_start <= start and end <= kept_end for kept_start, kept_end, _ in kept))
    if untagged:
        annotation.count("pos_words_untagged", untagged)
    annotation.pos = kept


def read_synonym_groups(reply: str | None, types: Sequence[str]) -> dict[str, list[str]]:
    """{standard name: [member types]} from a P_merge reply, keeping only types we actually have.

    A standard name that is itself one of the types belongs to its group (models answer
    {"人名": ["人", "人物"]}), so that it too is weighed by the geometry rather than left beside it.
    A group holding every one of three or more offered types is the list given back, not a grouping
    (Qwen2.5-Coder-1.5B answered 63 Weibo types with one group named 同义词组, "synonym group", and the
    geometry check alone let all of them merge): it is dropped with a warning, and its types stay
    their own labels.
    """
    groups = parse_json_reply(reply)
    if not isinstance(groups, dict):
        logger.warning("synonym grouping reply unusable; every type stays its own label")
        return {}
    known = set(types)
    kept = {}
    for standard, members in groups.items():
        if isinstance(members, list):
            members = [member for member in members if isinstance(member, str) and member in known]
            if members and standard in known and standard not in members:
                members.append(standard)
            if len(known) >= 3 and set(members) == known:
                logger.warning("synonym group %r holds all %d types: the list given back, not a grouping; dropped", standard, len(known))
            elif members:
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
        """An annotator with an in-memory cache, for interactive use (the Space); replies constrained where the server allows."""
        return cls(LLMClient(endpoint=endpoint, model=model, token=token, cache=ReplyCache(), structured="auto"), language)

    def first_stage_requests(self, texts: Sequence[str]) -> list[Messages]:
        """P_ent and P_seg per sentence, interleaved: [ent_0, seg_0, ent_1, seg_1, ...]."""
        requests = []
        for text in texts:
            requests.append(render("entities", self.language, text=text))
            requests.append(render("segmentation", self.language, text=text))
        return requests

    def first_stage_schemas(self, texts: Sequence[str]) -> list[dict | None]:
        """The reply schemas of `first_stage_requests`, in the same order."""
        return [reply_schema("entities", self.language), reply_schema("segmentation", self.language)] * len(texts)

    def pos_request(self, text: str, words: list[tuple[int, int]]) -> Messages:
        return render("pos", self.language, text=text, words=[text[start:end] for start, end in words])

    def annotate_texts(self, texts: Sequence[str]) -> list[RowAnnotation]:
        annotations = [RowAnnotation() for _ in texts]
        requests, schemas = self.first_stage_requests(texts), self.first_stage_schemas(texts)
        entity_replies = self.client.complete_all(requests[0::2], "entities", schemas[0::2])
        segmentation_replies = self.client.complete_all(requests[1::2], "segmentation", schemas[1::2])
        for text, annotation, entity_reply, segmentation_reply in zip(texts, annotations, entity_replies, segmentation_replies):
            read_entities(text, entity_reply, annotation)
            read_segmentation(text, segmentation_reply, annotation)
        segmented = [index for index, annotation in enumerate(annotations) if annotation.words]
        for index, annotation in enumerate(annotations):
            if not annotation.words:
                annotation.count("pos_skipped_no_segmentation")
        pos_requests = [self.pos_request(texts[index], annotations[index].words) for index in segmented]
        pos_replies = self.client.complete_all(pos_requests, "pos", [reply_schema("pos", self.language)] * len(pos_requests))
        for index, reply in zip(segmented, pos_replies):
            read_pos(texts[index], reply, annotations[index], self.language)
        return annotations

    def annotate(self, text: str) -> RowAnnotation:
        return self.annotate_texts([text])[0]

    def merge_request(self, types: Sequence[str]) -> Messages:
        return render("merge", self.language, types=sorted(types))

    def propose_synonym_groups(self, types: Sequence[str]) -> dict[str, list[str]]:
        """P_merge over the distinct entity types (eq. 2)."""
        if not types:
            return {}
        (reply,) = self.client.complete_all([self.merge_request(types)], "merge", [reply_schema("merge", self.language)])
        return read_synonym_groups(reply, types)
