"""Keep real LLM replies as test fixtures: the requests and replies of reply caches, by prompt kind.

Run the augmentation against a real server first (`bash ../shared/llm/serve.sh 0.5b`, then
`knowfree-augment extend ... --cache C.jsonl`, once with `--structured off` and once with `auto`), then

    python scripts/record_llm_fixtures.py --cache C-off.jsonl --cache C-auto.jsonl \\
        --output tests/fixtures/llm_replies/qwen2.5-coder-0.5b.jsonl.gz --per_kind 40

Each fixture line is {"kind", "structured_form", "messages", "reply"}: the suite replays them through
the fake server (tests/recorded_replies.py), so parsing and alignment are tested on what real models
write. The structured-output probe records are left out; the form is on every line instead.

Explanation replies (synthesis) are cleaned against the row they explain, so they are kept only with
`--rows` (the workflow's fusion train.jsonl): each such line also carries "row" ({"text", "entities"}),
the row whose explanation request is exactly the cached one. `--kinds` keeps chosen prompt kinds only:

    python scripts/record_llm_fixtures.py --cache work.llm-cache.jsonl --rows work/fusion/train.jsonl \
        --kinds explain_entities explain_key_phrases --output tests/fixtures/llm_replies/M-explanations.jsonl.gz
"""

import argparse
import gzip
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augment.prompts import KINDS, LANGUAGES, prompt_kind  # noqa: E402
from augment.synthesis import explanation_request  # noqa: E402


def explained_rows(rows: list[dict]) -> dict[str, dict]:
    """The rows by their explanation request (as JSON, in either prompt language), each reduced to what the cleaning reads."""
    table = {}
    for row in rows:
        row = {"text": row["text"], "entities": row["entities"]}
        for language in LANGUAGES:
            table[json.dumps(explanation_request(row, language), ensure_ascii=False)] = row
    return table


def fixture_lines(cache_paths: list[Path], per_kind: int, rows: list[dict] | None = None, kinds: tuple[str, ...] = KINDS) -> list[dict]:
    """Up to `per_kind` replies per (prompt kind, structured form) of `kinds`, in cache order.

    Explanation replies need `rows`: a reply whose request matches no row is left out."""
    by_request = explained_rows(rows or [])
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
            if kind not in kinds or taken[kind, form] >= per_kind:
                continue
            line = {"kind": kind, "structured_form": form, "messages": request["messages"], "reply": entry["reply"]}
            if kind.startswith("explain"):
                row = by_request.get(json.dumps(request["messages"], ensure_ascii=False))
                if row is None:
                    continue
                line["row"] = row
            taken[kind, form] += 1
            kept.append(line)
    return kept


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", action="append", required=True, type=Path, help="a reply cache JSONL written by knowfree-augment (repeatable)")
    parser.add_argument("--output", required=True, type=Path, help="the fixture file (.jsonl.gz)")
    parser.add_argument("--per_kind", type=int, default=40, help="replies kept per prompt kind and structured form")
    parser.add_argument("--rows", type=Path, help="JSONL of the rows the explanation requests were made for (the workflow's fusion train.jsonl)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="prompt kinds to keep")
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in args.rows.read_text(encoding="utf-8").splitlines() if line.strip()] if args.rows else None
    lines = fixture_lines(args.cache, args.per_kind, rows, tuple(args.kinds))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(args.output, "wb", mtime=0) as handle:  # mtime 0: the same replies give the same bytes
        handle.write("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8"))
    print(json.dumps(Counter(f"{line['kind']} / {line['structured_form']}" for line in lines), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
