"""Turning strings an annotator returned into character spans of the source text.

Nothing is guessed: a mention that does not occur in the text is dropped (the caller counts it);
a word list that cannot be laid over the text in order is rejected. Offsets follow the project's
one convention: character offsets into the source text, end exclusive.

LLMs copy text loosely in one respect only that we accept: the width and shape of punctuation and
of Latin letters and digits (`,` for `，`, `"` for `“`, `A` for `Ａ`). Both the source text and the
string looked for are therefore compared in their *matching form*, built one source character at a
time:

1. NFKC of the character, which folds full-width Latin letters, digits and ASCII punctuation
   (`Ａ１，！？：；（）`) to ASCII and expands compatibility characters (`…` -> `...`, `㎏` -> `kg`);
2. then one canonical mark per punctuation family: `。｡．` -> `.`; `、` (and `，`) -> `,`;
   `“ ” „ ‟ 「 」 『 』 〝 〞` -> `"`; `‘ ’ ‚ ‛` -> `'`; `【 〔` -> `[`, `】 〕` -> `]`;
   `《 〈` -> `<`, `》 〉` -> `>`; `— – ― ‐ ‑ ‒` -> `-`; `〜` -> `~`; `⋯` -> `...`;
   `・ • ‧ ∙` -> `·`.

Letter case, whitespace and every other character are compared as they are. A match counts only
when it starts and ends on whole source characters, so the returned span's source text, in matching
form, equals the needle's matching form exactly.
"""

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

MAX_SEGMENTATION_GAP_SHARE = 0.2  # a segmentation missing more of the text than this is rejected, not repaired

_PUNCTUATION_FAMILIES = {
    ".": "。｡．",
    ",": "、，",
    '"': "“”„‟「」『』〝〞",
    "'": "‘’‚‛",
    "[": "【〔",
    "]": "】〕",
    "<": "《〈",
    ">": "》〉",
    "-": "—–―‐‑‒",
    "~": "〜",
    "...": "⋯",
    "·": "・•‧∙",
}
_CANONICAL_PUNCTUATION = str.maketrans({mark: canonical for canonical, marks in _PUNCTUATION_FAMILIES.items() for mark in marks})


def matching_form(text: str) -> str:
    """`text` as alignment compares it: NFKC per character, then one mark per punctuation family."""
    return "".join(unicodedata.normalize("NFKC", char).translate(_CANONICAL_PUNCTUATION) for char in text)


class MatchingView:
    """A text in matching form, with the way back from every matching-form offset to source offsets.

    A source character can become several matching-form characters (`…` -> `...`), so offsets are
    mapped per source character: `_source_of[j]` is the source character that produced matching-form
    character j, and `_begins[i]` is where source character i's matching form begins.
    """

    def __init__(self, text: str) -> None:
        pieces = [matching_form(char) for char in text]
        self.form = "".join(pieces)
        self._source_of = [index for index, piece in enumerate(pieces) for _ in piece]
        self._begins, offset = [], 0
        for piece in pieces:
            self._begins.append(offset)
            offset += len(piece)
        self._begins.append(offset)
        self._boundaries = set(self._begins)

    def spans(self, needle: str, start: int = 0) -> Iterator[tuple[int, int]]:
        """Source spans whose matching form is `needle`'s, left to right (overlaps included), from source offset `start`."""
        target = matching_form(needle)
        if not target:
            return
        position = self.form.find(target, self._begins[start])
        while position >= 0:
            end = position + len(target)
            if position in self._boundaries and end in self._boundaries:
                yield self._source_of[position], self._source_of[end - 1] + 1
            position = self.form.find(target, position + 1)


def occurrences(text: str, needle: str) -> list[tuple[int, int]]:
    """Source spans of every (possibly overlapping) occurrence of `needle` in `text`, in matching form."""
    return list(MatchingView(text).spans(needle))


def mention_spans(text: str, mention: str, occurrence: int | None = None) -> list[tuple[int, int]]:
    """Spans of `mention` in `text`: the `occurrence`-th (1-based) when valid, else all of them."""
    spans = occurrences(text, mention.strip())
    if occurrence is not None and 1 <= occurrence <= len(spans):
        return [spans[occurrence - 1]]
    return spans


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

    Words are found in matching form (see the module docstring). Whitespace between words is
    ignored; any other characters skipped over (or left after the last word) are reported as gaps.
    Empty words are ignored; `word_indices` says which input word each span came from.
    """
    view = MatchingView(text)
    spans, indices, gaps = [], [], []
    position = 0
    for index, word in enumerate(words):
        word = word.strip()
        if not word:
            continue
        position = _skip_spaces(text, position)
        found = next(view.spans(word, position), None)
        if found is None:
            return None
        start, end = found
        if start > position and text[position:start].strip():
            gaps.append((position, start))
        spans.append(found)
        indices.append(index)
        position = end
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
