"""The editable label map: every synonym-merge decision as a JSON file a person can correct.

The LLM's synonym groups and the embedding test (eqs. 2-8) get things wrong on small models (time
merged into place, one concept under three names). The fusion therefore writes each decision as an
entry (group, member, sample count, distance, threshold, name similarity, decision) to `label_map.json` beside the
dataset; a user edits `decision` ("merge" or "keep") or `group`, adds entries for types the LLM did
not group, and re-runs `knowfree-augment extend --label_map FILE`, which rebuilds the fusion from
the reply cache with no new request. Applying the map: a member whose decision is "merge" gets its
entry's group as label; every other type keeps its own name.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from knowfree.command_line import InputError

LABEL_MAP_FILE = "label_map.json"
DECISIONS = ("merge", "keep")
ABOUT = (
    "Synonym-merge decisions of knowfree-augment. Set an entry's decision to 'merge' (the member's label becomes "
    "its group) or 'keep' (the member stays a label of its own), rename groups, or add entries "
    "{\"group\": ..., \"member\": ..., \"decision\": \"merge\"}; then run knowfree-augment extend with "
    "--label_map this_file to rebuild the fusion from the cached replies."
)


class LabelMapError(InputError):
    """A label map file that cannot be applied; the message names the file, the entry and the field."""


def map_entries(types: Sequence[str], samples: Mapping[str, int], decisions: Sequence[Mapping]) -> list[dict]:
    """One entry per entity type: its merge decision, or 'keep' in a group of its own when no group named it."""
    entries = [
        {
            "group": decision["group"],
            "member": decision["type"],
            "samples": decision["samples"],
            "distance": round(decision["distance"], 4),
            "threshold": round(decision["threshold"], 4),
            "name_similarity": round(decision["name_similarity"], 4),
            "decision": "merge" if decision["merged"] else "keep",
        }
        for decision in decisions
    ]
    decided = {entry["member"] for entry in entries}
    entries += [
        {"group": kind, "member": kind, "samples": samples.get(kind, 0), "distance": None, "threshold": None, "name_similarity": None, "decision": "keep"}
        for kind in types
        if kind not in decided
    ]
    return entries


def write_label_map(folder: str | Path, entries: Sequence[Mapping]) -> Path:
    path = Path(folder) / LABEL_MAP_FILE
    path.write_text(json.dumps({"about": ABOUT, "entries": list(entries)}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def _text_field(path: Path, index: int, entry: Mapping, field: str) -> str:
    value = entry.get(field)
    if not isinstance(value, str) or not value.strip():
        raise LabelMapError(f"{path}: entries[{index}] field {field!r}: expected a non-empty string, got {value!r}")
    return value.strip()


def read_label_map(path: str | Path) -> dict[str, str]:
    """{member type: label} from a (possibly edited) label map file; checks every entry."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabelMapError(f"{path}: no such label map file") from None
    except json.JSONDecodeError as error:
        raise LabelMapError(f"{path} line {error.lineno} column {error.colno}: not valid JSON ({error.msg})") from None
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise LabelMapError(f"{path}: expected an object with an 'entries' list")
    mapping: dict[str, str] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise LabelMapError(f"{path}: entries[{index}]: expected an object, got {type(entry).__name__}")
        group, member = _text_field(path, index, entry, "group"), _text_field(path, index, entry, "member")
        decision = entry.get("decision")
        if decision not in DECISIONS:
            raise LabelMapError(f"{path}: entries[{index}] field 'decision': expected one of {DECISIONS}, got {decision!r}")
        label = group if decision == "merge" else member
        if mapping.get(member, label) != label:
            raise LabelMapError(f"{path}: entries[{index}] field 'member': {member!r} is mapped to {mapping[member]!r} by an earlier entry")
        mapping[member] = label
    return mapping
