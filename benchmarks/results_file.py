"""RESULTS.md and results.json are shared by the speed and accuracy benchmarks: each owns one marked
block of the Markdown and one top-level key of the JSON, and rewrites only those, atomically."""

import json
import os
from pathlib import Path


def replace_marked_block(document: str, block: str, start_marker: str, end_marker: str) -> str:
    """`document` with the block between the markers replaced by `block`, or `block` appended when absent."""
    start, end = document.find(start_marker), document.find(end_marker)
    if start >= 0 and end > start:
        return document[:start] + block + document[end + len(end_marker) :]
    if start >= 0 or end >= 0:
        raise ValueError(f"unmatched {start_marker} / {end_marker} marker")
    if not document:
        return block + "\n"
    return document.rstrip("\n") + "\n\n" + block + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Write through a temporary file and a rename, so a reader (or the other benchmark) never sees half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def update_results(markdown_path: Path, json_path: Path, key: str, value: object, block: str, start_marker: str, end_marker: str) -> None:
    """Set one benchmark's block of RESULTS.md and its key of results.json, leaving the rest as it is."""
    document = markdown_path.read_text(encoding="utf-8") if markdown_path.exists() else "# Results\n"
    write_atomically(markdown_path, replace_marked_block(document, block, start_marker, end_marker))
    results = json.loads(json_path.read_text(encoding="utf-8")) if json_path.exists() else {}
    results[key] = value
    write_atomically(json_path, json.dumps(results, indent=2, ensure_ascii=False) + "\n")
