"""`knowfree-augment extend`: pipeline 1 on a corpus, written as a fusion dataset (and pushed)."""

import json
import logging
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
from augment.settings import ExtendSettings, LLMSettings, SourceSettings
from knowfree.data import FEATURES, LabeledCorpus, load_corpus

logger = logging.getLogger("knowfree-augment")

LLM_MIN_LABEL_COUNT = 3


def build_client(llm: LLMSettings, output_dir: str, cache_only: bool) -> LLMClient:
    """The client of `llm`, replies cached in --cache or beside output_dir; `cache_only` (a --label_map rebuild) sends nothing."""
    cache_path = llm.cache or f"{str(output_dir).rstrip('/')}.llm-cache.jsonl"
    return LLMClient(
        endpoint=llm.endpoint,
        model=llm.model,
        provider=llm.provider,
        token=llm.api_token(),
        route=llm.route,
        settings=GenerationSettings(max_new_tokens=llm.max_new_tokens, temperature=llm.temperature),
        retry=RetryPolicy(timeout=llm.timeout, retries=llm.retries, backoff_seconds=llm.backoff),
        concurrency=llm.concurrency,
        cache=ReplyCache(cache_path),
        structured=llm.structured,
        cache_only=cache_only,
    )


def build_annotator(kind: str, language: str, client: LLMClient | None) -> LLMAnnotator | OfflineAnnotator:
    """The LLM annotator when there is an LLM client (unless --annotator offline), else jieba."""
    if kind == "llm" and client is None:
        raise SystemExit("--annotator llm needs --endpoint or --model")
    if client is not None and kind != "offline":
        return LLMAnnotator(client, language)
    if language != "zh":
        raise SystemExit("the offline annotator (jieba) handles Chinese only; give --endpoint or --model for other languages")
    return OfflineAnnotator()


def load_source(source: SourceSettings) -> LabeledCorpus:
    return load_corpus(source.data, k=source.k, train_file=source.train_file, seed=source.data_seed, k_shot=source.k_shot)


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


def run_extend(settings: ExtendSettings, client: LLMClient | None = None) -> dict | None:
    """Pipeline 1 into settings.output_dir, through `client` if given; returns the fusion metadata (None for a dry run)."""
    source, merging = settings.source, settings.merging
    corpus = load_source(source)
    train_rows = list(corpus.splits["train"])
    texts = [row["text"] for row in train_rows]
    language = settings.language or detect_language(texts)
    if client is None and settings.llm.enabled and settings.annotator != "offline":
        client = build_client(settings.llm, settings.output_dir, cache_only=bool(merging.label_map))
    annotator = build_annotator(settings.annotator, language, client)
    if settings.dry_run:
        print_dry_run(annotator, texts)
        return None
    provenance = {"source": str(source.data), "k": source.k, "k_shot": source.k_shot, "language": language, "model": settings.llm.model or settings.llm.endpoint}
    uses_llm_annotator = isinstance(annotator, LLMAnnotator)
    usage_before = annotator.client.usage_snapshot() if uses_llm_annotator else {}
    min_label_count = merging.min_label_count or (LLM_MIN_LABEL_COUNT if uses_llm_annotator else 1)
    label_map = read_label_map(merging.label_map) if merging.label_map else None
    result = build_fusion(
        train_rows, corpus.labels, annotator, lambda: sentence_transformer_embedder(merging.embedding_model), merging.epsilon, merging.top_p, provenance,
        min_name_similarity=merging.min_name_similarity, label_map=label_map, min_label_count=min_label_count,
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
    body = render_dataset_card(result.metadata, {name: len(split) for name, split in dataset.items()}, train_command(settings.output_dir, "fusion"))
    save_augmented(settings.output_dir, dataset, result.metadata, body, license=settings.license)
    summary = {key: result.metadata[key] for key in ("extension_spans", "extension_span_counts", "annotation_counts")}
    logger.info("fusion dataset written to %s: %d extension labels, %s", settings.output_dir, len(result.metadata["extension_labels"]), json.dumps(summary, ensure_ascii=False))
    if settings.push_to_hub:
        push_augmented(settings.output_dir, settings.push_to_hub, settings.hub_private, settings.llm.api_token())
        logger.info("pushed to the Hub dataset repo %s", settings.push_to_hub)
    return result.metadata
