"""Lenient reading of the JSON an LLM writes: inside prose or code fences, with Python-style quoting.

LLMs wrap their answer in explanations or ``` fences, quote with single quotes, leave trailing
commas, or leave keys unquoted (the paper's own prompt shows `[{entity: "", type: ""}]`). We look
for the first bracketed value that any of a few tolerant readings accepts, and give up (None)
rather than guess when none does.
"""

import ast
import json
import re

_FENCE = re.compile(r"```(?:json|JSON|python)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([\]}])")
_BARE_KEY = re.compile(r"([{,]\s*)([A-Za-z_][A-Za-z0-9_]*)(\s*:)")
_OPENERS = {"[": "]", "{": "}"}


def _balanced_end(text: str, start: int) -> int | None:
    """Index just past the bracket closing the one at `start`, skipping quoted strings."""
    stack = [_OPENERS[text[start]]]
    quote = None
    position = start + 1
    while position < len(text):
        char = text[position]
        if quote:
            if char == "\\":
                position += 1
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in _OPENERS:
            stack.append(_OPENERS[char])
        elif char in "]}":
            if char != stack.pop():
                return None
            if not stack:
                return position + 1
        position += 1
    return None


def _readings(candidate: str):
    yield lambda: json.loads(candidate)
    relaxed = _BARE_KEY.sub(r'\1"\2"\3', _TRAILING_COMMA.sub(r"\1", candidate))
    yield lambda: json.loads(relaxed)
    python_like = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", relaxed)))
    yield lambda: ast.literal_eval(python_like)


def _first_value(text: str) -> list | dict | None:
    for start, char in enumerate(text):
        if char not in _OPENERS:
            continue
        end = _balanced_end(text, start)
        if end is None:
            continue
        for reading in _readings(text[start:end]):
            try:
                value = reading()
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(value, list | dict):
                return value
    return None


def parse_json_reply(reply: str | None) -> list | dict | None:
    """The first JSON array or object in `reply` (fenced blocks first), or None when there is none."""
    if not reply:
        return None
    for block in _FENCE.findall(reply):
        value = _first_value(block)
        if value is not None:
            return value
    return _first_value(reply)
