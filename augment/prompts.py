"""Every prompt the augmentation sends to an LLM, in one place, versioned.

The wording is ours, written after the intent of the paper's appendix H: entity extraction with
free-form types (P_ent), word segmentation (P_seg), POS tags over a given segmentation so no word
is left untagged (P_pos), synonym grouping of entity types (P_merge), and the two explanation
prompts of the synthesis pipeline (P_exp for rows with target entities, P_ext for rows without).
Chinese data gets Chinese prompts, anything else English. Bump PROMPTS_VERSION whenever a
template changes: it is recorded with every output and is part of every cache key (through the
rendered text), so changed prompts are never answered from stale replies.
"""

import json
from collections.abc import Sequence

from augment.pos_tags import describe_tags

PROMPTS_VERSION = "knowfree-prompts-3"
LANGUAGES = ("zh", "en")
KINDS = ("entities", "segmentation", "pos", "merge", "explain_entities", "explain_key_phrases")

Messages = list[dict[str, str]]

_SYSTEM = {
    "zh": "你是一名严谨的中文语言学标注员。只按要求的格式作答。",
    "en": "You are a careful linguistic annotator. Answer only in the requested format.",
}
_EXPERT_SYSTEM = {
    "zh": "你是一位知识渊博、善于讲解的领域专家。",
    "en": "You are a knowledgeable domain expert who explains things clearly.",
}

_TEMPLATES = {
    "entities": {
        "zh": (
            "找出下面句子中所有有意义的命名实体或专有名词，并为每一个给出你认为最贴切的类型名称。\n"
            "要求：\n"
            "1. 只回答一个 JSON 数组，每个元素形如 {{\"entity\": \"原文片段\", \"type\": \"类型\"}}；\n"
            "2. entity 必须与句子中的字符完全一致，不要改写；\n"
            "3. 同一片段在句中出现多次且只指其中一处时，加上 \"occurrence\": 第几次出现（从 1 开始）；\n"
            "4. 没有实体时回答 []。\n"
            "句子：{text}"
        ),
        "en": (
            "List every meaningful named entity or proper noun in the sentence below and give each the type "
            "name you find most fitting.\n"
            "Rules:\n"
            "1. Reply with one JSON array only; each item looks like {{\"entity\": \"exact text\", \"type\": \"type\"}}.\n"
            "2. \"entity\" must be copied character for character from the sentence.\n"
            "3. If the same text occurs several times and you mean only one of them, add \"occurrence\": n "
            "(1 for the first appearance).\n"
            "4. If there is no entity, reply [].\n"
            "Sentence: {text}"
        ),
    },
    "segmentation": {
        "zh": (
            "把下面的句子切分成词。\n"
            "要求：只回答一个 JSON 字符串数组，按原顺序列出每个词；所有词依次拼接后必须与原句（去掉空格）完全相同，"
            "标点符号也要单独成词。\n"
            "句子：{text}"
        ),
        "en": (
            "Split the sentence below into words.\n"
            "Rules: reply with one JSON array of strings, the words in their original order; joined together "
            "(ignoring spaces) they must give back the sentence exactly, punctuation included as separate words.\n"
            "Sentence: {text}"
        ),
    },
    "pos": {
        "zh": (
            "下面的句子已经切好词。请为每一个词标注词性。\n"
            "要求：\n"
            "1. 只回答一个 JSON 数组，每个元素形如 {{\"word\": \"词\", \"pos\": \"标记\"}}；\n"
            "2. 按给出的顺序逐一标注，不得遗漏、合并或拆分任何词，word 照抄给出的词，标点也要标注；\n"
            "3. pos 只能填下表冒号前的标记（冒号后是它的含义），不要写词性的中文名称，也不要自创标记：\n"
            + describe_tags("zh")
            + "\n句子：{text}\n"
            "词语：{words}"
        ),
        "en": (
            "The sentence below is already split into words. Give the part of speech of each word.\n"
            "Rules:\n"
            "1. Reply with one JSON array only; each item looks like {{\"word\": \"word\", \"pos\": \"tag\"}}.\n"
            "2. Keep the given order and tag every word, punctuation included; copy each word as given and do not "
            "merge, split or skip any.\n"
            "3. \"pos\" must be one of the tags before the colons below (after each colon is what the tag means); "
            "write no other tag and no tag name of your own:\n"
            + describe_tags("en")
            + "\nSentence: {text}\n"
            "Words: {words}"
        ),
    },
    "merge": {
        "zh": (
            "下面是一批实体类型名称。有些名称写法不同，指的却是同一类实体（例如“人名”和“人物”）。请找出这样的同义类型，"
            "把每组同义类型归在一个标准名称下。\n"
            "要求：只回答一个 JSON 对象，键为标准名称，值为该组的原类型名称数组（至少两个）；不与其他类型同义的类型不要列出；"
            "含义不同的类型（例如“时间”和“地点”）不能放在同一组。\n"
            "类型：{types}"
        ),
        "en": (
            "Below is a list of entity type names. Some are worded differently yet name the same kind of entity "
            "(for example 'person' and 'person name'). Find such synonymous types and put each set of them under one "
            "standard name.\n"
            "Rules: reply with one JSON object whose keys are the standard names and whose values are arrays of the "
            "original type names in that set (at least two); leave out types that have no synonym in the list; types "
            "that mean different things (for example 'time' and 'place') never share a set.\n"
            "Types: {types}"
        ),
    },
    "explain_entities": {
        "zh": (
            "请你面向学生做讲解。先接着下面的样例往下写几句，使内容自然连贯；然后逐个说明样例中每个实体在这段话里指的是什么、"
            "起什么作用。\n"
            "样例：{text}\n"
            "实体：{entities}\n"
            "直接输出续写和讲解的正文，不要使用标题、列表符号或 Markdown。"
        ),
        "en": (
            "You are teaching students. First continue the sample below for a few sentences so that it reads "
            "naturally; then explain, one by one, what each entity of the sample refers to in this passage and "
            "what role it plays.\n"
            "Sample: {text}\n"
            "Entities: {entities}\n"
            "Write the continuation and the explanations as plain prose, without headings, bullets or Markdown."
        ),
    },
    "explain_key_phrases": {
        "zh": (
            "请你面向学生做讲解。先从下面的样例中找出关键短语（例如实体或重要的词组），再围绕这些关键短语接着样例往下写几句，"
            "并说明每个关键短语在样例中的含义。\n"
            "样例：{text}\n"
            "直接输出正文，不要使用标题、列表符号或 Markdown。"
        ),
        "en": (
            "You are teaching students. First pick out the key phrases of the sample below (entities or important "
            "expressions), then continue the sample for a few sentences around them and explain what each key "
            "phrase means in the sample.\n"
            "Sample: {text}\n"
            "Write plain prose, without headings, bullets or Markdown."
        ),
    },
}

_SYSTEM_OF_KIND = {kind: (_EXPERT_SYSTEM if kind.startswith("explain") else _SYSTEM) for kind in KINDS}


def detect_language(texts: Sequence[str]) -> str:
    """'zh' when CJK ideographs make up at least a fifth of the letters, else 'en'."""
    letters = [char for text in texts for char in text if char.isalpha()]
    cjk = sum(1 for char in letters if "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf")
    return "zh" if letters and cjk * 5 >= len(letters) else "en"


def _json_list(items: Sequence) -> str:
    return json.dumps(list(items), ensure_ascii=False)


def render(kind: str, language: str, **fields) -> Messages:
    """The chat messages of one request; list-valued fields are written as JSON arrays."""
    if kind not in _TEMPLATES:
        raise ValueError(f"unknown prompt kind {kind!r} (known: {', '.join(KINDS)})")
    if language not in LANGUAGES:
        raise ValueError(f"unsupported prompt language {language!r} (supported: {', '.join(LANGUAGES)})")
    values = {name: _json_list(value) if isinstance(value, (list, tuple)) else value for name, value in fields.items()}
    return [
        {"role": "system", "content": _SYSTEM_OF_KIND[kind][language]},
        {"role": "user", "content": _TEMPLATES[kind][language].format(**values)},
    ]


def prompt_kind(messages: Messages) -> str | None:
    """Which prompt (KINDS) rendered these messages, from the fixed text before the template's first field; None if none did."""
    user = next((message["content"] for message in messages if message["role"] == "user"), "")
    for kind, languages in _TEMPLATES.items():
        if any(user.startswith(template.split("{", 1)[0]) for template in languages.values()):
            return kind
    return None


def as_plain_prompt(messages: Messages) -> str:
    """One prompt string for endpoints that only offer raw text generation (TGI /generate)."""
    return "\n\n".join(message["content"] for message in messages) + "\n\n"


def prompt_texts() -> dict:
    """The templates themselves, for the dataset card and the recorded workflow configuration."""
    return {"version": PROMPTS_VERSION, "system": {"annotator": _SYSTEM, "expert": _EXPERT_SYSTEM}, "templates": _TEMPLATES}
