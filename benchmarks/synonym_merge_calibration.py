"""How well the synonym-merge test tells synonymous LLM type names from different ones (issue 19).

The LLM's synonym groups are checked by embedding geometry (paper eqs. 2-8) and, since the e5-small
encoder proved a weak judge, by the similarity of the type names themselves. This takes the entity
types that real LLMs wrote in the committed reply caches and decides every pair of types of one run
as a two-type group, then counts, for each setting, how many pairs of synonyms merge (hand-labelled
in `synonym_classes.json`) and how many pairs of other types merge. Pairs the classes file marks
undecided (时间 / 日期) are left out.

    python benchmarks/synonym_merge_calibration.py [REPLY_CACHE ...] [--embedding_model FOLDER]

Without arguments it reads every `benchmarks/llm_replies/*.jsonl.gz`; plain `.jsonl` caches work too.
"""

import argparse
import gzip
import itertools
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from augment.annotation import RowAnnotation  # noqa: E402
from augment.fusion import entity_type_pairs  # noqa: E402
from augment.label_merging import Embedder, merge_synonym_types, sentence_transformer_embedder  # noqa: E402
from augment.llm_annotator import read_entities  # noqa: E402
from augment.prompts import render  # noqa: E402
from augment.cli import DEFAULT_EMBEDDING_MODEL  # noqa: E402

CLASSES_FILE = Path(__file__).resolve().parent / "synonym_classes.json"
EPSILONS = (1.0, 1.5, 2.0)
NAME_SIMILARITIES = (-1.0, 0.90, 0.93, 0.95)
_MARK = "\u0000"
GROUP = "\u0000group"  # a standard name no type has, so that two types share a label only when both merged


def cache_rows(path: Path) -> Iterable[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def cached_entity_pairs(rows: Iterable[dict], language: str = "zh") -> list[tuple[str, str]]:
    """(mention, type) of every cached entity reply, read and paired as the workflow does."""
    template = render("entities", language, text=_MARK)
    prefix, suffix = template[-1]["content"].split(_MARK)
    texts, annotations = [], []
    for row in rows:
        messages = row.get("request", {}).get("messages")
        content = messages[-1]["content"] if messages else ""
        if not (content.startswith(prefix) and content.endswith(suffix)):
            continue
        text = content[len(prefix) : len(content) - len(suffix)]
        annotation = RowAnnotation()
        read_entities(text, row.get("reply"), annotation)
        texts.append(text)
        annotations.append(annotation)
    return entity_type_pairs(texts, annotations)


def memoised(embed: Embedder) -> Embedder:
    """Each text embedded once: every pair of types re-asks for the same texts."""
    table: dict[str, np.ndarray] = {}

    def cached(texts: list[str]) -> np.ndarray:
        missing = [text for text in dict.fromkeys(texts) if text not in table]
        if missing:
            table.update(zip(missing, np.asarray(embed(missing), dtype=np.float64)))
        return np.stack([table[text] for text in texts])

    return cached


def pair_merges(pairs: Sequence[tuple[str, str]], embed: Embedder) -> list[tuple[str, str, dict[tuple[float, float], bool]]]:
    """Each pair of types decided as a group of two at every setting: (type, type, {(epsilon, name similarity): merged})."""
    by_type = defaultdict(list)
    for entity, kind in pairs:
        by_type[kind].append((entity, kind))
    outcomes = []
    for first, second in itertools.combinations(sorted(by_type), 2):
        chosen = by_type[first] + by_type[second]
        merged = {}
        for epsilon, name in itertools.product(EPSILONS, NAME_SIMILARITIES):
            mapping, _ = merge_synonym_types(chosen, {GROUP: [first, second]}, embed, epsilon=epsilon, min_name_similarity=name)
            merged[epsilon, name] = mapping[first] == mapping[second]
        outcomes.append((first, second, merged))
    return outcomes


def synonym_judge(classes: dict) -> Callable[[str, str], bool | None]:
    """True for two names of one hand-made class, None for a pair marked undecided, else False."""
    class_of = {name: index for index, names in enumerate(classes["synonyms"]) for name in names}
    undecided = {frozenset(pair) for pair in classes["undecided"]}

    def judge(first: str, second: str) -> bool | None:
        if frozenset((first, second)) in undecided:
            return None
        return first in class_of and class_of[first] == class_of.get(second)

    return judge


def tally(outcomes: Sequence[tuple[str, str, dict]], judge: Callable[[str, str], bool | None]) -> list[dict]:
    """Per setting: synonym pairs merged and other pairs merged, out of how many."""
    judged = [(merged, judge(first, second)) for first, second, merged in outcomes]
    judged = [(merged, synonym) for merged, synonym in judged if synonym is not None]
    synonyms = sum(synonym for _, synonym in judged)
    rows = []
    for epsilon, name in itertools.product(EPSILONS, NAME_SIMILARITIES):
        merged = [synonym for outcome, synonym in judged if outcome[epsilon, name]]
        rows.append({"epsilon": epsilon, "min_name_similarity": name, "synonyms_merged": sum(merged), "synonyms": synonyms,
                     "others_merged": len(merged) - sum(merged), "others": len(judged) - synonyms})  # fmt: skip
    return rows


def table(rows: Sequence[dict]) -> str:
    lines = ["| epsilon | name similarity at least | synonym pairs merged | other pairs merged |", "|---|---|---|---|"]
    for row in rows:
        name = "off (paper)" if row["min_name_similarity"] < 0 else f"{row['min_name_similarity']:.2f}"
        lines.append(f"| {row['epsilon']} | {name} | {row['synonyms_merged']} of {row['synonyms']} | {row['others_merged']} of {row['others']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("caches", nargs="*", type=Path, help="reply caches (default: benchmarks/llm_replies/*.jsonl.gz)")
    parser.add_argument("--embedding_model", default=str(REPO_ROOT / DEFAULT_EMBEDDING_MODEL))
    parser.add_argument("--classes", type=Path, default=CLASSES_FILE, help="hand-made synonym classes and undecided pairs")
    options = parser.parse_args(argv)
    caches = options.caches or sorted((REPO_ROOT / "benchmarks" / "llm_replies").glob("*.jsonl.gz"))
    embed = memoised(sentence_transformer_embedder(options.embedding_model))
    outcomes = []
    for cache in caches:
        pairs = cached_entity_pairs(cache_rows(cache))
        print(f"{cache.name}: {len(pairs)} mentions under {len({kind for _, kind in pairs})} types", file=sys.stderr)
        outcomes += pair_merges(pairs, embed)
    print(table(tally(outcomes, synonym_judge(json.loads(options.classes.read_text(encoding="utf-8"))))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
