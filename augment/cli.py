"""`knowfree-augment`: the knowledge-enhancement workflow from the command line.

`extend` runs pipeline 1 (label extension annotation) on a corpus and writes the fusion dataset.
"""

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

from datasets import Dataset, DatasetDict

from augment.dataset_card import render_dataset_card
from augment.dataset_export import push_augmented, save_augmented
from augment.fusion import build_fusion
from augment.label_merging import DEFAULT_EPSILON, DEFAULT_TOP_P, sentence_transformer_embedder
from augment.llm_annotator import LLMAnnotator
from augment.llm_client import ROUTES, GenerationSettings, LLMClient, RetryPolicy
from augment.offline_annotator import OfflineAnnotator
from augment.prompts import LANGUAGES, detect_language
from augment.reply_cache import ReplyCache
from knowfree.data import FEATURES, LabeledCorpus, load_corpus

logger = logging.getLogger("knowfree-augment")

DEFAULT_EMBEDDING_MODEL = "encoders/multilingual-e5-small-st"


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("source data")
    group.add_argument("--data", required=True, help="corpus: JSONL split folder (+ labels.txt), save_to_disk folder, or Hub dataset repo id")
    group.add_argument("--k", type=int, help="annotate the low-resource train subset of K sentences (train_K.jsonl when present)")
    group.add_argument("--train_file", help="a JSONL file replacing the train split (relative to --data)")
    group.add_argument("--data_seed", type=int, default=42)
    group.add_argument("--language", choices=LANGUAGES, help="prompt language (default: detected from the text)")


def add_llm_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("LLM (leave --endpoint and --model out to annotate offline with jieba)")
    group.add_argument("--endpoint", help="URL of a TGI or OpenAI-compatible server (e.g. http://127.0.0.1:8080)")
    group.add_argument("--model", help="model id: for a Hugging Face inference provider, or the name an OpenAI-compatible server expects")
    group.add_argument("--provider", help="Hugging Face inference provider (with --model), e.g. 'hf-inference' or 'together'")
    group.add_argument("--token", default=os.environ.get("HF_TOKEN"), help="API token (default: $HF_TOKEN)")
    group.add_argument("--route", choices=ROUTES, default="chat", help="chat completion (default) or TGI text generation")
    group.add_argument("--concurrency", type=int, default=4, help="requests in flight at once")
    group.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    group.add_argument("--retries", type=int, default=3, help="retries per request on timeouts, dropped connections, 429 and 5xx")
    group.add_argument("--backoff", type=float, default=1.0, help="first retry delay in seconds (doubles each retry)")
    group.add_argument("--max_new_tokens", type=int, default=512)
    group.add_argument("--temperature", type=float, default=0.0)
    group.add_argument("--cache", help="reply cache JSONL (default: <output_dir>.llm-cache.jsonl); re-runs answer cached requests from it")
    group.add_argument("--dry_run", "--dry-run", action="store_true", help="print the prompts and the request count, call nothing")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument("--output_dir", required=True, help="folder of the augmented dataset (JSONL + save_to_disk + labels.txt + augmentation.json + card)")
    group.add_argument("--push_to_hub", metavar="REPO", help="also push it as a Hub dataset repo")
    group.add_argument("--hub_private", action="store_true")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="knowfree-augment", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    extend = commands.add_parser("extend", help="pipeline 1: extension labels -> fusion dataset", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_source_arguments(extend)
    add_llm_arguments(extend)
    merging = extend.add_argument_group("synonym label merging (eqs. 2-8)")
    merging.add_argument("--embedding_model", default=DEFAULT_EMBEDDING_MODEL, help="sentence-transformers folder or id embedding '[entity] is [type]'")
    merging.add_argument("--epsilon", type=float, default=DEFAULT_EPSILON)
    merging.add_argument("--top_p", type=int, default=DEFAULT_TOP_P, help="farthest samples averaged into a type's radius")
    add_output_arguments(extend)
    return parser.parse_args(argv)


def uses_llm(args: argparse.Namespace) -> bool:
    return bool(args.endpoint or args.model)


def build_client(args: argparse.Namespace) -> LLMClient:
    cache_path = args.cache or f"{str(args.output_dir).rstrip('/')}.llm-cache.jsonl"
    return LLMClient(
        endpoint=args.endpoint,
        model=args.model,
        provider=args.provider,
        token=args.token,
        route=args.route,
        settings=GenerationSettings(max_new_tokens=args.max_new_tokens, temperature=args.temperature),
        retry=RetryPolicy(timeout=args.timeout, retries=args.retries, backoff_seconds=args.backoff),
        concurrency=args.concurrency,
        cache=ReplyCache(cache_path),
    )


def build_annotator(args: argparse.Namespace, language: str):
    """The LLM annotator when an endpoint or model is given, else the offline jieba annotator."""
    if uses_llm(args):
        return LLMAnnotator(build_client(args), language)
    if language != "zh":
        raise SystemExit("the offline annotator (jieba) handles Chinese only; give --endpoint or --model for other languages")
    return OfflineAnnotator()


def load_source(args: argparse.Namespace) -> LabeledCorpus:
    return load_corpus(args.data, k=args.k, train_file=args.train_file, seed=args.data_seed)


def print_dry_run(annotator, texts: list[str]) -> None:
    """Every first-stage prompt, and how many requests a real run would make (and how many are cached)."""
    if not isinstance(annotator, LLMAnnotator):
        print(f"offline annotator ({annotator.version}): no LLM requests for {len(texts)} sentences")
        return
    requests = annotator.first_stage_requests(texts)
    for messages in requests:
        print("\n".join(f"[{message['role']}] {message['content']}" for message in messages), end="\n---\n")
    cached = sum(annotator.client.is_cached(messages) for messages in requests)
    print(
        f"requests: {len(requests)} entity + segmentation ({cached} cached), then up to {len(texts)} POS "
        f"(one per accepted segmentation, prompts depend on those replies), then 1 synonym grouping: at most {len(requests) + len(texts) + 1}"
    )


def train_command(output_dir: str, train_split: str) -> str:
    return f"accelerate launch train.py --data {shlex.quote(str(output_dir))} --train_split {train_split} --output_dir outputs/<run>"


def run_extend(args: argparse.Namespace) -> dict | None:
    corpus = load_source(args)
    train_rows = list(corpus.splits["train"])
    texts = [row["text"] for row in train_rows]
    language = args.language or detect_language(texts)
    annotator = build_annotator(args, language)
    if args.dry_run:
        print_dry_run(annotator, texts)
        return None
    provenance = {"source": str(args.data), "k": args.k, "language": language, "model": args.model or args.endpoint}
    result = build_fusion(train_rows, corpus.labels, annotator, lambda: sentence_transformer_embedder(args.embedding_model), args.epsilon, args.top_p, provenance)
    if isinstance(annotator, LLMAnnotator):
        result.metadata["llm_requests"] = dict(annotator.client.counts)
    splits = dict(corpus.splits)
    splits["fusion"] = Dataset.from_list(result.rows, features=FEATURES)
    dataset = DatasetDict(splits)
    body = render_dataset_card(result.metadata, {name: len(split) for name, split in dataset.items()}, train_command(args.output_dir, "fusion"))
    save_augmented(args.output_dir, dataset, result.metadata, body)
    summary = {key: result.metadata[key] for key in ("extension_spans", "annotation_counts")}
    logger.info("fusion dataset written to %s: %d extension labels, %s", args.output_dir, len(result.metadata["extension_labels"]), summary)
    if args.push_to_hub:
        push_augmented(args.output_dir, args.push_to_hub, args.hub_private, args.token)
        logger.info("pushed to the Hub dataset repo %s", args.push_to_hub)
    return result.metadata


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    if args.command == "extend":
        run_extend(args)


if __name__ == "__main__":
    sys.exit(main())
