"""Real LLM replies kept as fixtures (scripts/record_llm_fixtures.py), served again by the fake server."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from fake_llm_server import Action, prompt_of, reply

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "llm_replies"


def recorded(name: str) -> list[dict]:
    """The fixture lines of one model: {"kind", "structured_form", "messages", "reply"}."""
    with gzip.open(FIXTURES / name, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def is_structured(line: dict) -> bool:
    """Whether a fixture line's reply was constrained by a schema (any form) rather than asked plainly."""
    return line["structured_form"] != "none"


class Replay:
    """A fake-server script answering each recorded prompt with its recorded reply (of one structured form)."""

    def __init__(self, lines: list[dict], structured: bool) -> None:
        chosen = [line for line in lines if is_structured(line) == structured]
        self.replies = {prompt_of("chat", {"messages": line["messages"]}): line["reply"] for line in chosen}
        self.unknown = 0

    def __call__(self, prompt: str) -> Action:
        if prompt in self.replies:
            return reply(self.replies[prompt])
        self.unknown += 1
        return reply("")
