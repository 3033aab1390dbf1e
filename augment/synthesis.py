"""Pipeline 2, enriched explanation synthesis: LLM explanations of each training row, cut into clean
synthetic sentences, then annotated by two branches (paper section 3.1, Figure 2).

Rows with target entities get the entity explanation prompt (P_exp: the sample and its typed
entities), rows without get the extension description prompt (P_ext: key phrases first). Replies
that are empty or degenerate (an echo of the source, one repeated token) are dropped; the others
are cleaned of markup, Unicode normalised and split into sentences.

Small models write back much of what they were given, and a synthetic row built from that would
teach the target model the prompt's wording, the sample a second time, or our own label names. So
each sentence is cleaned before it can reach the labelling model:

- a section header at its start (`续写：`, `【讲解】`, `Explanation:`, or a line that is only a
  header word, as a Markdown heading leaves it) is cut off and the rest kept (`HEADER_WORDS`);
- an echo of the entity list (`["女性(PER.NOM)", "北京(GPE.NAM)"]`) is dropped;
- label tags after a mention (`北京(GPE.NAM)`, `女性（PER.NOM）`) are removed and the mention kept;
- an echo of the sample (its text or one of its sentences) or of the rendered prompt (the system
  line, the instructions) is dropped; `echoes` states the rule, which tolerates small edits but
  keeps a sentence that merely shares a word or two with the prompt;
- a sentence that still names a target label (`PER.NOM`) is dropped;
- sentences already seen (in any source row or an earlier reply) and repetitive ones are dropped.

The rest are packed into rows of at most `max_chars` characters (a longer sentence is clipped).
Every removal is counted by kind in `SynthesisCounts`. Target entities of the synthetic text come
from a frozen KnowFREE model's `predict`, extension entities from the pipeline-1 annotator with the
fusion data's merged labels; every row is marked `synthetic = true`.
"""

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from augment.annotation import extension_spans
from augment.llm_client import LLMClient
from augment.prompts import LANGUAGES, Messages, render

DEFAULT_MAX_CHARS = 128
DEFAULT_MIN_CHARS = 8
CLEANING_VERSION = 2  # part of the workflow's synthesis step key: changed cleaning re-cuts cached replies
ECHO_MIN_CHARS = 6
ECHO_RUN_CHARS = 10
ECHO_SHARE = 2 / 3
HEADER_WORDS = (
    "续写", "讲解", "说明", "解释", "解析", "释义", "分析", "总结", "回答", "答案", "正文", "样例", "示例", "例句", "原文",
    "原句", "实体", "关键短语", "关键词", "注释", "备注", "注", "输出",
    "continuation", "explanations", "explanation", "answer", "output", "sample", "entities", "key phrases", "notes",
    "note", "summary", "analysis",
)  # fmt: skip
_MARKUP_LINE = re.compile(r"^\s*(?:#{1,6}\s*|[-*+•]\s+|\d+[.)、]\s*|>\s*)")
_INLINE_MARKUP = re.compile(r"(\*\*|__|`+|~~)")
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|(?<=\.)\s+|\n+")
_REPEATED_UNIT = re.compile(r"^(.{1,4}?)\1{4,}$", re.DOTALL)
_HEADER_WORD = "|".join(re.escape(word) for word in sorted(HEADER_WORDS, key=len, reverse=True))
_HEADER_NAME = rf"(?:以下是|下面是)?(?:{_HEADER_WORD})(?:\s*(?:和|与|及|、|/|&|and)\s*(?:{_HEADER_WORD}))*(?:部分|内容|如下)?"
_HEADER = re.compile(rf"^(?:[一二三四五六七八九十]+、)?\s*(?:[【\[(]\s*{_HEADER_NAME}\s*[】\])]\s*:?|{_HEADER_NAME}\s*(?::|$))\s*", re.IGNORECASE)


@dataclass
class SynthesisCounts:
    """What happened to the replies and sentences, for the log and the dataset card.

    Replies: `reply_failed`, `reply_empty`, `reply_echo`, `reply_repetitive`, `reply_used`.
    Sentences: `header_removed` and `label_tag_removed` (one per header or tag cut, the sentence
    kept), `sentence_entity_list_echo`, `sentence_sample_echo`, `sentence_prompt_echo`,
    `sentence_label_name`, `sentence_duplicate`, `sentence_repetitive`, `sentence_clipped`.
    Rows: `chunk_too_short`, `synthetic_rows`.
    """

    counts: Counter = field(default_factory=Counter)

    def add(self, event: str, amount: int = 1) -> None:
        self.counts[event] += amount


def explanation_request(row: Mapping, language: str) -> Messages:
    """P_exp for a row with target entities (given as 'text(label)'), else P_ext."""
    if row["entities"]:
        entities = [f"{row['text'][span['start']:span['end']]}({span['label']})" for span in row["entities"]]
        return render("explain_entities", language, text=row["text"], entities=entities)
    return render("explain_key_phrases", language, text=row["text"])


def clean_text(reply: str) -> str:
    """Markdown and list markup removed, Unicode normalised (NFKC keeps CJK and folds full-width ASCII)."""
    lines = [_INLINE_MARKUP.sub("", _MARKUP_LINE.sub("", line)) for line in reply.replace("\r", "").split("\n")]
    text = "\n".join(line.strip() for line in lines if line.strip() and not line.strip().startswith("```"))
    return unicodedata.normalize("NFKC", text)


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def is_degenerate(reply: str, source: str) -> str | None:
    """Why a cleaned reply is unusable ('empty', 'echo', 'repetitive'), or None when it is fine."""
    squeezed = _squeeze(reply)
    if not squeezed:
        return "empty"
    if squeezed == _squeeze(unicodedata.normalize("NFKC", source)):
        return "echo"
    if _REPEATED_UNIT.match(squeezed) or (len(squeezed) >= 20 and len(set(squeezed)) <= 2):
        return "repetitive"
    return None


def split_sentences(text: str) -> list[str]:
    return [sentence.strip() for sentence in _SENTENCE_END.split(text) if sentence and sentence.strip()]


def echo_key(text: str) -> str:
    """What an echo is compared on: NFKC, case-folded, letters and digits only (spacing and
    punctuation are what a model changes when it copies)."""
    return "".join(char for char in unicodedata.normalize("NFKC", text).casefold() if unicodedata.category(char)[0] in "LN")


@dataclass(frozen=True)
class EchoReference:
    """A text a reply may copy (the sample, the rendered prompt), keyed once for every sentence."""

    key: str
    sentence_keys: frozenset[str]

    @classmethod
    def of(cls, text: str) -> "EchoReference":
        sentence_keys = (echo_key(sentence) for sentence in split_sentences(unicodedata.normalize("NFKC", text)))
        return cls(echo_key(text), frozenset(key for key in sentence_keys if key))


def echoes(sentence: str, reference: EchoReference) -> bool:
    """Whether `sentence` copies `reference`, compared on `echo_key`.

    It does when its key equals the key of one of the reference's sentences (however short), or,
    for a key of n >= ECHO_MIN_CHARS characters, when it shares with the reference's key a run of
    min(n, max(ECHO_RUN_CHARS, ⌈ECHO_SHARE × n⌉)) consecutive characters. So a key of up to 10
    characters echoes only when it lies wholly inside the reference, a longer one also when a copy
    is edited a little or wrapped in a few words of its own, while a sentence that reuses a phrase
    of the prompt (在这段话里指的是, 8 characters) in an explanation of its own is kept.
    """
    key = echo_key(sentence)
    if key in reference.sentence_keys:
        return True
    if len(key) < ECHO_MIN_CHARS:
        return False
    run = min(len(key), max(ECHO_RUN_CHARS, math.ceil(ECHO_SHARE * len(key))))
    return any(key[start : start + run] in reference.key for start in range(len(key) - run + 1))


def strip_headers(sentence: str) -> tuple[str, int]:
    """The sentence without the section headers at its start, and how many were cut.

    A header is a `HEADER_WORDS` entry (or several joined by 和/与/及/、/and, optionally after
    以下是/下面是, optionally followed by 部分/内容/如下) either followed by a colon, or in brackets
    (【讲解】, [Explanation], colon optional), or standing alone as the whole sentence.
    """
    removed = 0
    while match := _HEADER.match(sentence):
        sentence = sentence[match.end() :]
        removed += 1
    return sentence.strip(), removed


@dataclass(frozen=True)
class LabelMarks:
    """Patterns for our label names in a reply: as a tag after a mention, and anywhere at all.

    A tag is a bracket pair, round, square or 【】 (full-width round and square ones arrive folded
    to half-width by `clean_text`), holding one or more label names separated by , / 、 |,
    optionally after 类型/标签/实体类型/type/label and a colon; the whitespace before it goes with it. A Latin label name only counts where it is not part of
    a longer Latin word or number, and case matters (PER is a label, 'per' is a word).

    Labels written as TYPE.SUFFIX (Weibo's PER.NAM) also mark any type in that scheme: real replies
    invent them (Qwen2.5-Coder-0.5B wrote 没有接父亲回家(NEED.NOM) and 组织.NAM).
    """

    tag: re.Pattern
    name: re.Pattern

    @classmethod
    def of(cls, labels: Iterable[str]) -> "LabelMarks":
        names = sorted({unicodedata.normalize("NFKC", label) for label in labels if label}, key=len, reverse=True)
        suffixes = sorted({name.rsplit(".", 1)[1] for name in names if re.fullmatch(r"[^.]+\.[A-Z]+", name)})
        alternatives = "|".join([re.escape(name) for name in names] + [rf"(?:[A-Za-z]{{2,12}}|[\u4e00-\u9fff]{{1,8}})\.{suffix}" for suffix in suffixes]) or r"(?!)"
        name = rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])"
        tag = rf"\s*[(\[【]\s*(?:(?:实体类型|类型|标签|(?i:type|label))\s*[:=]?\s*)?{name}(?:\s*[,/、|]\s*{name})*\s*[)\]】]"
        return cls(re.compile(tag), re.compile(name))


@dataclass(frozen=True)
class RowReferences:
    """What a reply to one row may echo: its sample, its rendered prompts, its entity mentions."""

    sample: EchoReference
    prompt: EchoReference
    mentions: tuple[str, ...]

    @classmethod
    def of(cls, row: Mapping) -> "RowReferences":
        """The prompts in every language are referenced: a model may echo either wording, and both are cheap to key."""
        prompt = "\n".join(message["content"] for language in LANGUAGES for message in explanation_request(row, language))
        mentions = {unicodedata.normalize("NFKC", row["text"][span["start"] : span["end"]]) for span in row["entities"]}
        return cls(EchoReference.of(row["text"]), EchoReference.of(prompt), tuple(sorted(mentions, key=len, reverse=True)))


def is_entity_list_echo(sentence: str, references: RowReferences, marks: LabelMarks) -> bool:
    """A sentence with label tags that holds nothing else but the row's entity mentions and punctuation."""
    untagged, tags = marks.tag.subn("", sentence)
    for mention in references.mentions:
        untagged = untagged.replace(mention, "")
    return tags > 0 and not echo_key(untagged)


def clean_sentence(sentence: str, references: RowReferences, marks: LabelMarks, counts: SynthesisCounts) -> str | None:
    """The sentence without headers and label tags, or None when nothing of it should be learned from.

    Order matters: headers go first so that `续写：<sample>` is seen as the sample, the entity list is
    recognised while its tags are still there, and tags go before the echo tests so that a tagged
    copy of the sample is still a copy.
    """
    sentence, headers = strip_headers(sentence)
    if headers:
        counts.add("header_removed", headers)
    if not sentence:
        return None
    if is_entity_list_echo(sentence, references, marks):
        counts.add("sentence_entity_list_echo")
        return None
    sentence, tags = marks.tag.subn("", sentence)
    sentence = sentence.strip()
    if tags:
        counts.add("label_tag_removed", tags)
    for problem, reference in (("sentence_sample_echo", references.sample), ("sentence_prompt_echo", references.prompt)):
        if echoes(sentence, reference):
            counts.add(problem)
            return None
    if marks.name.search(sentence):
        counts.add("sentence_label_name")
        return None
    return sentence


def pack_sentences(sentences: Sequence[str], max_chars: int, counts: SynthesisCounts) -> list[str]:
    """Consecutive sentences joined into chunks of at most `max_chars`; a longer sentence is clipped."""
    chunks, current = [], ""
    for sentence in sentences:
        if len(sentence) > max_chars:
            counts.add("sentence_clipped")
            sentence = sentence[:max_chars]
        if current and len(current) + len(sentence) > max_chars:
            chunks.append(current)
            current = ""
        needs_space = current and current[-1].isascii() and sentence[0].isascii()
        current += (" " if needs_space else "") + sentence
    if current:
        chunks.append(current)
    return chunks


def synthetic_texts(
    rows: Sequence[Mapping],
    replies: Sequence[str | None],
    max_chars: int = DEFAULT_MAX_CHARS,
    min_chars: int = DEFAULT_MIN_CHARS,
    *,
    labels: Sequence[str] = (),
) -> tuple[list[tuple[int, str]], SynthesisCounts]:
    """(source row index, synthetic text) pairs from the replies, cleaned and de-duplicated in order.

    `labels` are the corpus' target labels. The labels of the rows' entities (the ones the prompts
    show) are always removed; passing the whole set also catches a label the model names on its own.
    """
    counts = SynthesisCounts()
    marks = LabelMarks.of([*labels, *(span["label"] for row in rows for span in row["entities"])])
    seen = {_squeeze(unicodedata.normalize("NFKC", row["text"])) for row in rows}
    texts: list[tuple[int, str]] = []
    for index, (row, reply) in enumerate(zip(rows, replies, strict=True)):
        if reply is None:
            counts.add("reply_failed")
            continue
        cleaned = clean_text(reply)
        problem = is_degenerate(cleaned, row["text"])
        if problem:
            counts.add(f"reply_{problem}")
            continue
        counts.add("reply_used")
        references = RowReferences.of(row)
        fresh = []
        for sentence in split_sentences(cleaned):
            sentence = clean_sentence(sentence, references, marks, counts)
            if sentence is None:
                continue
            key = _squeeze(sentence)
            if key in seen:
                counts.add("sentence_duplicate")
            elif is_degenerate(sentence, "") == "repetitive":
                counts.add("sentence_repetitive")
            else:
                seen.add(key)
                fresh.append(sentence)
        for chunk in pack_sentences(fresh, max_chars, counts):
            if len(_squeeze(chunk)) < min_chars:
                counts.add("chunk_too_short")
            else:
                texts.append((index, chunk))
    counts.add("synthetic_rows", len(texts))
    return texts, counts


def request_explanations(client: LLMClient, rows: Sequence[Mapping], language: str) -> list[str | None]:
    return client.complete_all([explanation_request(row, language) for row in rows], "explanations")


def annotate_synthetic(
    texts: Sequence[str],
    target_model,
    extension_annotator,
    type_to_label: Mapping[str, str],
    batch_size: int = 16,
) -> list[dict]:
    """Synthetic rows: target spans from the frozen model, extension spans from the pipeline-1 annotator."""
    predictions = target_model.predict(list(texts), batch_size=batch_size) if texts else []
    annotations = extension_annotator.annotate_texts(list(texts))
    rows = []
    for text, spans, annotation in zip(texts, predictions, annotations, strict=True):
        entities = sorted(({"start": span["start"], "end": span["end"], "label": span["label"]} for span in spans), key=lambda span: (span["start"], span["end"], span["label"]))
        rows.append({"text": text, "entities": entities, "extensions": extension_spans(annotation, type_to_label), "synthetic": True})
    return rows
