"""One loader for every corpus source, with row-level validation and a fixed schema.

Sources: a folder of JSONL splits (`<split>.jsonl` + `labels.txt`), a folder written by
`DatasetDict.save_to_disk` (+ `labels.txt` beside `dataset_dict.json`), or a Hub dataset repo id
(`datasets.load_dataset(repo_id)`, + a `labels.txt` file in the repo). Every row is checked and
normalised the same way whatever the source, so a bad span fails loudly at load time, with the
file and line (or split and row) that holds it, instead of deep inside training.
"""

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, DatasetDict, Features, List, Value, concatenate_datasets, load_dataset, load_from_disk
from huggingface_hub import hf_hub_download

from knowfree.command_line import InputError
from knowfree.sampling import DEFAULT_SEED, sample_n_way_k_shot, take_k

LABELS_FILE = "labels.txt"
SAVED_DATASET_MARKER = "dataset_dict.json"

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
    sorted; they are free-form and not checked against `labels`.
    """

    splits: DatasetDict
    labels: tuple[str, ...]
    extension_labels: tuple[str, ...]


@dataclass(frozen=True)
class _LabelSet:
    names: tuple[str, ...]
    origin: str


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


def _jsonl_rows(path: Path) -> Iterator[tuple[str, object]]:
    """(location, parsed object) per line; the location reads `<folder>/<file> line <n>`."""
    name = f"{path.parent.name}/{path.name}"
    if not path.is_file():
        raise DataError(f"{name}: file not found ({path})")
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            location = f"{name} line {number}"
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # a byte-order mark may open the file
            except UnicodeDecodeError as error:
                raise DataError(f"{location}: not UTF-8 ({error.reason} at byte {error.start})") from None
            if not line.strip():
                raise DataError(f"{location}: empty line")
            try:
                yield location, json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as error:
                raise DataError(f"{location}: invalid JSON ({error.msg} at column {error.colno})") from None


def _dataset_rows(dataset: Dataset, origin: str, split: str) -> Iterator[tuple[str, object]]:
    for index, row in enumerate(dataset):
        yield f"{origin} split '{split}' row {index}", row


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


def _folder_labels(folder: Path) -> _LabelSet:
    path = folder / LABELS_FILE
    if not path.is_file():
        raise DataError(f"{folder.name}/{LABELS_FILE}: not found; add it or pass labels=[...]")
    return _read_labels_file(path)


def _hub_labels(repo_id: str) -> _LabelSet:
    try:
        path = hf_hub_download(repo_id, LABELS_FILE, repo_type="dataset")
    except Exception as error:
        raise DataError(f"{repo_id}: cannot get {LABELS_FILE} from the Hub repo ({error}); pass labels=[...]") from error
    return _read_labels_file(Path(path))


def _stored_splits(stored: DatasetDict, origin: str, splits: Sequence[str]) -> dict[str, Iterator]:
    missing = [split for split in splits if split not in stored]
    if missing:
        raise DataError(f"{origin}: split '{missing[0]}' not found (has: {', '.join(stored)})")
    return {split: _dataset_rows(stored[split], origin, split) for split in splits}


@dataclass(frozen=True)
class _OpenedSource:
    raw_splits: dict[str, Iterator[tuple[str, object]]]
    labels: _LabelSet
    folder: Path | None


def _open_source(source: str | Path, splits: Sequence[str], labels: Sequence[str] | None) -> _OpenedSource:
    """Raw rows per split (read lazily), the label set, and the local folder (None for the Hub)."""
    given = _given_labels(labels) if labels is not None else None
    folder = Path(source)
    if isinstance(source, Path) or folder.exists():
        if not folder.is_dir():
            raise DataError(f"{source}: no such folder")
        label_set = given or _folder_labels(folder)
        if (folder / SAVED_DATASET_MARKER).is_file():
            return _OpenedSource(_stored_splits(load_from_disk(str(folder)), folder.name, splits), label_set, folder)
        return _OpenedSource({split: _jsonl_rows(folder / f"{split}.jsonl") for split in splits}, label_set, folder)
    if not _REPO_ID.match(source):
        raise DataError(f"{source}: no such folder, and not a Hub repo id")
    label_set = given or _hub_labels(source)
    return _OpenedSource(_stored_splits(load_dataset(source), source, splits), label_set, None)


def _prepared_subset(folder: Path | None, k: int | None, seed: int) -> Path | None:
    """A local folder's `train_{k}.jsonl`, which by construction holds `take_k(train, k, 42)`."""
    if folder is None or k is None or seed != DEFAULT_SEED:
        return None
    path = folder / f"train_{k}.jsonl"
    return path if path.is_file() else None


def load_corpus(
    source: str | Path,
    splits: Sequence[str] = ("train", "dev", "test"),
    train_file: str | Path | None = None,
    labels: Sequence[str] | None = None,
    k: int | None = None,
    seed: int = DEFAULT_SEED,
    train_splits: Sequence[str] = ("train",),
    k_shot: int | None = None,
) -> LabeledCorpus:
    """Load, validate and normalise `splits` of a corpus from any supported source.

    `source` is a local folder (JSONL splits or `save_to_disk` output; a `Path` is always local) or a
    Hub dataset repo id. Labels come from `labels` if given, else from `labels.txt` beside the splits
    (in the folder, or in the Hub repo). `train_file` replaces the train split by a JSONL file; a
    relative path resolves against a local source folder (the working directory for a Hub source).
    `k` keeps a low-resource train subset: the folder's `train_{k}.jsonl` when it exists and `seed` is
    42 (the shared files' construction), else `take_k(train, k, seed)`. `train_splits` names the
    stored splits concatenated, in order, into the train split (an augmented dataset's
    `("fusion", "synthetic")`). `k_shot` then keeps a greedy N-way K-shot sample of the train split
    (every target label at least `k_shot` mentions, paper Fig. 4). Rows are never dropped: an
    invalid row raises `DataError` naming its file and 1-based line, or its split and 0-based row.
    """
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
    opened = _open_source(source, stored_names, labels)
    raw_splits = dict(opened.raw_splits)
    prepared_subset = _prepared_subset(opened.folder, k, seed)
    if train_file is not None:
        raw_splits["train"] = _jsonl_rows((opened.folder or Path()) / train_file)
    elif prepared_subset is not None:
        raw_splits["train"] = _jsonl_rows(prepared_subset)

    built = {split: _build_split(rows, opened.labels, f"{source} split '{split}'") for split, rows in raw_splits.items()}
    if custom_train:
        built["train"] = concatenate_datasets([built[split] for split in train_splits])
        built = {split: built[split] for split in splits}
    if k is not None and prepared_subset is None:
        built["train"] = take_k(built["train"], k, seed)
    if k_shot is not None:
        built["train"] = built["train"].select(sample_n_way_k_shot(built["train"], opened.labels.names, k_shot, seed=seed))
    extension_labels = {span["label"] for dataset in built.values() for row in dataset["extensions"] for span in row}
    return LabeledCorpus(DatasetDict(built), opened.labels.names, tuple(sorted(extension_labels)))


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
