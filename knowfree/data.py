"""One loader for every corpus source, with row-level validation and a fixed schema.

Sources: a folder of JSONL splits (`<split>.jsonl` + `labels.txt`), a folder of CoNLL-style tagged
splits (`<split>.txt`, `.conll`, `.bio` or `.bmes`: a token and its tag per line), a folder written by
`DatasetDict.save_to_disk` (+ `labels.txt` beside `dataset_dict.json`), a Hub dataset repo id
(`datasets.load_dataset(repo_id)`, + a `labels.txt` file in the repo) or an in-memory `DatasetDict`.
Stored splits hold either span rows or `tokens` + `ner_tags` (ClassLabel ids or tag strings); tagged
sentences become span rows through `knowfree.bio_formats`. Every row is checked and normalised the
same way whatever the source, so a bad span or tag fails loudly at load time, with the file and line
(or split, row and token) that holds it, instead of deep inside training.
"""

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from datasets import (
    ClassLabel,
    Dataset,
    DatasetDict,
    Features,
    List,
    Value,
    concatenate_datasets,
    load_dataset,
    load_from_disk,
)
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import RemoteEntryNotFoundError

from knowfree.bio_formats import SCHEMES, TagError, detect_scheme, tag_label, tags_to_spans
from knowfree.command_line import InputError
from knowfree.sampling import DEFAULT_SEED, sample_n_way_k_shot, take_k

LABELS_FILE = "labels.txt"
SAVED_DATASET_MARKER = "dataset_dict.json"
CONLL_SUFFIXES = (".txt", ".conll", ".bio", ".bmes")
SPLIT_ALIASES = {"dev": ("dev", "validation")}
TAG_COLUMNS = ("tokens", "ner_tags")
DOCUMENT_START = "-DOCSTART-"
IN_MEMORY = "in-memory DatasetDict"

SPAN = {"start": Value("int32"), "end": Value("int32"), "label": Value("string")}
FEATURES = Features(
    {"text": Value("string"), "entities": List(SPAN), "extensions": List(SPAN), "synthetic": Value("bool")}
)
FIELDS = tuple(FEATURES)
SPAN_FIELDS = ("start", "end", "label")

_REPO_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")
_JSON_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "list", dict: "object"}


class DataError(InputError):
    """A corpus file or row that cannot be loaded; the message names where (file/line or split/row)."""


@dataclass(frozen=True)
class LabeledCorpus:
    """Validated splits plus the target label set (order of labels.txt) and the extension labels.

    `extension_labels` are the distinct labels of the `extensions` spans (added by augmentation),
    sorted; they are free-form, but none may be named like one of `labels`.
    """

    splits: DatasetDict
    labels: tuple[str, ...]
    extension_labels: tuple[str, ...]


@dataclass(frozen=True)
class _LabelSet:
    names: tuple[str, ...]
    origin: str


@dataclass(frozen=True)
class _TaggedSentence:
    """One tagged sentence; `file` and `lines` (1-based, one per token) when it comes from a CoNLL file."""

    location: str
    tokens: list
    tags: list
    file: str | None = None
    lines: tuple[int, ...] = ()

    def where(self, index: int) -> str:
        token = self.tokens[index]
        if self.file is None:
            return f"{self.location}: token {index} {token!r}"
        return f"{self.file} line {self.lines[index]}: token {token!r}"


@dataclass(frozen=True)
class _TaggedSplit:
    sentences: list[_TaggedSentence]
    class_label_names: list[str] | None = None

    def inventory(self) -> Iterable[str]:
        """The tags the split may use: its ClassLabel names, else the tags it holds."""
        if self.class_label_names is not None:
            return self.class_label_names
        return (tag for sentence in self.sentences for tag in sentence.tags)


def _json_type(value: object) -> str:
    return "null" if value is None else _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _check_span(location: str, field: str, position: int, span: object, text: str, labels: _LabelSet | None) -> dict:
    where = f"{location}: {field}[{position}]"
    if not isinstance(span, dict):
        raise DataError(f"{where}: must be an object, got {_json_type(span)}")
    for name in SPAN_FIELDS:
        if name not in span:
            raise DataError(f"{where}: missing field '{name}'")
    unexpected = sorted(set(span) - set(SPAN_FIELDS))
    if unexpected:
        raise DataError(f"{where}: unexpected field '{unexpected[0]}' (allowed: {', '.join(SPAN_FIELDS)})")
    start, end, label = span["start"], span["end"], span["label"]
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise DataError(f"{where}: field '{name}' must be an integer, got {_json_type(value)}")
    if not isinstance(label, str):
        raise DataError(f"{where}: field 'label' must be a string, got {_json_type(label)}")
    if start < 0:
        raise DataError(f"{where}: start {start} < 0")
    if end > len(text):
        raise DataError(f"{where}: end {end} > len(text) {len(text)}")
    if start >= end:
        raise DataError(f"{where}: start {start} >= end {end}")
    if labels is not None and label not in labels.names:
        raise DataError(f"{where}: label {label!r} not in {labels.origin}")
    return {"start": start, "end": end, "label": label}


def _check_spans(location: str, field: str, spans: object, text: str, labels: _LabelSet | None) -> list[dict]:
    if not isinstance(spans, list):
        raise DataError(f"{location}: field '{field}' must be a list, got {_json_type(spans)}")
    return [_check_span(location, field, position, span, text, labels) for position, span in enumerate(spans)]


def _check_row(location: str, row: object, labels: _LabelSet) -> dict:
    """Validate one raw row and return it with all four fields; optional fields may be absent or null."""
    if not isinstance(row, dict):
        raise DataError(f"{location}: expected a JSON object, got {_json_type(row)}")
    unexpected = sorted(set(row) - set(FIELDS))
    if unexpected:
        raise DataError(f"{location}: unexpected field '{unexpected[0]}' (allowed: {', '.join(FIELDS)})")
    for name in ("text", "entities"):
        if name not in row:
            raise DataError(f"{location}: missing field '{name}'")
    text = row["text"]
    if not isinstance(text, str):
        raise DataError(f"{location}: field 'text' must be a string, got {_json_type(text)}")
    synthetic = row.get("synthetic")
    if synthetic is not None and not isinstance(synthetic, bool):
        raise DataError(f"{location}: field 'synthetic' must be a boolean, got {_json_type(synthetic)}")
    extensions = row.get("extensions")
    return {
        "text": text,
        "entities": _check_spans(location, "entities", row["entities"], text, labels),
        "extensions": [] if extensions is None else _check_spans(location, "extensions", extensions, text, None),
        "synthetic": bool(synthetic),
    }


def _file_name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based number, line without its end) per line of a UTF-8 file."""
    name = _file_name(path)
    if not path.is_file():
        raise DataError(f"{name}: file not found ({path})")
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # a byte-order mark may open the file
            except UnicodeDecodeError as error:
                raise DataError(f"{name} line {number}: not UTF-8 ({error.reason} at byte {error.start})") from None
            yield number, line.rstrip("\r\n")


def _jsonl_rows(path: Path) -> Iterator[tuple[str, object]]:
    """(location, parsed object) per line; the location reads `<folder>/<file> line <n>`."""
    name = _file_name(path)
    for number, line in _text_lines(path):
        location = f"{name} line {number}"
        if not line.strip():
            raise DataError(f"{location}: empty line")
        try:
            yield location, json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{location}: invalid JSON ({error.msg} at column {error.colno})") from None


def _conll_fields(line: str) -> list[str]:
    """Tab-separated fields when the line has a tab, else space-separated ones. Only ASCII spaces and
    tabs separate, so a full-width space (U+3000) can be a token."""
    separator = "\t" if "\t" in line else " "
    return [field.strip(" ") for field in line.split(separator) if field.strip(" ")]


def _conll_sentence(name: str, entries: list[tuple[int, str, str]]) -> _TaggedSentence:
    lines, tokens, tags = zip(*entries)
    return _TaggedSentence(f"{name} line {lines[0]}", list(tokens), list(tags), name, lines)


def _conll_sentences(path: Path) -> list[_TaggedSentence]:
    """A token and its tag (the last field; fields between are ignored) per line, a blank line or a
    `-DOCSTART-` line between sentences."""
    name = _file_name(path)
    sentences: list[_TaggedSentence] = []
    entries: list[tuple[int, str, str]] = []
    for number, line in _text_lines(path):
        fields = _conll_fields(line)
        if fields and fields[0] != DOCUMENT_START:
            if len(fields) < 2:
                expected = "expected the token, a space or tab, the tag"
                raise DataError(f"{name} line {number}: token {fields[0]!r} has no tag ({expected})")
            entries.append((number, fields[0], fields[-1]))
        elif entries:
            sentences.append(_conll_sentence(name, entries))
            entries = []
    if entries:
        sentences.append(_conll_sentence(name, entries))
    return sentences


def _conll_paths(folder: Path, splits: Sequence[str]) -> dict[str, Path] | None:
    """Each split's CoNLL file; None for a JSONL folder (any `<split>.jsonl`, or no CoNLL split file)."""
    if any((folder / f"{split}.jsonl").is_file() for split in splits):
        return None
    candidates = {
        split: [folder / f"{name}{suffix}" for name in SPLIT_ALIASES.get(split, (split,)) for suffix in CONLL_SUFFIXES]
        for split in splits
    }
    found = {split: [path for path in paths if path.is_file()] for split, paths in candidates.items()}
    if not any(found.values()):
        return None
    for split, paths in found.items():
        if not paths:
            listed = ", ".join(path.name for path in candidates[split])
            raise DataError(f"{folder.name}: no file for split '{split}' (looked for {listed})")
        if len(paths) > 1:
            raise DataError(f"{folder.name}: {paths[0].name} and {paths[1].name} both hold split '{split}'; keep one")
    return {split: paths[0] for split, paths in found.items()}


def _dataset_rows(dataset: Dataset, origin: str, split: str) -> Iterator[tuple[str, object]]:
    for index, row in enumerate(dataset):
        yield f"{origin} split '{split}' row {index}", row


def _is_tagged(dataset: Dataset) -> bool:
    return set(TAG_COLUMNS) <= set(dataset.column_names) and "entities" not in dataset.column_names


def _named_tags(sentence: _TaggedSentence, names: list[str]) -> _TaggedSentence:
    for index, tag in enumerate(sentence.tags):
        if not isinstance(tag, int) or not 0 <= tag < len(names):
            raise DataError(f"{sentence.where(index)}: ner_tags id {tag} is not a ClassLabel id (0 to {len(names) - 1})")
    return replace(sentence, tags=[names[tag] for tag in sentence.tags])


def _dataset_split(dataset: Dataset, origin: str, split: str) -> _TaggedSplit:
    """The `tokens` + `ner_tags` rows of a stored split (other columns are ignored), tags as strings."""
    feature = dataset.features["ner_tags"]
    inner = getattr(feature, "feature", None)
    names = list(inner.names) if isinstance(inner, ClassLabel) else None
    if names is None and not (isinstance(inner, Value) and inner.dtype in ("string", "large_string")):
        raise DataError(f"{origin} split '{split}': ner_tags must hold ClassLabel ids or tag strings, got {feature}")
    sentences = []
    for index, row in enumerate(dataset.select_columns(list(TAG_COLUMNS))):
        location = f"{origin} split '{split}' row {index}"
        for field in TAG_COLUMNS:
            if not isinstance(row[field], list):
                raise DataError(f"{location}: field '{field}' must be a list, got {_json_type(row[field])}")
        if len(row["tokens"]) != len(row["ner_tags"]):
            raise DataError(f"{location}: {len(row['tokens'])} tokens but {len(row['ner_tags'])} ner_tags")
        sentence = _TaggedSentence(location, row["tokens"], row["ner_tags"])
        sentences.append(sentence if names is None else _named_tags(sentence, names))
    return _TaggedSplit(sentences, names)


def _tagged_row(sentence: _TaggedSentence, scheme: str, labels: _LabelSet) -> dict:
    try:
        row = tags_to_spans(sentence.tokens, sentence.tags, scheme)
    except TagError as error:
        raise DataError(f"{sentence.where(error.index)}: {error}") from None
    for index, tag in enumerate(sentence.tags):
        label = tag_label(tag)
        if label is not None and label not in labels.names:
            raise DataError(f"{sentence.where(index)}: tag {tag!r}: label {label!r} not in {labels.origin}")
    return row


def _tagged_rows(split: _TaggedSplit, scheme: str | None, labels: _LabelSet) -> Iterator[tuple[str, dict]]:
    """Span rows of a tagged split, read with `scheme`, or with the scheme its tags show when None."""
    scheme = scheme or detect_scheme(split.inventory())
    for sentence in split.sentences:
        yield sentence.location, _tagged_row(sentence, scheme, labels)


def _tagged_labels(tagged: dict[str, _TaggedSplit], origin: str) -> _LabelSet:
    """Without labels.txt: the labels of the ClassLabel names in their order, else those of the tags, sorted."""
    names = [name for split in tagged.values() for name in split.class_label_names or ()]
    described = "the ClassLabel names of 'ner_tags'" if names else "the tags"
    if names:
        found = [label for label in dict.fromkeys(map(tag_label, names)) if label is not None]
    else:
        found = sorted({tag_label(tag) for split in tagged.values() for tag in split.inventory()} - {None})
    if not found:
        raise DataError(f"{origin}: no label in {described}; add {LABELS_FILE} or pass labels=[...]")
    return _LabelSet(tuple(found), described)


def _build_split(rows: Iterable[tuple[str, object]], labels: _LabelSet, where: str) -> Dataset:
    checked = [_check_row(location, row, labels) for location, row in rows]
    if not checked:
        raise DataError(f"{where}: no rows (an empty file or split); every split needs at least one")
    return Dataset.from_list(checked, features=FEATURES)


def _parse_labels(lines: Sequence[str], origin: str) -> _LabelSet:
    names: list[str] = []
    for number, line in enumerate(lines, start=1):
        name = line.strip()
        if not name:
            raise DataError(f"{origin} line {number}: empty label")
        if name in names:
            raise DataError(f"{origin} line {number}: duplicate label {name!r}")
        names.append(name)
    if not names:
        raise DataError(f"{origin}: no labels")
    return _LabelSet(tuple(names), origin)


def _read_labels_file(path: Path) -> _LabelSet:
    """labels.txt, one label per line; a byte-order mark (Windows editors write one) is not part of the first label."""
    return _parse_labels(path.read_text(encoding="utf-8-sig").splitlines(), LABELS_FILE)


def _given_labels(labels: Sequence[str]) -> _LabelSet:
    if not labels or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be at least one and distinct, got {list(labels)}")
    if any(not isinstance(name, str) or not name or name != name.strip() for name in labels):
        raise ValueError(f"labels must be non-empty strings without surrounding spaces, got {list(labels)}")
    return _LabelSet(tuple(labels), "the labels argument")


def _folder_labels(folder: Path) -> _LabelSet | None:
    path = folder / LABELS_FILE
    return _read_labels_file(path) if path.is_file() else None


def _hub_labels(repo_id: str) -> _LabelSet | None:
    """The repo's labels.txt; None when the repo has none (a tagged dataset's tags can stand in)."""
    try:
        path = hf_hub_download(repo_id, LABELS_FILE, repo_type="dataset")
    except RemoteEntryNotFoundError:
        return None
    except Exception as error:
        raise DataError(f"{repo_id}: cannot get {LABELS_FILE} from the Hub repo ({error}); pass labels=[...]") from error
    return _read_labels_file(Path(path))


def _stored_splits(stored: DatasetDict, origin: str, splits: Sequence[str]) -> dict[str, tuple[str, Dataset]]:
    """(stored name, split) per requested split; "dev" may be stored as "validation", the Hub's usual name."""
    found = {}
    for split in splits:
        name = next((name for name in SPLIT_ALIASES.get(split, (split,)) if name in stored), None)
        if name is None:
            raise DataError(f"{origin}: split '{split}' not found (has: {', '.join(stored)})")
        found[split] = (name, stored[name])
    return found


@dataclass(frozen=True)
class _OpenedSource:
    raw_splits: dict[str, Iterator[tuple[str, object]]]
    labels: _LabelSet
    folder: Path | None


def _open_stored(
    stored: DatasetDict,
    origin: str,
    splits: Sequence[str],
    declared: _LabelSet | None,
    missing: str,
    tag_scheme: str | None,
    folder: Path | None = None,
) -> _OpenedSource:
    """Span splits as they are, tagged splits converted; span splits need declared labels (else `missing`)."""
    found = _stored_splits(stored, origin, splits)
    tagged = {
        split: _dataset_split(dataset, origin, name) for split, (name, dataset) in found.items() if _is_tagged(dataset)
    }
    if declared is None and len(tagged) < len(found):
        raise DataError(missing)
    label_set = declared or _tagged_labels(tagged, origin)
    raw_splits = {
        split: _tagged_rows(tagged[split], tag_scheme, label_set) if split in tagged else _dataset_rows(dataset, origin, name)
        for split, (name, dataset) in found.items()
    }
    return _OpenedSource(raw_splits, label_set, folder)


def _open_conll(folder: Path, paths: dict[str, Path], declared: _LabelSet | None, tag_scheme: str | None) -> _OpenedSource:
    tagged = {split: _TaggedSplit(_conll_sentences(path)) for split, path in paths.items()}
    label_set = declared or _tagged_labels(tagged, folder.name)
    raw_splits = {split: _tagged_rows(part, tag_scheme, label_set) for split, part in tagged.items()}
    return _OpenedSource(raw_splits, label_set, folder)


def _open_source(
    source: str | Path | DatasetDict, splits: Sequence[str], labels: Sequence[str] | None, tag_scheme: str | None
) -> _OpenedSource:
    """Raw rows per split (read lazily), the label set, and the local folder (None otherwise)."""
    given = _given_labels(labels) if labels is not None else None
    if isinstance(source, DatasetDict):
        return _open_stored(source, IN_MEMORY, splits, given, f"{IN_MEMORY}: pass labels=[...]", tag_scheme)
    folder = Path(source)
    if isinstance(source, Path) or folder.exists():
        if not folder.is_dir():
            raise DataError(f"{source}: no such folder")
        declared = given or _folder_labels(folder)
        missing = f"{folder.name}/{LABELS_FILE}: not found; add it or pass labels=[...]"
        if (folder / SAVED_DATASET_MARKER).is_file():
            return _open_stored(load_from_disk(str(folder)), folder.name, splits, declared, missing, tag_scheme, folder)
        conll_paths = _conll_paths(folder, splits)
        if conll_paths is not None:
            return _open_conll(folder, conll_paths, declared, tag_scheme)
        if declared is None:
            raise DataError(missing)
        return _OpenedSource({split: _jsonl_rows(folder / f"{split}.jsonl") for split in splits}, declared, folder)
    if not _REPO_ID.match(source):
        raise DataError(f"{source}: no such folder, and not a Hub repo id")
    declared = given or _hub_labels(source)
    missing = f"{source}: the Hub repo has no {LABELS_FILE}; add it or pass labels=[...]"
    return _open_stored(load_dataset(source), source, splits, declared, missing, tag_scheme)


def _prepared_subset(folder: Path | None, k: int | None, seed: int) -> Path | None:
    """A local folder's `train_{k}.jsonl`, which by construction holds `take_k(train, k, 42)`."""
    if folder is None or k is None or seed != DEFAULT_SEED:
        return None
    path = folder / f"train_{k}.jsonl"
    return path if path.is_file() else None


def load_corpus(
    source: str | Path | DatasetDict,
    splits: Sequence[str] = ("train", "dev", "test"),
    train_file: str | Path | None = None,
    labels: Sequence[str] | None = None,
    k: int | None = None,
    seed: int = DEFAULT_SEED,
    train_splits: Sequence[str] = ("train",),
    k_shot: int | None = None,
    tag_scheme: str | None = None,
) -> LabeledCorpus:
    """Load, validate and normalise `splits` of a corpus from any supported source.

    `source` is a local folder (JSONL splits, CoNLL-style tagged splits or `save_to_disk` output; a
    `Path` is always local), a Hub dataset repo id, or a `DatasetDict`. Stored splits with `tokens` and
    `ner_tags` columns, and CoNLL files, are tagged sentences: `knowfree.bio_formats` turns them into
    span rows, reading their tags as `tag_scheme` ("BIO", "BIOES" or "IOB1"; by default BIOES when a
    tag has an E-/S-/M-/L-/U- prefix, else BIO); "dev" may be named "validation". Labels come from
    `labels` if given, else from `labels.txt` beside the splits (in the folder, or in the Hub repo);
    tagged sources without one take the labels of their ClassLabel names (in that order), else of
    their tags (sorted). `train_file` replaces the train split by a JSONL file; a
    relative path resolves against a local source folder (the working directory for a Hub source).
    `k` keeps a low-resource train subset: the folder's `train_{k}.jsonl` when it exists and `seed` is
    42 (the shared files' construction), else `take_k(train, k, seed)`. `train_splits` names the
    stored splits concatenated, in order, into the train split (an augmented dataset's
    `("fusion", "synthetic")`). `k_shot` then keeps a greedy N-way K-shot sample of the train split
    (every target label at least `k_shot` mentions, paper Fig. 4). Rows are never dropped: an
    invalid row raises `DataError` naming its file and 1-based line, or its split and 0-based row
    (and, for a tagged sentence, the token).
    """
    if tag_scheme is not None and tag_scheme not in SCHEMES:
        raise ValueError(f"tag_scheme must be one of {', '.join(SCHEMES)}, got {tag_scheme!r}")
    if (train_file is not None or k is not None) and "train" not in splits:
        raise ValueError("train_file and k apply to the train split, which is not among the requested splits")
    if train_file is not None and k is not None:
        raise ValueError("pass either train_file or k, not both")
    train_splits = tuple(train_splits)
    custom_train = train_splits != ("train",)
    if custom_train and (train_file is not None or k is not None or "train" not in splits):
        raise ValueError("train_splits replaces the train split; it cannot be combined with train_file or k")
    if not train_splits or len(set(train_splits)) != len(train_splits):
        raise ValueError(f"train_splits must name distinct splits, got {list(train_splits)}")
    stored_names = [split for split in splits if split != "train" or not custom_train]
    stored_names += [split for split in train_splits if custom_train and split not in stored_names]
    opened = _open_source(source, stored_names, labels, tag_scheme)
    raw_splits = dict(opened.raw_splits)
    prepared_subset = _prepared_subset(opened.folder, k, seed)
    if train_file is not None:
        raw_splits["train"] = _jsonl_rows((opened.folder or Path()) / train_file)
    elif prepared_subset is not None:
        raw_splits["train"] = _jsonl_rows(prepared_subset)

    origin = IN_MEMORY if isinstance(source, DatasetDict) else source
    built = {split: _build_split(rows, opened.labels, f"{origin} split '{split}'") for split, rows in raw_splits.items()}
    if custom_train:
        built["train"] = concatenate_datasets([built[split] for split in train_splits])
        built = {split: built[split] for split in splits}
    if k is not None and prepared_subset is None:
        built["train"] = take_k(built["train"], k, seed)
    if k_shot is not None:
        built["train"] = built["train"].select(sample_n_way_k_shot(built["train"], opened.labels.names, k_shot, seed=seed))
    extension_labels = tuple(sorted({span["label"] for dataset in built.values() for row in dataset["extensions"] for span in row}))
    check_label_names_apart(opened.labels.names, extension_labels, str(origin))
    return LabeledCorpus(DatasetDict(built), opened.labels.names, extension_labels)


def check_label_names_apart(target_labels: Sequence[str], extension_labels: Sequence[str], origin: str) -> None:
    """Refuse extension labels named like target labels: the model would train one name as two outputs
    and predict could not tell them apart (the config refuses the same for models built by hand)."""
    colliding = sorted(set(extension_labels) & set(target_labels))
    if colliding:
        raise DataError(f"{origin}: extension labels {colliding} have the names of target labels; rename them in the augmented data")


def report_unusable(dataset: Dataset, max_chars: int | None) -> dict:
    """Rows a model cannot use as they are: longer than `max_chars`, or with empty text.

    Returns counts and row indices for the caller to log; nothing is dropped. `max_chars=None` skips
    the length check.
    """
    lengths = [len(text) for text in dataset["text"]]
    too_long = [index for index, length in enumerate(lengths) if max_chars is not None and length > max_chars]
    empty = [index for index, length in enumerate(lengths) if length == 0]
    return {
        "rows": len(lengths),
        "max_chars": max_chars,
        "too_long": {"count": len(too_long), "indices": too_long},
        "empty_text": {"count": len(empty), "indices": empty},
    }
