"""Pipeline 2, enriched explanation synthesis: LLM explanations of each training row, cut into clean
synthetic sentences, then annotated by two branches (paper section 3.1, Figure 2).

Rows with target entities get the entity explanation prompt (P_exp: the sample and its typed
entities), rows without get the extension description prompt (P_ext: key phrases first). Replies
are cleaned of markup and split into sentences; sentences already seen (in any source row or an
earlier reply) are dropped, the rest packed into rows of at most `max_chars` characters (a longer
sentence is clipped); replies that are empty or degenerate (an echo of the source, one repeated
token) are dropped. Every drop is counted. Target entities of the synthetic text come from a
frozen KnowFREE model's `predict`, extension entities from the pipeline-1 annotator with the fusion
data's merged labels; every row is marked `synthetic = true`.
"""

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from augment.annotation import extension_spans
from augment.llm_client import LLMClient
from augment.prompts import Messages, render

DEFAULT_MAX_CHARS = 128
DEFAULT_MIN_CHARS = 8
_MARKUP_LINE = re.compile(r"^\s*(?:#{1,6}\s*|[-*+•]\s+|\d+[.)、]\s*|>\s*)")
_INLINE_MARKUP = re.compile(r"(\*\*|__|`+|~~)")
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|(?<=\.)\s+|\n+")
_REPEATED_UNIT = re.compile(r"^(.{1,4}?)\1{4,}$", re.DOTALL)


@dataclass
class SynthesisCounts:
    """What happened to the replies and sentences, for the log and the dataset card."""

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
) -> tuple[list[tuple[int, str]], SynthesisCounts]:
    """(source row index, synthetic text) pairs from the replies, cleaned and de-duplicated in order."""
    counts = SynthesisCounts()
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
        fresh = []
        for sentence in split_sentences(cleaned):
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
