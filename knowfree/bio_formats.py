"""Token tags <-> character spans: what a BIO, BIOES or IOB1 corpus means as knowfree rows, and back.

Token-classification corpora tag tokens; knowfree labels character spans of a text. This module fixes
how tokens become one text (`join_tokens`), how a scheme's tags become spans (`tags_to_spans`: strict,
a sequence its scheme does not allow is an error at its token and is never repaired, since a repair
guesses where an entity starts), and how spans go back to tags (`spans_to_tags`, which reports the
spans tags cannot hold instead of altering them).

Schemes: "BIO" (IOB2: B- opens a span, I- continues one of the same label), "BIOES" (B- opens, I- or
M- continues, E- or L- closes, S- or U- is a one-token span; BILOU and BMES are spellings of it and
every span must be closed), "IOB1" (I- opens a span unless it continues one of the same label; B-
always opens one, which IOB1 writes only right after a span of the same label). A tag is "O" or a
prefix, "-" and a label.
"""

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

SCHEMES = ("BIO", "BIOES", "IOB1")
_PREFIXES = {"BIO": "BI", "IOB1": "BI", "BIOES": "BIMELSU"}
_PREFIX_NAMES = {"BIO": "B-, I-", "IOB1": "B-, I-", "BIOES": "B-, I-/M-, E-/L-, S-/U-"}
_ROLES = {"B": "B", "I": "I", "M": "I", "E": "E", "L": "E", "S": "S", "U": "S"}
_BIOES_ONLY = set("MELSU")
OUTSIDE = "O"


class TagError(ValueError):
    """A token or tag its scheme does not allow; `index` is the token it fails at, for the caller's location."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class BioTagging:
    """Tags for the tokens, and the spans they could not hold (each span plus a "reason")."""

    tags: list[str]
    unrepresentable: list[dict]


def tag_label(tag: object) -> str | None:
    """The label a tag carries ("B-PER" -> "PER"); None for "O" and for a malformed tag, which
    `tags_to_spans` rejects with its position."""
    if not isinstance(tag, str):
        return None
    prefix, dash, label = tag.partition("-")
    return label if dash and label and prefix in _ROLES else None


def detect_scheme(tags: Iterable[object]) -> str:
    """The scheme a split's tags show: BIOES when any tag has an E-/S-/M-/L-/U- prefix, else BIO. IOB1
    looks like broken BIO and cannot be told apart, so it is only ever named explicitly."""
    for tag in tags:
        if tag_label(tag) is not None and str(tag)[0] in _BIOES_ONLY:
            return "BIOES"
    return "BIO"


def _spaced_script(char: str) -> bool:
    return char in "0123456789" or unicodedata.name(char, "").startswith("LATIN ")


def join_tokens(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The text of a sentence's tokens and each token's [start, end) in it.

    A sentence of one-character tokens (character-per-line Chinese data, Latin letters included) is
    joined with no separator. Otherwise a single space goes between two neighbouring tokens when the
    first ends and the second starts with a Latin letter or an ASCII digit ("iPhone 15" but "2024年",
    "北京大学"); every other pair is joined with no separator.
    """
    word_level = any(len(token) > 1 for token in tokens)
    pieces: list[str] = []
    ranges: list[tuple[int, int]] = []
    length = 0
    for index, token in enumerate(tokens):
        if word_level and index and _spaced_script(tokens[index - 1][-1]) and _spaced_script(token[0]):
            pieces.append(" ")
            length += 1
        ranges.append((length, length + len(token)))
        pieces.append(token)
        length += len(token)
    return "".join(pieces), ranges


def _role(tag: object, scheme: str, index: int) -> tuple[str, str | None]:
    if tag == OUTSIDE:
        return OUTSIDE, None
    label = tag_label(tag)
    if label is None or str(tag)[0] not in _PREFIXES[scheme]:
        raise TagError(index, f"tag {tag!r} is not in the {scheme} scheme ('O', or {_PREFIX_NAMES[scheme]} followed by a label)")
    return _ROLES[str(tag)[0]], label


def tags_to_spans(tokens: Sequence[str], tags: Sequence[object], scheme: str = "BIO") -> dict:
    """{"text", "entities"} for one tagged sentence: the tokens joined by `join_tokens`, and one span per
    entity covering its tokens' characters. Raises `TagError` at the first token the scheme forbids."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r} (known: {', '.join(SCHEMES)})")
    if len(tokens) != len(tags):
        raise ValueError(f"{len(tokens)} tokens but {len(tags)} tags")
    for index, token in enumerate(tokens):
        if not isinstance(token, str) or not token:
            raise TagError(index, f"a token must be a non-empty string, got {token!r}")
    text, ranges = join_tokens(tokens)
    strict_ends = scheme == "BIOES"
    entities: list[dict] = []
    open_label: str | None = None
    open_start = 0

    def close(last: int) -> None:
        entities.append({"start": ranges[open_start][0], "end": ranges[last][1], "label": open_label})

    for index, tag in enumerate(tags):
        role, label = _role(tag, scheme, index)
        after = f"after {tags[index - 1]!r}" if index else "at the sentence start"
        if open_label is not None and role in ("B", "S", OUTSIDE):
            if strict_ends:
                raise TagError(index, f"tag {tag!r} {after} leaves the {open_label} span open (BIOES ends it with E-{open_label})")
            close(index - 1)
            open_label = None
        if role in ("I", "E") and open_label != label:
            if role == "I" and scheme == "IOB1":
                if open_label is not None:
                    close(index - 1)
                open_label, open_start = label, index
                continue
            hint = " (IOB1 data needs the IOB1 scheme)" if scheme == "BIO" else ""
            raise TagError(index, f"tag {tag!r} {after} {'continues' if role == 'I' else 'ends'} no {label} span{hint}")
        if role in ("B", "S"):
            open_label, open_start = label, index
        if role in ("E", "S"):
            close(index)
            open_label = None
    if open_label is not None:
        if strict_ends:
            raise TagError(len(tags) - 1, f"the sentence ends inside a {open_label} span (BIOES ends it with E-{open_label})")
        close(len(tags) - 1)
    return {"text": text, "entities": entities}


def _token_ranges(text: str, tokens: Sequence[str] | None) -> list[tuple[int, int]]:
    """Each token's [start, end) in `text`: tokens appear in order, separated by whitespace or nothing.
    Without tokens, every non-whitespace character is one token (character-per-line data)."""
    if tokens is None:
        return [(index, index + 1) for index, char in enumerate(text) if not char.isspace()]
    ranges = []
    position = 0
    for index, token in enumerate(tokens):
        if not text.startswith(token, position):
            while position < len(text) and text[position].isspace():
                position += 1
        if not token or not text.startswith(token, position):
            raise ValueError(f"token {index} {token!r} is not at character {position} of the text")
        ranges.append((position, position + len(token)))
        position += len(token)
    if text[position:].strip():
        raise ValueError(f"the text goes on after the last token: {text[position:]!r}")
    return ranges


def spans_to_tags(
    text: str, spans: Iterable[Mapping], tokens: Sequence[str] | None = None, scheme: str = "BIO"
) -> BioTagging:
    """Tags for `tokens` of `text` (default: one token per non-whitespace character) holding `spans`.

    `scheme` is "BIO" or "BIOES". A span whose ends are not token boundaries, or that shares a token
    with a span kept before it (spans are taken by start, the longer first, so an outer span wins over
    the spans nested in it), is left out of the tags and returned in `unrepresentable` with its reason.
    """
    if scheme not in ("BIO", "BIOES"):
        raise ValueError(f"spans are written as BIO or BIOES, not {scheme!r}")
    ranges = _token_ranges(text, tokens)
    first_token = {start: index for index, (start, _) in enumerate(ranges)}
    last_token = {end: index for index, (_, end) in enumerate(ranges)}
    tags = [OUTSIDE] * len(ranges)
    reasons: dict[int, str] = {}
    spans = list(spans)
    kept_end, kept = -1, None
    order = sorted(range(len(spans)), key=lambda position: (spans[position]["start"], -spans[position]["end"]))
    for position in order:
        span = spans[position]
        first, last = first_token.get(span["start"]), last_token.get(span["end"])
        if first is None or last is None or first > last:
            reasons[position] = "not on token boundaries"
        elif first <= kept_end:
            reasons[position] = f"overlaps the {kept['label']} span [{kept['start']}, {kept['end']})"
        else:
            label = span["label"]
            inside = ["I"] * (last - first + 1)
            inside[0] = "B"
            if scheme == "BIOES":
                inside[-1] = "E" if first < last else "S"
            tags[first : last + 1] = [f"{role}-{label}" for role in inside]
            kept_end, kept = last, span
    unrepresentable = [{**spans[position], "reason": reasons[position]} for position in sorted(reasons)]
    return BioTagging(tags, unrepresentable)
