"""`knowfree-augment extend`: pipeline 1 on a corpus, written as a fusion dataset (and pushed)."""

import argparse
import json
import logging
import os
import shlex

from datasets import Dataset, DatasetDict

from augment.dataset_card import render_dataset_card
from augment.dataset_export import push_augmented, save_augmented
from augment.fusion import build_fusion
from augment.label_map import read_label_map
from augment.label_merging import sentence_transformer_embedder
from augment.llm_annotator import LLMAnnotator
from augment.llm_client import GenerationSettings, LLMClient, RetryPolicy, usage_between
from augment.offline_annotator import OfflineAnnotator
from augment.prompts import detect_language
from augment.reply_cache import ReplyCache
from knowfree.data import FEATURES, LabeledCorpus, load_corpus

logger = logging.getLogger("knowfree-augment")

LLM_MIN_LABEL_COUNT = 3


def api_token(args: argparse.Namespace) -> str | None:
    """--token, else $HF_TOKEN, read when needed (a default taken at parse time would show in --help)."""
    return args.token or os.environ.get("HF_TOKEN")


def uses_llm(args: argparse.Namespace) -> bool:
    return bool(args.endpoint or args.model)


def build_client(args: argparse.Namespace) -> LLMClient:
    cache_path = args.cache or f"{str(args.output_dir).rstrip('/')}.llm-cache.jsonl"
    return LLMClient(
        endpoint=args.endpoint,
        model=args.model,
        provider=args.provider,
        token=api_token(args),
        route=args.route,
        settings=GenerationSettings(max_new_tokens=args.max_new_tokens, temperature=args.temperature),
        retry=RetryPolicy(timeout=args.timeout, retries=args.retries, backoff_seconds=args.backoff),
        concurrency=args.concurrency,
        cache=ReplyCache(cache_path),
        structured=args.structured,
        cache_only=bool(args.label_map),
    )


def build_annotator(args: argparse.Namespace, language: str, client: LLMClient | None = None):
    """The LLM annotator when an endpoint or model is given (unless --annotator offline), else jieba."""
    if args.annotator == "llm" and not uses_llm(args):
        raise SystemExit("--annotator llm needs --endpoint or --model")
    if uses_llm(args) and args.annotator != "offline":
        return LLMAnnotator(client or build_client(args), language)
    if language != "zh":
        raise SystemExit("the offline annotator (jieba) handles Chinese only; give --endpoint or --model for other languages")
    return OfflineAnnotator()


def load_source(args: argparse.Namespace) -> LabeledCorpus:
    return load_corpus(args.data, k=args.k, train_file=args.train_file, seed=args.data_seed, k_shot=args.k_shot)


def print_dry_run(annotator, texts: list[str]) -> None:
    """Every first-stage prompt, and how many requests a real run would make (and how many are cached)."""
    if not isinstance(annotator, LLMAnnotator):
        print(f"offline annotator ({annotator.version}): no LLM requests for {len(texts)} sentences")
        return
    requests = annotator.first_stage_requests(texts)
    for messages in requests:
        print("\n".join(f"[{message['role']}] {message['content']}" for message in messages), end="\n---\n")
    cached = sum(annotator.client.is_cached(messages, schema) for messages, schema in zip(requests, annotator.first_stage_schemas(texts)))
    form = annotator.client.known_form()
    print(f"structured output: {form if form else 'probed on the first real request (--structured ' + annotator.client.structured + ')'}")
    print(
        f"requests: {len(requests)} entity + segmentation ({cached} cached), then up to {len(texts)} POS "
        f"(one per accepted segmentation, prompts depend on those replies), then 1 synonym grouping: at most {len(requests) + len(texts) + 1}"
    )


def train_command(output_dir: str, train_split: str) -> str:
    return f"accelerate launch train.py --data {shlex.quote(str(output_dir))} --train_split {train_split} --output_dir outputs/<run>"


def run_extend(args: argparse.Namespace, client: LLMClient | None = None) -> dict | None:
    """Pipeline 1 into args.output_dir; returns the fusion metadata (None for a dry run)."""
    corpus = load_source(args)
    train_rows = list(corpus.splits["train"])
    texts = [row["text"] for row in train_rows]
    language = args.language or detect_language(texts)
    annotator = build_annotator(args, language, client)
    if args.dry_run:
        print_dry_run(annotator, texts)
        return None
    provenance = {"source": str(args.data), "k": args.k, "k_shot": args.k_shot, "language": language, "model": args.model or args.endpoint}
    uses_llm_annotator = isinstance(annotator, LLMAnnotator)
    usage_before = annotator.client.usage_snapshot() if uses_llm_annotator else {}
    min_label_count = args.min_label_count or (LLM_MIN_LABEL_COUNT if uses_llm_annotator else 1)
    label_map = read_label_map(args.label_map) if args.label_map else None
    result = build_fusion(
        train_rows, corpus.labels, annotator, lambda: sentence_transformer_embedder(args.embedding_model), args.epsilon, args.top_p, provenance,
        label_map=label_map, min_label_count=min_label_count,
    )
    if uses_llm_annotator:
        result.metadata["llm_requests"] = dict(annotator.client.counts)
        result.metadata["llm_usage"] = usage_between(usage_before, annotator.client.usage_snapshot())
        result.metadata["provenance"]["structured_output"] = annotator.client.known_form()
        if label_map is not None and annotator.client.counts["failed_not_cached"]:
            logger.warning("%d requests were not in the reply cache and were left unanswered (--label_map sends none)", annotator.client.counts["failed_not_cached"])
    splits = dict(corpus.splits)
    splits["fusion"] = Dataset.from_list(result.rows, features=FEATURES)
    dataset = DatasetDict(splits)
    body = render_dataset_card(result.metadata, {name: len(split) for name, split in dataset.items()}, train_command(args.output_dir, "fusion"))
    save_augmented(args.output_dir, dataset, result.metadata, body, license=args.license)
    summary = {key: result.metadata[key] for key in ("extension_spans", "extension_span_counts", "annotation_counts")}
    logger.info("fusion dataset written to %s: %d extension labels, %s", args.output_dir, len(result.metadata["extension_labels"]), json.dumps(summary, ensure_ascii=False))
    if args.push_to_hub:
        push_augmented(args.output_dir, args.push_to_hub, args.hub_private, api_token(args))
        logger.info("pushed to the Hub dataset repo %s", args.push_to_hub)
    return result.metadata
