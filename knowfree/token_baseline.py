"""The baseline KnowFREE is compared against: `AutoModelForTokenClassification` with BIO tags.

Users who need Chinese NER without KnowFREE fine-tune a token classifier with BIO tags. To compare
fairly, this baseline reads the same rows (character spans, end exclusive), cuts long text into windows
by KnowFREE's processor rules (`text_windows`, the overlap of a model without a span width limit, since
BIO spans have none), and `predict_token_spans` returns character spans in the shape of
`KnowFreeModel.predict`, so one span metric scores both models.

BIO over tokens cannot express everything a set of character spans can. What it loses is counted, not
hidden (`SpanLoss`, totalled over a training set by `alignment_report`, to be logged before training):
- `misaligned`: the span starts or ends inside a token (XLM-R pieces such as "北京" hold several
  characters); its tokens are tagged, so the model learns and predicts the span widened to them;
- `overlapping_dropped`: nested or crossing spans (cmeee) cannot all be tagged; the longest spans are
  kept first, then the earliest, and the rest are dropped;
- `token_collisions`: spans whose characters overlap no kept span but whose widened tokens do (two
  words inside one piece, common in segmentation and POS data), dropped the same way;
- `untokenized`: the span covers no token (only whitespace, or characters the tokenizer drops).

Which characters a token stands for follows KnowFREE's `align_characters` (a "▁" piece that the tokenizer
maps onto the next piece's first character owns nothing), trimmed of whitespace, because XLM-R reports
"▁world" at the offsets of " world". A token that stands for no character gets no tag (-100 in training)
and is skipped when decoding, so it neither starts nor breaks a span.
"""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from processing_knowfree import UNCOVERED, TextWindow, TokenFrame, align_characters, spans_in_windows, text_windows

IGNORE_INDEX = -100
"""The label `torch.nn.CrossEntropyLoss` (and so every `*ForTokenClassification`) skips."""
MAX_POSITIONS = 512
"""Longest input (special tokens included) of the BERT/XLM-R encoders used here."""
BIO_SPAN_WIDTH_LIMIT = None
"""BIO tags hold spans of any width, so the windows overlap as those of a KnowFREE model without
`max_span_width` (`processing_knowfree.window_overlap`)."""

TokenRange = tuple[int, int] | None
"""The characters [start, end) a token stands for, or None when it stands for none."""


# ---------------------------------------------------------------------------------------------------
# Tags and the spans they can hold
# ---------------------------------------------------------------------------------------------------


def bio_labels(labels: Sequence[str]) -> list[str]:
    """The tag set ["O", "B-X", "I-X", ...] in label order, so tag ids are stable across runs."""
    labels = list(labels)
    if not labels:
        raise ValueError("a BIO tag set needs at least one label")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must be unique, got {labels}")
    return ["O"] + [f"{prefix}-{label}" for label in labels for prefix in ("B", "I")]


def parse_tag(tag: str) -> tuple[str, str | None]:
    """Split "B-X" into ("B", "X"); "O" gives ("O", None). Anything else is not a BIO tag."""
    if tag == "O":
        return "O", None
    prefix, separator, label = tag.partition("-")
    if prefix in ("B", "I") and separator and label:
        return prefix, label
    raise ValueError(f"{tag!r} is not a BIO tag (expected 'O', 'B-<label>' or 'I-<label>')")


@dataclass
class SpanLoss:
    """How many gold spans the BIO encoding could not hold exactly.

    Counted once per (training example, distinct span): a span lying in two overlapping windows of a
    long text counts twice, and so does its place in `spans`, so ratios stay right.
    """

    spans: int = 0
    misaligned: int = 0
    overlapping_dropped: int = 0
    token_collisions: int = 0
    untokenized: int = 0

    def __iadd__(self, other: "SpanLoss") -> "SpanLoss":
        self.spans += other.spans
        self.misaligned += other.misaligned
        self.overlapping_dropped += other.overlapping_dropped
        self.token_collisions += other.token_collisions
        self.untokenized += other.untokenized
        return self


def token_char_ranges(text: str, token_offsets: Sequence[tuple[int, int]]) -> list[TokenRange]:
    """The characters each token stands for: those `align_characters` gives it, whitespace trimmed.

    Both the tagger and the decoder use this, so a tagged token range decodes to the same characters.
    """
    if not token_offsets:
        return []
    token_of_char, from_piece_start, _ = align_characters(len(text), list(token_offsets))
    ranges: list[TokenRange] = [None] * len(token_offsets)
    for char, (token, bucket) in enumerate(zip(token_of_char, from_piece_start)):
        if bucket == UNCOVERED or text[char].isspace():
            continue
        known = ranges[token]
        ranges[token] = (char if known is None else known[0], char + 1)
    return ranges


def token_tags(
    text: str,
    entities: Sequence[Mapping],
    token_offsets: Sequence[tuple[int, int]],
    label_to_id: Mapping[str, int],
) -> tuple[list[int], SpanLoss]:
    """BIO tag ids for the tokens of `text` (special tokens excluded) and what the tagging lost.

    `entities` are character spans of `text`; `label_to_id` maps BIO tags ("O", "B-X", ...) to ids.
    A span tags the tokens it touches: B on the first, I on the rest. Spans are placed longest first,
    then earliest; one whose tokens are already taken is dropped (`overlapping_dropped` when its
    characters overlap the span holding them, `token_collisions` otherwise). Exact duplicates are one span.
    Tokens standing for no character get `IGNORE_INDEX`.
    """
    ranges = token_char_ranges(text, token_offsets)
    content_tokens = [index for index, token_range in enumerate(ranges) if token_range is not None]
    tags = [label_to_id["O"] if token_range is not None else IGNORE_INDEX for token_range in ranges]
    loss = SpanLoss()
    placements = []
    for start, end, label in dict.fromkeys((entity["start"], entity["end"], entity["label"]) for entity in entities):
        if not 0 <= start < end <= len(text):
            raise ValueError(f"span ({start}, {end}) is not a non-empty span of a {len(text)}-character text")
        if f"B-{label}" not in label_to_id or f"I-{label}" not in label_to_id:
            raise ValueError(f"label {label!r} has no B-/I- tag in {sorted(label_to_id)}")
        loss.spans += 1
        touched = [index for index in content_tokens if ranges[index][0] < end and start < ranges[index][1]]
        if not touched:
            loss.untokenized += 1
            continue
        placements.append((start, end, label, touched[0], touched[-1]))
    placements.sort(key=lambda placement: (placement[0] - placement[1], placement[0]))
    holder: list[tuple[int, int] | None] = [None] * len(ranges)
    for start, end, label, first, last in placements:
        holders = {kept for kept in holder[first : last + 1] if kept is not None}
        if any(kept_start < end and start < kept_end for kept_start, kept_end in holders):
            loss.overlapping_dropped += 1
            continue
        if holders:
            loss.token_collisions += 1
            continue
        holder[first : last + 1] = [(start, end)] * (last - first + 1)
        if (ranges[first][0], ranges[last][1]) != (start, end):
            loss.misaligned += 1
        for index in range(first, last + 1):
            if ranges[index] is not None:
                tags[index] = label_to_id[f"{'B' if index == first else 'I'}-{label}"]
    return tags, loss


def decode_bio(
    tag_ids: Sequence[int],
    scores: Sequence[float],
    token_ranges: Sequence[TokenRange],
    tags: Sequence[str],
    char_offset: int = 0,
) -> list[dict]:
    """Character spans `{"start", "end", "label", "score"}` from per-token tag ids.

    `token_ranges` come from `token_char_ranges`, `tags[tag_id]` names a tag, `scores` are per-token
    confidences (a span scores their mean) and `char_offset` shifts window offsets to the full text.
    The usual repair applies: an I-X after O or after a span of another type starts a new span, since
    dropping it would lose an entity the model did see. Tokens standing for no character are skipped.
    """
    parsed = [parse_tag(tag) for tag in tags]
    spans: list[dict] = []
    current: dict | None = None
    for tag_id, score, token_range in zip(tag_ids, scores, token_ranges, strict=True):
        if token_range is None:
            continue
        kind, label = parsed[tag_id]
        if current is not None and kind == "I" and label == current["label"]:
            current["end"] = token_range[1] + char_offset
            current["scores"].append(score)
            continue
        if current is not None:
            spans.append(_finished(current))
        current = None
        if kind != "O":
            current = {"start": token_range[0] + char_offset, "end": token_range[1] + char_offset, "label": label, "scores": [score]}
    if current is not None:
        spans.append(_finished(current))
    return spans


def _finished(span: dict) -> dict:
    scores = span.pop("scores")
    span["score"] = float(sum(scores) / len(scores))
    return span


# ---------------------------------------------------------------------------------------------------
# Windows and batches
# ---------------------------------------------------------------------------------------------------


def window_token_limit(tokenizer: PreTrainedTokenizerBase, max_positions: int = MAX_POSITIONS) -> int:
    """Text tokens per window: the encoder limit (at most 512) minus the tokenizer's special tokens."""
    return TokenFrame.of(tokenizer).window_tokens(min(max_positions, MAX_POSITIONS))


def batch_windows(
    windows: Sequence[TextWindow], frame: TokenFrame, tag_rows: Sequence[list[int]] | None = None
) -> dict[str, torch.Tensor]:
    """Pad windows inside the tokenizer's special tokens into `input_ids`/`attention_mask` (and
    `labels` when `tag_rows` are given, `IGNORE_INDEX` on special and padding tokens)."""
    batch = frame.pad(windows)
    if tag_rows is None:
        return batch
    prefix_length = len(frame.prefix)
    labels = torch.full_like(batch["input_ids"], IGNORE_INDEX)
    for row, (window, tags) in enumerate(zip(windows, tag_rows)):
        if window.token_ids:
            labels[row, prefix_length : prefix_length + len(window.token_ids)] = torch.tensor(tags, dtype=torch.long)
    batch["labels"] = labels
    return batch


class TokenClassificationCollator:
    """Callable for `DataLoader(collate_fn=...)`: rows -> `input_ids`, `attention_mask`, `labels`.

    Mirrors KnowFREE's `SpanCollator`: rows longer than the encoder are cut into the windows `predict`
    uses and every window is a training example holding the spans wholly inside it, so long documents
    are trained on, not truncated. `max_tokens` (text tokens per window) defaults to the encoder limit.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, labels: Sequence[str], max_tokens: int | None = None):
        self.tokenizer = tokenizer
        self.frame = TokenFrame.of(tokenizer)
        self.tags = bio_labels(labels)
        self.tag_to_id = {tag: index for index, tag in enumerate(self.tags)}
        self.max_tokens = max_tokens or self.frame.window_tokens(MAX_POSITIONS)

    def examples(self, rows: Sequence[Mapping]) -> list[tuple[TextWindow, list[int], SpanLoss]]:
        """Every window of every row with its token tags and what tagging it lost."""
        windows = text_windows([row["text"] for row in rows], self.tokenizer, self.max_tokens, BIO_SPAN_WIDTH_LIMIT)
        examples = []
        for window, entities in zip(windows, spans_in_windows(windows, [row.get("entities") or [] for row in rows])):
            tag_ids, loss = token_tags(window.text, entities, window.token_offsets, self.tag_to_id)
            examples.append((window, tag_ids, loss))
        return examples

    def __call__(self, rows: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        examples = self.examples(rows)
        if not examples:
            raise ValueError("a batch of empty texts has nothing to train on")
        return batch_windows([window for window, _, _ in examples], self.frame, [tags for _, tags, _ in examples])


def alignment_report(
    rows: Sequence[Mapping], tokenizer: PreTrainedTokenizerBase, labels: Sequence[str], max_tokens: int | None = None
) -> dict[str, int]:
    """What BIO tagging loses on `rows`, over the very examples the collator trains on; log it once
    before training so a baseline score is never read without knowing which gold spans it could not learn."""
    total = SpanLoss()
    examples = TokenClassificationCollator(tokenizer, labels, max_tokens).examples(rows)
    for _, _, loss in examples:
        total += loss
    return {"rows": len(rows), "windows": len(examples), **asdict(total)}


# ---------------------------------------------------------------------------------------------------
# Prediction and building
# ---------------------------------------------------------------------------------------------------


@torch.inference_mode()
def predict_token_spans(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: str | list[str],
    batch_size: int = 8,
    max_tokens: int | None = None,
) -> list[dict] | list[list[dict]]:
    """Spans with character `start`, `end` (exclusive), `label`, `score`, `text`, as `KnowFreeModel.predict`.

    A string gives a list of spans, a list of strings a list of such lists. Long text is read in
    KnowFREE's overlapping windows, never truncated; a span is reported by the window owning its first
    character. Should a span owned by one window run into one owned by the next, the earlier is kept, so
    the output stays flat as BIO promises. `score` is the mean max-softmax probability of its tokens.
    """
    single = isinstance(texts, str)
    batch_texts = [texts] if single else texts
    if not isinstance(batch_texts, (list, tuple)) or not all(isinstance(text, str) for text in batch_texts):
        raise TypeError("predict_token_spans() takes a string or a list of strings")
    tags = [model.config.id2label[index] for index in range(model.config.num_labels)]
    frame = TokenFrame.of(tokenizer)
    max_tokens = max_tokens or window_token_limit(tokenizer, getattr(model.config, "max_position_embeddings", MAX_POSITIONS))
    prefix_length = len(frame.prefix)
    windows = text_windows(batch_texts, tokenizer, max_tokens, BIO_SPAN_WIDTH_LIMIT)
    window_spans: list[list[dict]] = [[] for _ in windows]
    order = sorted(range(len(windows)), key=lambda index: len(windows[index].token_ids))
    was_training = model.training
    model.eval()
    try:
        for batch_start in range(0, len(order), batch_size):
            indices = order[batch_start : batch_start + batch_size]
            inputs = batch_windows([windows[index] for index in indices], frame)
            logits = model(**{key: value.to(model.device) for key, value in inputs.items()}).logits
            scores, tag_ids = logits.float().softmax(-1).max(-1)
            for row, index in enumerate(indices):
                window = windows[index]
                text_tokens = slice(prefix_length, prefix_length + len(window.token_ids))
                decoded = decode_bio(
                    tag_ids[row, text_tokens].tolist(),
                    scores[row, text_tokens].tolist(),
                    token_char_ranges(window.text, window.token_offsets),
                    tags,
                    window.char_start,
                )
                window_spans[index] = [span for span in decoded if window.own_start <= span["start"] < window.own_end]
    finally:
        model.train(was_training)
    results: list[list[dict]] = [[] for _ in batch_texts]
    for window, spans in zip(windows, window_spans):
        kept = results[window.text_index]
        for span in spans:
            if kept and span["start"] < kept[-1]["end"]:
                continue
            kept.append({**span, "text": batch_texts[window.text_index][span["start"] : span["end"]]})
    return results[0] if single else results


def build_token_classifier(
    encoder: str | Path, labels: Sequence[str]
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The baseline on `encoder` (a local folder or a Hub id) with a fresh BIO head for `labels`.

    A local folder is read with `local_files_only`, so building never touches the network; a Hub id
    follows the usual cache and `HF_HUB_OFFLINE` rules.
    """
    tags = bio_labels(labels)
    local = Path(encoder).is_dir()
    model = AutoModelForTokenClassification.from_pretrained(
        str(encoder),
        num_labels=len(tags),
        id2label=dict(enumerate(tags)),
        label2id={tag: index for index, tag in enumerate(tags)},
        local_files_only=local,
    )
    tokenizer = AutoTokenizer.from_pretrained(str(encoder), local_files_only=local)
    return model, tokenizer
