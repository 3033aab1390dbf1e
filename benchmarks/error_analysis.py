"""Where a model's misses are: every gold span of a split sorted into found, wrong label, wrong boundary or missed.

Split by label (with its training count), by whether the gold text occurs as a span in the training
data, and by whether the span's edges fall inside one of the tokenizer's pieces (a multi-character
SentencePiece piece such as 在北京 gives all its characters one token state). It answers "what limits
the plateau" for a trained model without training anything:

    python benchmarks/error_analysis.py --model benchmarks/runs/weibo-k250-knowfree-seed42 --data ../shared/data/weibo --k 250
"""

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from knowfree.data import load_corpus  # noqa: E402

OUTCOMES = ("found", "wrong label", "wrong boundary", "missed")


def outcome(gold: dict, predicted: list[dict]) -> str:
    same_place = [span for span in predicted if (span["start"], span["end"]) == (gold["start"], gold["end"])]
    if any(span["label"] == gold["label"] for span in same_place):
        return "found"
    if same_place:
        return "wrong label"
    if any(span["start"] < gold["end"] and gold["start"] < span["end"] for span in predicted):
        return "wrong boundary"
    return "missed"


def piece_edges(text: str, tokenizer) -> set[int]:
    offsets = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]
    return {0, len(text)} | {edge for pair in offsets for edge in pair}


def analyse(model, tokenizer, train_rows, rows) -> dict:
    """Counts per outcome overall, per label, for seen/unseen gold text and for piece-aligned/inside-piece spans."""
    train_counts = Counter(span["label"] for row in train_rows for span in row["entities"])
    seen_texts = {row["text"][span["start"] : span["end"]] for row in train_rows for span in row["entities"]}
    predictions = model.predict([row["text"] for row in rows])
    groups: dict[str, Counter] = defaultdict(Counter)
    for row, predicted in zip(rows, predictions):
        edges = piece_edges(row["text"], tokenizer)
        for gold in row["entities"]:
            result = outcome(gold, predicted)
            groups["all"][result] += 1
            groups[f"label {gold['label']} (train {train_counts[gold['label']]})"][result] += 1
            groups["text seen in training" if row["text"][gold["start"] : gold["end"]] in seen_texts else "text unseen in training"][result] += 1
            groups["edges on piece edges" if {gold["start"], gold["end"]} <= edges else "an edge inside a piece"][result] += 1
    return dict(groups)


def markdown(groups: dict) -> str:
    lines = ["| gold spans | " + " | ".join(OUTCOMES) + " | recall |", "|---" * (len(OUTCOMES) + 2) + "|"]
    for name, counts in sorted(groups.items(), key=lambda item: (item[0] != "all", item[0].startswith("label"), item[0])):
        total = sum(counts.values())
        lines.append(f"| {name} ({total}) | " + " | ".join(str(counts[outcome]) for outcome in OUTCOMES) + f" | {counts['found'] / total:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a saved KnowFREE model folder")
    parser.add_argument("--data", required=True, help="the corpus it was trained on")
    parser.add_argument("--k", type=int, help="the training subset size it was trained on (for the seen/unseen split)")
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    from transformers import AutoModel

    model = AutoModel.from_pretrained(args.model, trust_remote_code=True).eval()
    corpus = load_corpus(args.data, splits=("train", args.split), k=args.k)
    print(markdown(analyse(model, model.tokenizer, list(corpus.splits["train"]), list(corpus.splits[args.split]))))


if __name__ == "__main__":
    main()
