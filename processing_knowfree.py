"""KnowFreeProcessor: everything between raw text and `KnowFreeModel`'s tensors, and back.

On the way in, `KnowFreeProcessor` turns texts into the keyword arguments of `KnowFreeModel.forward`:

1. windows: a text longer than the encoder is cut into overlapping token windows (`split_into_windows`),
   each span owned by exactly one of them; the overlap follows one rule (`window_overlap`) that the
   token-classification baseline uses too;
2. character alignment: every character gets one row of the span grid, whatever the tokenizer does
   (one WordPiece per character, or SentencePiece pieces covering several; `align_characters`);
3. tensors: the windows' tokens inside the tokenizer's special tokens (`TokenFrame`), padded, plus
   each character's token, its position inside that token and its own vocabulary id (`encode`);
4. for training rows, the multi-hot label grid in the (start, width) band (`training_batch`).

On the way out it turns band logits into scored span candidates in full-text offsets
(`window_candidates`), and those into spans by per-label thresholds and flat or nested decoding
(`post_process`).

Span convention everywhere: character offsets, `end` exclusive. Band cell [i, k] is the span of
characters i..i+k (inclusive), so its end offset is i + k + 1; with `max_span_width` W the band holds
L x W cells instead of L x L.

This file depends only on torch, transformers and `configuration_knowfree.py`: the Hub copies it beside
the model file, which imports it, so `trust_remote_code` loading needs nothing else.
"""

import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import logging

try:
    from .configuration_knowfree import KnowFreeConfig
except ImportError:
    from configuration_knowfree import KnowFreeConfig


# ---------------------------------------------------------------------------------------------------
# Character alignment
# ---------------------------------------------------------------------------------------------------

PIECE_POSITION_BUCKETS = 8
"""Characters 0..6 of a piece get their own position bucket, later ones share bucket 6; bucket 7 marks
a character that no token covers."""
UNCOVERED = PIECE_POSITION_BUCKETS - 1


def align_characters(
    text_length: int, token_offsets: list[tuple[int, int]]
) -> tuple[list[int], list[int], list[int]]:
    """Map every character to the token whose hidden state represents it.

    The alignment rule:
    - a character belongs to the last token whose offset range [start, end) contains it (special
      tokens have empty ranges and own nothing; a SentencePiece "▁" piece that the tokenizer maps
      onto the first character yields it to the real piece that follows);
    - a character no token covers (whitespace the tokenizer dropped) borrows the next covered
      token to its right, or the last one to its left at the end of the text;
    - since several characters may share a token ("中国" is one SentencePiece piece), each character
      also gets its position counted from the first and from the last character its token owns;
      uncovered characters get the bucket `UNCOVERED` in both.

    Returns three lists of length `text_length`: token index, position from the piece start and
    position from the piece end (both clipped to the buckets).
    """
    owner = [-1] * text_length
    for token_index, (start, end) in enumerate(token_offsets):
        for char in range(max(start, 0), min(end, text_length)):
            owner[char] = token_index
    first_owned: dict[int, int] = {}
    last_owned: dict[int, int] = {}
    for char, token_index in enumerate(owner):
        if token_index >= 0:
            first_owned.setdefault(token_index, char)
            last_owned[token_index] = char
    token_of_char = list(owner)
    next_covered = -1
    for char in range(text_length - 1, -1, -1):
        if owner[char] >= 0:
            next_covered = owner[char]
        else:
            token_of_char[char] = next_covered
    previous_covered = -1
    for char in range(text_length):
        if owner[char] >= 0:
            previous_covered = owner[char]
        elif token_of_char[char] < 0:
            token_of_char[char] = previous_covered
    if text_length and token_of_char[0] < 0:
        raise ValueError("the tokenizer produced no token covering any character of the text")
    from_start, from_end = [], []
    for char, token_index in enumerate(owner):
        if token_index < 0:
            from_start.append(UNCOVERED)
            from_end.append(UNCOVERED)
        else:
            from_start.append(min(char - first_owned[token_index], UNCOVERED - 1))
            from_end.append(min(last_owned[token_index] - char, UNCOVERED - 1))
    return token_of_char, from_start, from_end


# ---------------------------------------------------------------------------------------------------
# Long-text windows
# ---------------------------------------------------------------------------------------------------


@dataclass
class TextWindow:
    """A piece of a text that fits the encoder.

    `char_start`/`char_end` locate the window in the full text; `token_ids` exclude special tokens;
    `token_offsets` are relative to the window; spans starting in [own_start, own_end) (full-text
    offsets) are the ones this window reports, so overlapping windows never report a span twice.
    """

    text_index: int
    text: str
    char_start: int
    char_end: int
    own_start: int
    own_end: int
    token_ids: list[int]
    token_offsets: list[tuple[int, int]]


def split_into_windows(
    text: str,
    text_index: int,
    tokenizer: PreTrainedTokenizerBase,
    max_tokens: int,
    overlap_tokens: int,
) -> list[TextWindow]:
    """Cut `text` into windows of at most `max_tokens` tokens (special tokens excluded).

    The text is tokenized once; windows are slices of that tokenization, so no window is
    re-tokenized differently from the whole. Consecutive windows share `overlap_tokens` tokens and
    the boundary of ownership sits in the middle of the shared part, so a span shorter than half the
    overlap is always seen whole by the window that owns its start.
    """
    if not text:
        return []
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    token_ids, offsets = encoding["input_ids"], [tuple(pair) for pair in encoding["offset_mapping"]]
    if not token_ids:
        return []  # the tokenizer's normaliser deleted every character ("\x01", spaces): nothing to label
    if len(token_ids) <= max_tokens:
        return [TextWindow(text_index, text, 0, len(text), 0, len(text), token_ids, offsets)]
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError(f"overlap_tokens must be in [0, {max_tokens}), got {overlap_tokens}")
    stride = max_tokens - overlap_tokens
    token_starts = list(range(0, len(token_ids) - overlap_tokens, stride))
    bounds = []
    for first in token_starts:
        last = min(first + max_tokens, len(token_ids))
        char_start = 0 if first == 0 else offsets[first][0]
        char_end = len(text) if last == len(token_ids) else offsets[last][0]
        bounds.append((first, last, char_start, char_end))
        if last == len(token_ids):
            break
    windows = []
    for position, (first, last, char_start, char_end) in enumerate(bounds):
        own_start = 0 if position == 0 else windows[-1].own_end
        if position + 1 < len(bounds):
            own_end = (bounds[position + 1][2] + char_end) // 2
        else:
            own_end = len(text)
        window_offsets = [(start - char_start, end - char_start) for start, end in offsets[first:last]]
        windows.append(
            TextWindow(
                text_index=text_index,
                text=text[char_start:char_end],
                char_start=char_start,
                char_end=char_end,
                own_start=own_start,
                own_end=own_end,
                token_ids=token_ids[first:last],
                token_offsets=window_offsets,
            )
        )
    return windows


UNLIMITED_SPAN_REACH = 64
"""The span width, in tokens, that the overlap keeps whole when spans have no width limit (a KnowFREE
model without `max_span_width`, or the BIO baseline)."""


def window_overlap(max_tokens: int, max_span_width: int | None) -> int:
    """Tokens shared by consecutive windows: twice the widest span the model can emit, so every span
    is seen whole by the window that owns its start, and at most half a window."""
    return min(max_tokens // 2, 2 * (max_span_width or UNLIMITED_SPAN_REACH))


def text_windows(
    texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, max_tokens: int, max_span_width: int | None
) -> list[TextWindow]:
    """All encoder windows of `texts`, in text order, overlapping by `window_overlap`."""
    overlap_tokens = window_overlap(max_tokens, max_span_width)
    windows: list[TextWindow] = []
    for text_index, text in enumerate(texts):
        windows.extend(split_into_windows(text, text_index, tokenizer, max_tokens, overlap_tokens))
    return windows


def spans_in_windows(windows: list[TextWindow], spans_per_text: list[list[dict]]) -> list[list[dict]]:
    """The spans `{"start", "end", "label", ...}` lying wholly inside each window, shifted to window
    offsets (copies; the other keys are kept).

    Training uses it so that long texts are learnt window by window. A span that fits in no window
    could never be learnt, so it is an error rather than a silent loss.
    """
    placed: list[set[int]] = [set() for _ in spans_per_text]
    per_window = []
    for window in windows:
        inside = []
        for index, span in enumerate(spans_per_text[window.text_index]):
            if window.char_start <= span["start"] and span["end"] <= window.char_end:
                inside.append({**span, "start": span["start"] - window.char_start, "end": span["end"] - window.char_start})
                placed[window.text_index].add(index)
        per_window.append(inside)
    for text_index, spans in enumerate(spans_per_text):
        missing = sorted({(span["start"], span["end"], span["label"]) for index, span in enumerate(spans) if index not in placed[text_index]})
        if missing:
            raise ValueError(f"spans {missing} of text {text_index} fit in no encoder window")
    return per_window


@dataclass(frozen=True)
class TokenFrame:
    """The special tokens a tokenizer puts around a text ([CLS] ... [SEP], <s> ... </s>), its padding
    id and its length limit: what a window needs to become encoder input."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    pad_id: int
    model_max_length: int

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase) -> "TokenFrame":
        """Found by encoding a probe text with and without special tokens, so it works for any
        tokenizer without relying on tokenizer-class specific helpers."""
        bare = tokenizer("a", add_special_tokens=False)["input_ids"]
        framed = tokenizer("a", add_special_tokens=True)["input_ids"]
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        for prefix_length in range(len(framed) - len(bare) + 1):
            if framed[prefix_length : prefix_length + len(bare)] == bare:
                prefix, suffix = framed[:prefix_length], framed[prefix_length + len(bare) :]
                return cls(tuple(prefix), tuple(suffix), pad_id, tokenizer.model_max_length)
        raise ValueError(f"cannot locate the text inside the special tokens of {type(tokenizer).__name__}")

    def window_tokens(self, max_positions: int) -> int:
        """Text tokens that fit an encoder of `max_positions` once the special tokens are added
        (a tokenizer without a real limit reports a huge `model_max_length`)."""
        limits = [max_positions]
        if self.model_max_length < 1_000_000:
            limits.append(self.model_max_length)
        return min(limits) - len(self.prefix) - len(self.suffix)

    def pad(self, windows: Sequence[TextWindow]) -> dict[str, torch.Tensor]:
        """Each window's tokens inside the special tokens, padded: `input_ids`, `attention_mask`."""
        rows = [[*self.prefix, *window.token_ids, *self.suffix] for window in windows]
        input_ids = torch.full((len(rows), max(len(row) for row in rows)), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        for index, row in enumerate(rows):
            input_ids[index, : len(row)] = torch.tensor(row, dtype=torch.long)
            attention_mask[index, : len(row)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}


# ---------------------------------------------------------------------------------------------------
# The band and its candidates
# ---------------------------------------------------------------------------------------------------


def band_width(length: int, max_span_width: int | None) -> int:
    """Number of width slots the (start, width) band needs for `length` characters."""
    return max(1, length if max_span_width is None else min(max_span_width, length))


@dataclass
class SpanCandidate:
    """A scored span in full-text character offsets; `label` indexes the target labels."""

    start: int
    end: int
    label: int
    score: float


def spans_above(candidates: list[SpanCandidate], thresholds: list[float]) -> list[SpanCandidate]:
    """The candidates whose score reaches the threshold of their label (`thresholds[label index]`)."""
    return [candidate for candidate in candidates if candidate.score >= thresholds[candidate.label]]


def decode_spans(candidates: list[SpanCandidate], nested: bool) -> list[SpanCandidate]:
    """Greedy decoding by descending score.

    Flat: keep a span only if it overlaps no kept span. Nested: keep it unless it crosses a kept
    span (partial overlap) or repeats a kept span's offsets; nesting is allowed. A kept span that
    overlaps a candidate starts less than the widest candidate's width before the candidate's end,
    so kept spans are looked up by start in that window only: time O(n log n + n * width) instead of
    comparing every candidate with every kept span (a 100,000-character text had not finished after
    10 minutes that way).
    """
    widest = max((candidate.end - candidate.start for candidate in candidates), default=0)
    kept_by_start: dict[int, list[SpanCandidate]] = {}
    kept: list[SpanCandidate] = []
    for candidate in sorted(candidates, key=lambda span: (-span.score, span.start, span.end)):
        if not any(
            _conflicts(candidate, other, nested)
            for start in range(max(0, candidate.start - widest + 1), candidate.end)
            for other in kept_by_start.get(start, ())
        ):
            kept.append(candidate)
            kept_by_start.setdefault(candidate.start, []).append(candidate)
    return sorted(kept, key=lambda span: (span.start, -span.end))


def _conflicts(candidate: SpanCandidate, other: SpanCandidate, nested: bool) -> bool:
    """Whether a kept span `other` rules `candidate` out (see `decode_spans`)."""
    if not (candidate.start < other.end and other.start < candidate.end):
        return False
    if not nested or (candidate.start, candidate.end) == (other.start, other.end):
        return True
    inside = other.start <= candidate.start and candidate.end <= other.end
    outside = candidate.start <= other.start and other.end <= candidate.end
    return not (inside or outside)


# ---------------------------------------------------------------------------------------------------
# The processor
# ---------------------------------------------------------------------------------------------------

HUB_OPTIONS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")
"""The `from_pretrained` options that locate files, passed on to the tokenizer and the config."""


class KnowFreeProcessor:
    """Owns the tokenizer and every rule between text and tensors: the special-token frame, the window
    length and overlap, the label set and the band width.

    It reads the label set, `max_span_width`, the encoder's length limit, the thresholds and the
    decoding from the model's config; `KnowFreeModel` hands it its own config object, so thresholds
    calibrated after training are the ones it decodes with.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: KnowFreeConfig):
        self.tokenizer = tokenizer
        self.config = config
        self.frame = TokenFrame.of(tokenizer)
        self.max_tokens = self.frame.window_tokens(getattr(config.encoder_config, "max_position_embeddings", 512))
        self.label_index = {label: index for index, label in enumerate(config.labels)}

    # -- saving and loading --------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | Path, config: KnowFreeConfig | None = None, **hub_kwargs
    ) -> "KnowFreeProcessor":
        """The tokenizer saved in a model folder (or Hub repo), with the model's config unless one is
        given; `hub_kwargs` are the `HUB_OPTIONS`."""
        unknown = sorted(set(hub_kwargs) - set(HUB_OPTIONS))
        if unknown:
            raise TypeError(f"KnowFreeProcessor.from_pretrained got unexpected options {unknown}")
        if config is None:
            config = KnowFreeConfig.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
        tokenizer = AutoTokenizer.from_pretrained(pretrained_model_name_or_path, config=config, **hub_kwargs)
        return cls(tokenizer, config)

    def save_pretrained(self, save_directory: str | Path) -> None:
        """Write the tokenizer and the config it reads its labels and limits from."""
        self.tokenizer.save_pretrained(save_directory)
        self.config.save_pretrained(save_directory)

    # -- text to tensors -----------------------------------------------------------------------------

    @staticmethod
    def text_list(texts, text_column: str = "text") -> list[str]:
        """The texts of a list, a `datasets.Dataset` (its `text_column`) or any other iterable of strings."""
        if hasattr(texts, "column_names"):
            if text_column not in texts.column_names:
                raise KeyError(f"the dataset has no column {text_column!r} (columns: {', '.join(texts.column_names)}); pass text_column=")
            texts = texts[text_column]
        texts = list(texts)
        wrong = next((index for index, text in enumerate(texts) if not isinstance(text, str)), None)
        if wrong is not None:
            raise TypeError(f"predict() takes strings; item {wrong} is a {type(texts[wrong]).__name__}")
        return texts

    def windows(self, texts: Sequence[str], max_tokens: int | None = None) -> list[TextWindow]:
        """All encoder windows of `texts` (`max_tokens` text tokens each, the encoder limit by default)."""
        if not isinstance(texts, (list, tuple)) or not all(isinstance(text, str) for text in texts):
            raise TypeError("expected a list of strings")
        return text_windows(texts, self.tokenizer, max_tokens or self.max_tokens, self.config.max_span_width)

    def batches(self, windows: list[TextWindow], batch_size: int) -> list[list[TextWindow]]:
        """Windows in batches of `batch_size`, in order of token count.

        The token count is what the encoder pads to (sorting by characters padded the Weibo test to 13%
        more tokens); the span head computes only the rows of real characters, so uneven character
        counts in a batch cost it little.
        """
        order = sorted(windows, key=lambda window: (len(window.token_ids), len(window.text)))
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]

    def character_ids(self, text: str) -> list[int]:
        """Each character's own vocabulary id (the unknown id where the vocabulary has no such piece).

        A SentencePiece vocabulary merges characters into pieces (e5 reads 的女人 as one piece), so the
        token state alone cannot tell a span starting at 女 from one starting at 的; the character's own
        embedding can (`KnowFreeConfig.character_embeddings`). Full-width punctuation (，！) is in the
        vocabulary as its NFKC form (, !), as the tokenizer reads it.
        """
        unknown = self.tokenizer.unk_token_id if self.tokenizer.unk_token_id is not None else 0
        ids = self.tokenizer.convert_tokens_to_ids(list(text))
        normalized = self.tokenizer.convert_tokens_to_ids([unicodedata.normalize("NFKC", char) for char in text])
        return [
            normal if index in (None, unknown) and normal is not None else (unknown if index is None else index)
            for index, normal in zip(ids, normalized)
        ]

    def encode(self, windows: Sequence[TextWindow]) -> dict[str, torch.Tensor]:
        """The keyword arguments of `KnowFreeModel.forward` for a batch of windows.

        `input_ids`, `attention_mask` (B, T): tokens inside the special-token frame, padded;
        `char_token_index` (B, L): the token (index into T) whose state represents each character;
        `char_piece_start`, `char_piece_end` (B, L): the character's position from the first and the
        last character of its token (`align_characters`); `char_ids` (B, L): its own vocabulary id;
        `char_mask` (B, L): True on real characters. L is the longest window's character count.
        """
        if not windows:
            raise ValueError("there is nothing to encode: every text is empty")
        batch_size = len(windows)
        max_chars = max(1, max(len(window.text) for window in windows))
        char_token_index = torch.zeros((batch_size, max_chars), dtype=torch.long)
        char_piece_start = torch.zeros((batch_size, max_chars), dtype=torch.long)
        char_piece_end = torch.zeros((batch_size, max_chars), dtype=torch.long)
        char_ids = torch.zeros((batch_size, max_chars), dtype=torch.long)
        char_mask = torch.zeros((batch_size, max_chars), dtype=torch.bool)
        for row, window in enumerate(windows):
            offsets = [(0, 0)] * len(self.frame.prefix) + window.token_offsets
            token_of_char, from_start, from_end = align_characters(len(window.text), offsets)
            length = len(token_of_char)
            if length:
                char_token_index[row, :length] = torch.tensor(token_of_char, dtype=torch.long)
                char_piece_start[row, :length] = torch.tensor(from_start, dtype=torch.long)
                char_piece_end[row, :length] = torch.tensor(from_end, dtype=torch.long)
                char_ids[row, :length] = torch.tensor(self.character_ids(window.text), dtype=torch.long)
                char_mask[row, :length] = True
        return {
            **self.frame.pad(windows),
            "char_token_index": char_token_index,
            "char_piece_start": char_piece_start,
            "char_piece_end": char_piece_end,
            "char_ids": char_ids,
            "char_mask": char_mask,
        }

    def __call__(self, texts: str | Sequence[str], max_tokens: int | None = None) -> dict[str, torch.Tensor]:
        """`encode` of every window of `texts` in one batch: `model(**processor(texts))`."""
        return self.encode(self.windows([texts] if isinstance(texts, str) else texts, max_tokens))

    # -- training rows -------------------------------------------------------------------------------

    def row_spans(self, row: Mapping, skip_wider_spans: bool = False) -> list[dict]:
        """Target and extension spans of a row `{"text", "entities", "extensions"?}`, checked against
        the model's labels; with `skip_wider_spans`, spans wider than `max_span_width` are left out
        (the caller counts them) instead of being an error in `label_grid`."""
        limit = self.config.max_span_width
        spans = []
        for field in ("entities", "extensions"):
            for span in row.get(field) or []:
                if span["label"] not in self.label_index:
                    raise ValueError(f"{field} label {span['label']!r} of text {row['text'][:30]!r} is not in the model's labels")
                too_wide = limit is not None and span["end"] - span["start"] > limit
                if not (too_wide and skip_wider_spans):
                    spans.append(span)
        return spans

    def label_grid(self, spans: Sequence[Sequence[Mapping]], length: int) -> torch.Tensor:
        """Multi-hot targets in the band layout: per row, spans `{"start", "end" (exclusive), "label"}`.

        Returns (B, length, W, N) with the band width W of `length` characters and N the target and
        extension labels. A span wider than the band cannot be learnt, so it is an error here.
        """
        width = band_width(length, self.config.max_span_width)
        grid = torch.zeros((len(spans), length, width, len(self.label_index)))
        for row, row_spans in enumerate(spans):
            for span in row_spans:
                start, end = span["start"], span["end"]
                if not 0 <= start < end <= length:
                    raise ValueError(f"row {row}: span ({start}, {end}) outside 0..{length}")
                if end - start > width:
                    raise ValueError(f"row {row}: span ({start}, {end}) is wider than the band width {width}")
                grid[row, start, end - start - 1, self.label_index[span["label"]]] = 1.0
        return grid

    def training_batch(
        self, rows: Sequence[Mapping], max_tokens: int | None = None, skip_wider_spans: bool = False
    ) -> dict[str, torch.Tensor]:
        """Labelled rows `{"text", "entities", "extensions"?, "synthetic"?}` -> `forward`'s arguments
        with `span_labels` and `synthetic`.

        Rows longer than the encoder are cut into the windows `predict` reads; every window becomes a
        training example holding the spans that lie wholly inside it, so long documents are trained
        on, not truncated.
        """
        windows = self.windows([row["text"] for row in rows], max_tokens)
        spans = spans_in_windows(windows, [self.row_spans(row, skip_wider_spans) for row in rows])
        if not windows:
            raise ValueError("a batch of empty texts has nothing to train on")
        batch = self.encode(windows)
        batch["span_labels"] = self.label_grid(spans, batch["char_mask"].shape[1])
        synthetic = [bool(rows[window.text_index].get("synthetic", False)) for window in windows]
        batch["synthetic"] = torch.tensor(synthetic, dtype=torch.bool)
        return batch

    # -- band logits to spans ------------------------------------------------------------------------

    def window_candidates(
        self, span_logits: torch.Tensor, span_mask: torch.Tensor, windows: Sequence[TextWindow], min_score: float
    ) -> list[list[SpanCandidate]]:
        """Per window, the band cells it owns whose best target label scores at least `min_score`, in
        full-text offsets.

        `span_logits` (B, L, W, N) and `span_mask` (B, L, W) are `forward`'s outputs for `windows`.
        Extension channels are sliced off before scoring, so they can never be predicted.
        """
        found: list[list[SpanCandidate]] = [[] for _ in windows]
        scores, labels = span_logits[..., : len(self.config.target_labels)].sigmoid().max(-1)
        rows, starts, widths = ((scores >= min_score) & span_mask).nonzero(as_tuple=True)
        chosen_scores = scores[rows, starts, widths].tolist()
        chosen_labels = labels[rows, starts, widths].tolist()
        for row, start, width, score, label in zip(rows.tolist(), starts.tolist(), widths.tolist(), chosen_scores, chosen_labels):
            window = windows[row]
            absolute_start = window.char_start + start
            if window.own_start <= absolute_start < window.own_end:
                found[row].append(SpanCandidate(absolute_start, absolute_start + width + 1, label, score))
        return found

    def span_candidates(
        self,
        texts: Sequence[str],
        run: Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, torch.Tensor]],
        batch_size: int = 8,
        min_score: float = 0.5,
        max_tokens: int | None = None,
        show_progress_bar: bool = False,
        time_limit: float | None = None,
    ) -> list[list[SpanCandidate]]:
        """Windows -> batches -> `run` -> the candidates of every text (`window_candidates`), in order.

        `run` maps `encode`'s tensors to `(span_logits, span_mask)`: the PyTorch model's `forward` or
        an ONNX Runtime session, so both read the same windows and score the same cells. With
        `time_limit` (seconds) the work stops with a TimeoutError at the first batch boundary past it,
        so a server can bound each request.
        """
        started = time.monotonic()
        batches = self.batches(self.windows(texts, max_tokens), batch_size)
        candidates: list[list[SpanCandidate]] = [[] for _ in texts]
        for batch in logging.tqdm(batches, desc="predict", unit="batch", disable=not show_progress_bar):
            if time_limit is not None and time.monotonic() - started > time_limit:
                raise TimeoutError(f"prediction stopped after {time.monotonic() - started:.1f} s, past its time limit of {time_limit} s")
            span_logits, span_mask = run(self.encode(batch))
            for window, found in zip(batch, self.window_candidates(span_logits, span_mask, batch, min_score)):
                candidates[window.text_index].extend(found)
        return candidates

    def label_thresholds(self, threshold: float | None = None) -> list[float]:
        """The threshold of each target label: `threshold` for all of them, else the config's (the
        ones calibrated on dev after training)."""
        if threshold is None:
            return self.config.target_thresholds()
        return [threshold] * len(self.config.target_labels)

    def is_nested(self, decoding: str | None = None) -> bool:
        """Whether `decoding` ("flat"/"nested", the config's by default) keeps nested spans."""
        decoding = decoding or self.config.decoding
        if decoding not in ("flat", "nested"):
            raise ValueError(f"decoding must be 'flat' or 'nested', got {decoding!r}")
        return decoding == "nested"

    def post_process(
        self, texts: Sequence[str], candidates: Sequence[list[SpanCandidate]], thresholds: list[float], nested: bool
    ) -> list[list[dict]]:
        """Per text, the candidates above their label's threshold, decoded, as `{"start", "end",
        "label", "score", "text"}` with character offsets (`end` exclusive)."""
        target_labels = self.config.target_labels
        return [
            [
                {
                    "start": span.start,
                    "end": span.end,
                    "label": target_labels[span.label],
                    "score": span.score,
                    "text": text[span.start : span.end],
                }
                for span in decode_spans(spans_above(text_candidates, thresholds), nested=nested)
            ]
            for text, text_candidates in zip(texts, candidates)
        ]


__all__ = ["KnowFreeProcessor", "SpanCandidate", "TextWindow", "TokenFrame"]
