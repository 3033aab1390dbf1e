"""`knowfree-predict`: label a file (or standard input) with a saved or Hub model, streaming and resumable.

Input is plain text (one text per line) or JSONL (one object per line with a text field, every other
field kept). Output is JSONL with one line per input line, in order: the input object (or
`{"line", "text"}` for plain text) plus `spans`, exactly what `model.predict` returns; a line that
cannot be read becomes `{"line", "error"}` and is reported on stderr, and the rest go on. Lines are
read, predicted and written a batch at a time, each written line flushed, so a run killed at any
point is resumed by the same command: the output's complete lines are kept (a torn last line is cut)
and that many input lines skipped, so every line is written exactly once.
"""

import argparse
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO

from tqdm.auto import tqdm

from knowfree.command_line import InputError, run_command_line

FORMATS = ("auto", "txt", "jsonl")


@dataclass(frozen=True)
class InputLine:
    """One input line: its 1-based number, the record to write back (or None), its text, or why it is unusable."""

    number: int
    record: dict | None
    text: str | None
    error: str | None = None


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="knowfree-predict", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", required=True, help="a saved model folder or a Hub repo id (loaded with trust_remote_code)")
    parser.add_argument("--revision", help="the Hub revision (commit hash) to load: pin the remote code you reviewed")
    parser.add_argument("--input", required=True, help="a .txt or .jsonl file, or - for standard input")
    parser.add_argument("--output", required=True, help="the JSONL file to write (resumed when it exists), or - for standard output (not resumable)")
    parser.add_argument("--input_format", choices=FORMATS, default="auto", help="auto: .jsonl files are JSONL, everything else plain text")
    parser.add_argument("--text_field", default="text", help="the JSONL field holding the text")
    parser.add_argument("--batch_size", type=int, default=32, help="texts per predict call")
    parser.add_argument("--threshold", type=float, help="one threshold for every label (default: the model's calibrated thresholds)")
    parser.add_argument("--decoding", choices=("flat", "nested"), help="default: the model's")
    parser.add_argument("--device", help="e.g. cpu, cuda, cuda:1 (default: the model's, CPU)")
    return parser.parse_args(argv)


def read_lines(handle: IO[str], input_format: str, text_field: str) -> Iterator[InputLine]:
    for number, raw in enumerate(handle, start=1):
        line = raw.rstrip("\r\n")
        if input_format == "txt":
            yield InputLine(number, None, line)
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            yield InputLine(number, None, None, f"invalid JSON ({error.msg} at column {error.colno})")
            continue
        text = record.get(text_field) if isinstance(record, dict) else None
        if not isinstance(text, str):
            yield InputLine(number, None, None, f"no string field {text_field!r}")
            continue
        yield InputLine(number, record, text)


def kept_output_lines(path: Path) -> int:
    """Complete lines already in the output; a torn last line (killed mid-write) is cut off."""
    if not path.is_file():
        return 0
    raw = path.read_bytes()
    complete = raw.rfind(b"\n") + 1
    if complete < len(raw):
        with path.open("r+b") as handle:
            handle.truncate(complete)
    return raw[:complete].count(b"\n")


def output_record(line: InputLine, spans: list[dict] | None) -> dict:
    if line.error is not None:
        return {"line": line.number, "error": line.error}
    base = line.record if line.record is not None else {"line": line.number, "text": line.text}
    return {**base, "spans": spans}


def load_model(name: str, revision: str | None, device: str | None):
    from transformers import AutoModel

    if Path(name).exists() and not (Path(name) / "config.json").is_file():
        raise InputError(f"model folder {name} has no config.json")
    model = AutoModel.from_pretrained(name, trust_remote_code=True, revision=revision)
    if device:
        model = model.to(device)
    return model.eval()


def predict_stream(model, lines: Iterator[InputLine], output: IO[str], batch_size: int, options: dict, progress: tqdm, durable: bool) -> int:
    """Predict and write `lines` a batch at a time (synced to disk when `durable`); returns how many lines were unusable."""
    unusable = 0
    while batch := list(islice(lines, batch_size)):
        usable = [line for line in batch if line.error is None]
        predictions = iter(model.predict([line.text for line in usable], batch_size=batch_size, **options) if usable else [])
        for line in batch:
            if line.error is not None:
                unusable += 1
                print(f"knowfree-predict: line {line.number}: {line.error}", file=sys.stderr)
            output.write(json.dumps(output_record(line, None if line.error else next(predictions)), ensure_ascii=False) + "\n")
        output.flush()
        if durable:
            os.fsync(output.fileno())
        progress.update(len(batch))
    return unusable


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.batch_size < 1:
        raise InputError(f"--batch_size must be at least 1, got {args.batch_size}")
    input_format = args.input_format if args.input_format != "auto" else ("jsonl" if args.input.endswith(".jsonl") else "txt")
    if args.input != "-" and not Path(args.input).is_file():
        raise InputError(f"input file {args.input} not found")
    model = load_model(args.model, args.revision, args.device)
    options = {key: value for key, value in (("threshold", args.threshold), ("decoding", args.decoding)) if value is not None}
    to_stdout = args.output == "-"
    done = 0 if to_stdout else kept_output_lines(Path(args.output))
    total = None if args.input == "-" else sum(1 for _ in open(args.input, encoding="utf-8"))
    source = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
    sink = sys.stdout if to_stdout else open(args.output, "a", encoding="utf-8")
    try:
        lines = read_lines(source, input_format, args.text_field)
        for _ in islice(lines, done):
            pass
        with tqdm(total=total, initial=done, desc="predict", unit="line", file=sys.stderr) as progress:
            unusable = predict_stream(model, lines, sink, args.batch_size, options, progress, durable=not to_stdout)
    finally:
        if source is not sys.stdin:
            source.close()
        if sink is not sys.stdout:
            sink.close()
    if done:
        print(f"knowfree-predict: resumed after {done} lines already in {args.output}", file=sys.stderr)
    if unusable:
        print(f"knowfree-predict: {unusable} unusable line(s), written as error records", file=sys.stderr)
    return 0


def console_main() -> None:
    run_command_line(main)


if __name__ == "__main__":
    console_main()
