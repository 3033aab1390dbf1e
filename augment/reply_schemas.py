"""The JSON schema each extraction prompt's reply must follow, for servers that constrain decoding.

They say in machine form what the prompts in `augment.prompts` ask for in words: the entity list,
the word list, one tag per word from the fixed inventory of `augment.pos_tags` (an enum, so a
constrained model cannot invent a fourth tag set), and the synonym groups. The explanation prompts
ask for prose and have none. Roots are arrays where the prompt asks for one; OpenAI's strict mode
(object roots only) is therefore not requested, which vLLM, llama.cpp and TGI do not need.
"""

from augment.pos_tags import TAG_SETS
from augment.prompts import KINDS

_STRING = {"type": "string", "minLength": 1}

_ENTITIES = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"entity": _STRING, "type": _STRING, "occurrence": {"type": "integer", "minimum": 1}},
        "required": ["entity", "type"],
        "additionalProperties": False,
    },
}
_SEGMENTATION = {"type": "array", "items": _STRING, "minItems": 1}
_MERGE = {"type": "object", "additionalProperties": {"type": "array", "items": _STRING, "minItems": 1}}


def _pos(language: str) -> dict:
    return {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "properties": {"word": _STRING, "pos": {"type": "string", "enum": list(TAG_SETS[language])}},
            "required": ["word", "pos"],
            "additionalProperties": False,
        },
    }


def reply_schema(kind: str, language: str) -> dict | None:
    """The schema of a `kind` reply in `language`, or None for the prose (explanation) prompts."""
    if kind not in KINDS:
        raise ValueError(f"unknown prompt kind {kind!r} (known: {', '.join(KINDS)})")
    if kind == "entities":
        return _ENTITIES
    if kind == "segmentation":
        return _SEGMENTATION
    if kind == "pos":
        return _pos(language)
    if kind == "merge":
        return _MERGE
    return None
