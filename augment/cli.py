"""`knowfree-augment`: the knowledge-enhancement workflow from the command line.

`extend` runs pipeline 1 (label extension annotation) on a corpus and writes the fusion dataset;
`workflow` runs Figure 2 end to end (extension, annotation model, explanation synthesis, synthetic
annotation, retraining, evaluation), resumable step by step.
"""

import argparse
import json
import logging
from dataclasses import fields, is_dataclass, replace
from typing import TypeVar

from augment.extend_command import load_source, run_extend
from augment.label_merging import DEFAULT_EPSILON, DEFAULT_MIN_NAME_SIMILARITY, DEFAULT_TOP_P
from augment.llm_client import ROUTES, STRUCTURED_MODES
from augment.prompts import LANGUAGES
from augment.settings import ExtendSettings, WorkflowSettings
from augment.synthesis import DEFAULT_MAX_CHARS, DEFAULT_MIN_CHARS
from augment.workflow import fusion_settings, run_workflow, workflow_client
from knowfree.command_line import run_command_line
from knowfree.model_card import hub_license, hub_repo_id
from knowfree.training_settings import TrainingSettings

Settings = TypeVar("Settings")

DEFAULT_EMBEDDING_MODEL = "encoders/multilingual-e5-small-st"


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("source data")
    group.add_argument("--data", required=True, help="corpus: JSONL split folder (+ labels.txt), save_to_disk folder, or Hub dataset repo id")
    group.add_argument("--k", type=int, help="annotate the low-resource train subset of K sentences (train_K.jsonl when present)")
    group.add_argument("--k_shot", type=int, help="annotate a greedy N-way K-shot sample instead (every target label at least this many mentions), as train.py --k_shot")
    group.add_argument("--train_file", help="a JSONL file replacing the train split (relative to --data)")
    group.add_argument("--data_seed", type=int, default=42)
    group.add_argument("--language", choices=LANGUAGES, help="prompt language (default: detected from the text)")


def add_llm_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("LLM (leave --endpoint and --model out to annotate offline with jieba)")
    group.add_argument("--annotator", choices=("auto", "offline", "llm"), default="auto", help="extension annotator: the LLM when one is given (auto), or jieba offline even then")
    group.add_argument("--endpoint", help="URL of a TGI or OpenAI-compatible server (e.g. http://127.0.0.1:8080)")
    group.add_argument("--model", help="model id: for a Hugging Face inference provider, or the name an OpenAI-compatible server expects")
    group.add_argument("--provider", help="Hugging Face inference provider (with --model), e.g. 'hf-inference' or 'together'")
    group.add_argument("--token", help="API token (default: the HF_TOKEN environment variable; never printed or recorded)")
    group.add_argument("--route", choices=ROUTES, default="chat", help="chat completion (default) or TGI text generation")
    group.add_argument(
        "--structured", choices=STRUCTURED_MODES, default="auto",
        help="send each extraction prompt's JSON schema in the form the server takes (auto: probe once, fall back to plain requests; on: refuse a server that takes none; off: never)",
    )
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
    group.add_argument("--license", type=hub_license, help="Hub license id of the augmented dataset (default: the license the source's card states, else none)")


def add_merging_arguments(parser: argparse.ArgumentParser) -> None:
    merging = parser.add_argument_group("synonym label merging (eqs. 2-8)")
    merging.add_argument("--embedding_model", default=DEFAULT_EMBEDDING_MODEL, help="sentence-transformers folder or id embedding '[entity] is [type]'")
    merging.add_argument("--epsilon", type=float, default=DEFAULT_EPSILON)
    merging.add_argument("--top_p", type=int, default=DEFAULT_TOP_P, help="farthest samples averaged into a type's radius")
    merging.add_argument(
        "--min_name_similarity", type=float, default=DEFAULT_MIN_NAME_SIMILARITY,
        help="a type also needs this cosine between its name's embedding and its reference's to merge (-1: off, the paper's test alone)",
    )
    merging.add_argument(
        "--label_map", metavar="FILE",
        help="an (edited) label_map.json of an earlier run: it decides every merge, and the fusion is rebuilt from the reply cache alone (no new LLM request)",
    )
    merging.add_argument(
        "--min_label_count", type=int,
        help="extension labels with fewer spans are folded into ent:other / pos:other, or dropped when that is still rarer (default: 3 with an LLM, 1 offline: jieba's tag set is closed)",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="knowfree-augment", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    extend = commands.add_parser("extend", help="pipeline 1: extension labels -> fusion dataset", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_source_arguments(extend)
    add_llm_arguments(extend)
    add_merging_arguments(extend)
    add_output_arguments(extend)

    workflow = commands.add_parser("workflow", help="Figure 2 end to end: fusion + synthetic dataset and the final model", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_source_arguments(workflow)
    add_llm_arguments(workflow)
    add_merging_arguments(workflow)
    synthesis = workflow.add_argument_group("explanation synthesis (needs an LLM)")
    synthesis.add_argument("--max_chars", type=int, default=DEFAULT_MAX_CHARS, help="longest synthetic row; explanation sentences are packed up to it, longer ones clipped")
    synthesis.add_argument("--min_chars", type=int, default=DEFAULT_MIN_CHARS, help="shorter synthetic rows are dropped")
    training = workflow.add_argument_group("training (the annotation model on fusion, the final model on fusion + synthetic)")
    training.add_argument("--encoder", default=TrainingSettings.encoder)
    training.add_argument("--task", choices=("ner", "segmentation", "pos"), default=TrainingSettings.task, help="sets beta and weight decay to appendix G's values")
    training.add_argument("--epochs", type=int, default=TrainingSettings.epochs)
    training.add_argument("--batch_size", type=int, default=TrainingSettings.batch_size)
    training.add_argument("--patience", type=int, default=TrainingSettings.patience)
    training.add_argument("--seed", type=int, default=TrainingSettings.seed)
    training.add_argument("--freeze_embeddings", action="store_true")
    training.add_argument("--max_train_minutes", type=float, help="a wall-clock safety cap; the budget is --epochs (train.py --max_train_minutes)")
    training.add_argument("--synthetic_weight", type=float, help="beta (default from --task: 0.4 NER, 1.0 segmentation/POS)")
    training.add_argument("--train_args", default="", help="more train.py arguments, e.g. '--config_overrides projection_size=100'")
    output = workflow.add_argument_group("output")
    output.add_argument("--work_dir", required=True, help="folder of every step's output and steps.json (re-runs skip finished steps)")
    output.add_argument("--push_to_hub", metavar="REPO", type=hub_repo_id, help="push the augmented dataset (train, fusion, synthetic, dev, test + card + workflow.json)")
    output.add_argument("--push_model", metavar="REPO", help="push the final model with its card")
    output.add_argument("--hub_private", action="store_true")
    output.add_argument("--license", type=hub_license, help="Hub license id of the augmented dataset (default: the license the source's card states, else none)")
    return parser.parse_args(argv)


def from_options(settings_class: type[Settings], args: argparse.Namespace) -> Settings:
    """`settings_class` filled from the options of its field names (a nested settings field from the same options)."""
    return settings_class(**{field.name: from_options(field.type, args) if is_dataclass(field.type) else getattr(args, field.name) for field in fields(settings_class)})


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    if args.command == "extend":
        run_extend(from_options(ExtendSettings, args))
        return
    settings = from_options(WorkflowSettings, args)
    if args.dry_run:
        run_extend(replace(fusion_settings(settings, settings.language), dry_run=True), workflow_client(settings))
        rows = len(load_source(settings.source).splits["train"])
        print(f"then {rows} explanation requests (one per training row) if an LLM is given")
    else:
        summary = run_workflow(settings)
        print(json.dumps(summary, ensure_ascii=False, indent=2))


def console_main() -> None:
    """The `knowfree-augment` console script: input errors as one line, exit status 2."""
    run_command_line(main)


if __name__ == "__main__":
    console_main()
