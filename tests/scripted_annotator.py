"""A scripted 'LLM' that answers the augmentation prompts deterministically, for the fake server.

Entities come from a per-sentence table (default: none); segmentation splits every non-space
character into its own word; POS tags every given word 'n'; synonym grouping returns a fixed
reply; explanation prompts get a short Markdown continuation built from the sample. `failures[(kind, sentence)]` lists actions served, in order, before the normal answer.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping

from fake_llm_server import Action, reply

KIND_MARKERS = (
    ("explain", "面向学生做讲解"),
    ("pos", "已经切好词"),
    ("merge", "同义"),
    ("entities", "命名实体"),
    ("segmentation", "切分成词"),
)
_SENTENCE = re.compile(r"(?:句子|样例)：(.*)")
_WORDS = re.compile(r"词语：(.*)")


def prompt_kind(prompt: str) -> str:
    for kind, marker in KIND_MARKERS:
        if marker in prompt:
            return kind
    return "other"


def prompt_sentence(prompt: str) -> str | None:
    match = _SENTENCE.search(prompt)
    return match.group(1) if match else None


def character_words(sentence: str) -> list[str]:
    return [char for char in sentence if not char.isspace()]


class ScriptedAnnotator:
    def __init__(
        self,
        entity_replies: Mapping[str, str] | None = None,
        failures: Mapping[tuple[str, str], list[Action]] | None = None,
        merge_reply: str = "{}",
    ) -> None:
        self.entity_replies = dict(entity_replies or {})
        self.failures = {key: list(actions) for key, actions in (failures or {}).items()}
        self.merge_reply = merge_reply
        self._lock = threading.Lock()

    def __call__(self, prompt: str) -> Action:
        kind, sentence = prompt_kind(prompt), prompt_sentence(prompt)
        with self._lock:
            pending = self.failures.get((kind, sentence))
            if pending:
                return pending.pop(0)
        if kind == "entities":
            return reply(self.entity_replies.get(sentence, "[]"))
        if kind == "segmentation":
            return reply(json.dumps(character_words(sentence), ensure_ascii=False))
        if kind == "pos":
            words = json.loads(_WORDS.search(prompt).group(1))
            return reply(json.dumps([{"word": word, "pos": "n"} for word in words], ensure_ascii=False))
        if kind == "merge":
            return reply(self.merge_reply)
        if kind == "explain":
            return reply(explanation(sentence))
        return reply("")


def explanation(sentence: str) -> str:
    """A scripted 'expert' continuation: markup, a repeated sentence and the sample itself included."""
    return f"## 讲解\n**{sentence}** 这句话值得细读。\n- 其中的{sentence[:2]}是理解全句的关键。\n{sentence}\n其中的{sentence[:2]}是理解全句的关键。"
