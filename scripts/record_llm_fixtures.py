"""Keep real LLM replies as test fixtures: the requests and replies of reply caches, by prompt kind.

Run the augmentation against a real server first (`bash ../shared/llm/serve.sh 0.5b`, then
`knowfree-augment extend ... --cache C.jsonl`, once with `--structured off` and once with `auto`), then

    python scripts/record_llm_fixtures.py --cache C-off.jsonl --cache C-auto.jsonl \\
        --output tests/fixtures/llm_replies/qwen2.5-coder-0.5b.jsonl.gz --per_kind 40

Each fixture line is {"kind", "structured_form", "messages", "reply"}: the suite replays them through
the fake server (tests/recorded_replies.py), so parsing and alignment are tested on what real models
write. The structured-output probe records are left out; the form is on every line instead.
"""

import argparse
import gzip
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augment.prompts import prompt_kind  # noqa: E402


def fixture_lines(cache_paths: list[Path], per_kind: int) -> list[dict]:
    """Up to `per_kind` replies per (prompt kind, structured form), in cache order."""
    kept: list[dict] = []
    taken: Counter = Counter()
    for path in cache_paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            request = entry["request"]
            if "messages" not in request:
                continue  # the structured-output probe
            kind = prompt_kind(request["messages"])
            form = request.get("structured", {}).get("form", "none")
            if kind is None or taken[kind, form] >= per_kind:
                continue
            taken[kind, form] += 1
            kept.append({"kind": kind, "structured_form": form, "messages": request["messages"], "reply": entry["reply"]})
    return kept


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", action="append", required=True, type=Path, help="a reply cache JSONL written by knowfree-augment (repeatable)")
    parser.add_argument("--output", required=True, type=Path, help="the fixture file (.jsonl.gz)")
    parser.add_argument("--per_kind", type=int, default=40, help="replies kept per prompt kind and structured form")
    args = parser.parse_args(argv)
    lines = fixture_lines(args.cache, args.per_kind)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(args.output, "wb", mtime=0) as handle:  # mtime 0: the same replies give the same bytes
        handle.write("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8"))
    print(json.dumps(Counter(f"{line['kind']} / {line['structured_form']}" for line in lines), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
