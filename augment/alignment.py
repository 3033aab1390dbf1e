"""Turning strings an annotator returned into character spans of the source text.

Nothing is guessed: a mention that does not occur in the text is dropped (the caller counts it);
a word list that cannot be laid over the text in order is rejected. Offsets follow the project's
one convention: character offsets, end exclusive.
"""

from dataclasses import dataclass

MAX_SEGMENTATION_GAP_SHARE = 0.2  # a segmentation missing more of the text than this is rejected, not repaired


def occurrences(text: str, needle: str) -> list[int]:
    """Start offsets of every (possibly overlapping) occurrence of `needle` in `text`."""
    starts, position = [], text.find(needle)
    while needle and position >= 0:
        starts.append(position)
        position = text.find(needle, position + 1)
    return starts


def mention_spans(text: str, mention: str, occurrence: int | None = None) -> list[tuple[int, int]]:
    """Spans of `mention` in `text`: the `occurrence`-th (1-based) when valid, else all of them."""
    mention = mention.strip()
    starts = occurrences(text, mention)
    if occurrence is not None and 1 <= occurrence <= len(starts):
        starts = [starts[occurrence - 1]]
    return [(start, start + len(mention)) for start in starts]


@dataclass(frozen=True)
class Tiling:
    """Word spans laid over a text in order; `gaps` are stretches no word covered."""

    spans: list[tuple[int, int]]
    word_indices: list[int]
    gaps: list[tuple[int, int]]


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def lay_words(text: str, words: list[str]) -> Tiling | None:
    """Place `words` left to right over `text`; None when a word cannot be found ahead of the last one.

    Whitespace between words is ignored; any other characters skipped over (or left after the last
    word) are reported as gaps. Empty words are ignored; `word_indices` says which input word each
    span came from.
    """
    spans, indices, gaps = [], [], []
    position = 0
    for index, word in enumerate(words):
        word = word.strip()
        if not word:
            continue
        position = _skip_spaces(text, position)
        found = text.find(word, position)
        if found < 0:
            return None
        if found > position and text[position:found].strip():
            gaps.append((position, found))
        spans.append((found, found + len(word)))
        indices.append(index)
        position = found + len(word)
    position = _skip_spaces(text, position)
    if position < len(text):
        gaps.append((position, len(text)))
    return Tiling(spans, indices, gaps)


def repair_segmentation(text: str, tiling: Tiling) -> list[tuple[int, int]] | None:
    """Word spans covering every non-space character: gaps become words, unless they are too large."""
    gap_characters = sum(len(text[start:end].strip()) for start, end in tiling.gaps)
    content = len("".join(text.split()))
    if content == 0 or gap_characters > MAX_SEGMENTATION_GAP_SHARE * content:
        return None
    filled = list(tiling.spans)
    for start, end in tiling.gaps:
        stripped_start = _skip_spaces(text, start)
        stripped_end = end
        while stripped_end > stripped_start and text[stripped_end - 1].isspace():
            stripped_end -= 1
        filled.append((stripped_start, stripped_end))
    return sorted(filled)
