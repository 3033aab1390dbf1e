"""Figure 2 end to end, every step resumable and skipped when its inputs are unchanged.

extension annotation -> fusion dataset -> annotation model (KnowFREE on fusion) -> explanations
(LLM) -> annotated synthetic rows -> the augmented dataset (train, fusion, synthetic, dev, test) ->
final model (fusion + synthetic, synthetic rows weighted by beta) -> evaluation summary -> pushes.

Each step's inputs (settings, prompts version, upstream fingerprints, the source files) are hashed
into a fingerprint; `steps.json` in the work folder records the fingerprint of every finished step,
so a re-run skips finished steps and redoes only what changed. Inside a step, LLM replies come from
the reply cache and training continues from its checkpoint, so a crash loses no finished work.
Without an LLM the extension step uses the offline annotator and synthesis is skipped, with the
reason logged and written to the summary; the final model is then the annotation model.
"""

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from datasets import Dataset, DatasetDict

from augment.dataset_card import render_dataset_card
from augment.dataset_export import push_augmented, read_metadata, save_augmented
from augment.extend_command import build_annotator, build_client, load_source, run_extend, train_command
from augment.llm_client import LLMClient, usage_between
from augment.label_map import read_label_map
from augment.prompts import PROMPTS_VERSION, detect_language, prompt_texts
from augment.settings import ExtendSettings, LLMSettings, MergingSettings, SourceSettings, WorkflowSettings, WorkflowTraining
from augment.synthesis import CLEANING_VERSION, annotate_synthetic, request_explanations, synthetic_texts
from knowfree.checkpoints import drop_resume_state, has_checkpoint
from knowfree.data import FEATURES, load_corpus
from knowfree.training import push_folder, train
from knowfree.training_settings import TASK_DEFAULTS, TrainingSettings, training_overrides

logger = logging.getLogger("knowfree-augment.workflow")

STATE_FILE = "steps.json"


def fingerprint(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")).hexdigest()[:16]


def source_fingerprint(source: str) -> str:
    """Contents of a local source folder's files (so edited data re-runs everything), else the repo id."""
    folder = Path(source)
    if not folder.is_dir():
        return fingerprint(source)
    digest = hashlib.sha256()
    for path in sorted(item for item in folder.rglob("*") if item.is_file()):
        digest.update(str(path.relative_to(folder)).encode("utf-8"))
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class StepLog:
    """steps.json: the fingerprint each step was started and finished with, and its wall seconds, rewritten atomically."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / STATE_FILE
        state = json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}
        self.started: dict[str, str] = state.get("started", {})
        self.finished: dict[str, str] = state.get("finished", {})
        self.seconds: dict[str, float] = state.get("seconds", {})

    def _save(self) -> None:
        _write_json(self.path, {"started": self.started, "finished": self.finished, "seconds": self.seconds})

    def run(self, name: str, inputs: dict, output: Path, action: Callable[[bool], None]) -> str:
        """Run `action` unless `output` exists and was made from the same inputs; returns the fingerprint.

        `action(resumable)` is told whether a previous attempt with these same inputs was interrupted,
        so it may continue that attempt's partial work instead of starting over.
        """
        key = fingerprint(inputs)
        if self.finished.get(name) == key and output.exists():
            logger.info("step %s: up to date (%s), skipped", name, key)
            return key
        resumable = self.started.get(name) == key
        logger.info("step %s: %s (%s)", name, "resuming" if resumable else "running", key)
        self.started[name] = key
        self._save()
        began = time.monotonic()
        action(resumable)
        self.finished[name] = key
        self.seconds[name] = round(time.monotonic() - began + (self.seconds.get(name, 0.0) if resumable else 0.0), 1)
        self._save()
        return key


def _write_json(path: Path, value: object) -> None:
    staging = path.with_name(path.name + ".partial")
    staging.write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    staging.replace(path)


def _read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def training_settings(training: WorkflowTraining, data: Path, train_split: str, output_dir: Path, dataset_repo: str | None) -> TrainingSettings:
    """train.py's settings for one workflow model: the workflow's training options, then --train_args over them (later options win, as on a command line)."""
    settings = TrainingSettings(
        data=str(data), train_split=train_split, output_dir=str(output_dir), encoder=training.encoder, task=training.task,
        epochs=training.epochs, batch_size=training.batch_size, patience=training.patience, seed=training.seed,
        freeze_embeddings=training.freeze_embeddings, max_train_minutes=training.max_train_minutes or None, synthetic_weight=training.synthetic_weight,
        hub_dataset_id=dataset_repo,  # the model's card then names the dataset this workflow pushes
    )  # fmt: skip
    return replace(settings, **training_overrides(training.train_args.split()))


def train_model(settings: TrainingSettings, resumable: bool) -> dict:
    """Training in this process; continues from the checkpoint an interrupted attempt left, else starts clean.

    A finished model keeps only its selected weights: its resume state is dropped (knowfree/checkpoints.py)."""
    output_dir = Path(settings.output_dir)
    if not resumable and output_dir.exists():
        shutil.rmtree(output_dir)
    results = train(replace(settings, resume=settings.resume or (resumable and has_checkpoint(output_dir))))
    drop_resume_state(output_dir)
    return results


def labelling_choices(merging: MergingSettings) -> dict:
    """The label-map file and rare-label count when given (absent otherwise, so older work folders keep their fingerprints)."""
    choices = {"min_label_count": merging.min_label_count, "label_map": fingerprint(read_label_map(merging.label_map)) if merging.label_map else None}
    return {key: value for key, value in choices.items() if value is not None}


def source_inputs(source: SourceSettings) -> dict:
    """The source part of the step fingerprints (its keys are those of existing work folders)."""
    return {"data": source.data, "files": source_fingerprint(source.data), "k": source.k, "k_shot": source.k_shot, "train_file": source.train_file, "seed": source.data_seed}


def llm_inputs(llm: LLMSettings) -> dict:
    """The LLM part of the step fingerprints: what changes replies (not the token, retries or concurrency)."""
    return {"endpoint": llm.endpoint, "model": llm.model, "provider": llm.provider, "route": llm.route,
            "max_new_tokens": llm.max_new_tokens, "temperature": llm.temperature, "structured": llm.structured, "prompts": PROMPTS_VERSION}  # fmt: skip


def fusion_settings(settings: WorkflowSettings, language: str | None) -> ExtendSettings:
    """The workflow's extension step: pipeline 1 into work_dir/fusion, pushed only as part of the final dataset."""
    return ExtendSettings(
        source=settings.source, llm=settings.llm, merging=settings.merging, annotator=settings.annotator, language=language,
        output_dir=str(Path(settings.work_dir) / "fusion"), push_to_hub=None, hub_private=settings.hub_private, license=settings.license, dry_run=False,
    )  # fmt: skip


def workflow_client(settings: WorkflowSettings) -> LLMClient | None:
    """The workflow's one LLM client (replies cached in work_dir/llm.llm-cache.jsonl unless --cache), None without an LLM."""
    if not settings.llm.enabled:
        return None
    return build_client(settings.llm, str(Path(settings.work_dir) / "llm"), cache_only=bool(settings.merging.label_map))


def run_workflow(settings: WorkflowSettings) -> dict:
    """Every step of Figure 2 not yet done with these inputs; returns the evaluation summary (also summary.json)."""
    work = Path(settings.work_dir)
    fusion_dir, annotation_dir, final_model_dir, dataset_dir = work / "fusion", work / "annotation-model", work / "final-model", work / "dataset"
    # both models' settings first: a bad --train_args stops the run before any step
    annotation_training = training_settings(settings.training, fusion_dir, "fusion", annotation_dir, settings.push_to_hub)
    final_training = training_settings(settings.training, dataset_dir, "fusion,synthetic", final_model_dir, settings.push_to_hub)
    work.mkdir(parents=True, exist_ok=True)
    steps = StepLog(work)
    has_llm = settings.llm.enabled
    merging = settings.merging
    client = workflow_client(settings)
    corpus = load_source(settings.source)
    language = settings.language or detect_language(corpus.splits["train"]["text"])
    source = source_inputs(settings.source)
    llm = llm_inputs(settings.llm) if has_llm else None
    annotator_kind = "offline" if settings.annotator == "offline" or not has_llm else "llm"
    training = asdict(settings.training)

    fusion_key = steps.run(
        "extend",
        {"source": source, "annotator": annotator_kind, "llm": llm if annotator_kind == "llm" else None, "language": language,
         "embedding_model": merging.embedding_model, "epsilon": merging.epsilon, "top_p": merging.top_p, "min_name_similarity": merging.min_name_similarity, **labelling_choices(merging)},
        fusion_dir,
        lambda resumable: run_extend(fusion_settings(settings, language), client),
    )  # fmt: skip
    fusion_metadata = read_metadata(fusion_dir)

    annotation_inputs = {"fusion": fusion_key, "training": training}
    annotation_key = steps.run("annotation_model", annotation_inputs, annotation_dir / "results.json", lambda resumable: train_model(annotation_training, resumable))
    summary = {"fusion": {key: fusion_metadata[key] for key in ("extension_spans", "annotation_counts")}, "extension_labels": len(fusion_metadata["extension_labels"])}
    summary["fusion_only_test"] = _read_json(annotation_dir / "results.json")["test"]

    synthetic_rows: list[dict] = []
    synthesis_metadata: dict = {}
    final_dir = annotation_dir
    if not has_llm:
        message = "synthesis skipped: explanation synthesis needs an LLM (give --endpoint or --model); the final model is the annotation model trained on fusion"
        logger.warning(message)
        summary["synthesis"] = message
    else:
        texts_path = work / "synthetic-texts.json"
        synthesis_inputs = {"fusion": fusion_key, "llm": llm, "language": language, "max_chars": settings.max_chars, "min_chars": settings.min_chars, "cleaning": CLEANING_VERSION}

        def synthesize(resumable: bool) -> None:  # the reply cache makes every attempt resumable
            fusion_corpus = load_corpus(fusion_dir, train_splits=("fusion",))
            fusion_rows = list(fusion_corpus.splits["train"])
            before = client.usage_snapshot()
            replies = request_explanations(client, fusion_rows, language)
            texts, counts = synthetic_texts(fusion_rows, replies, settings.max_chars, settings.min_chars, labels=fusion_corpus.labels)
            _write_json(texts_path, {"texts": texts, "counts": dict(counts.counts), "llm_usage": usage_between(before, client.usage_snapshot())})

        synthesis_key = steps.run("synthesize", synthesis_inputs, texts_path, synthesize)
        synthetic_path = work / "synthetic.jsonl"
        synthetic_usage_path = work / "synthetic-llm-usage.json"

        def annotate(resumable: bool) -> None:
            from modeling_knowfree import KnowFreeModel

            model = KnowFreeModel.from_pretrained(annotation_dir).eval()
            texts = [text for _, text in _read_json(texts_path)["texts"]]
            extension_annotator = build_annotator(annotator_kind, language, client)
            before = client.usage_snapshot()
            rows = annotate_synthetic(texts, model, extension_annotator, fusion_metadata["merging"]["type_to_label"])
            _write_json(synthetic_usage_path, usage_between(before, client.usage_snapshot()))
            staging = synthetic_path.with_suffix(".partial")
            staging.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
            staging.replace(synthetic_path)

        steps.run("annotate_synthetic", {"synthesis": synthesis_key, "annotation_model": annotation_key, "annotator": annotator_kind}, synthetic_path, annotate)
        synthetic_rows = [json.loads(line) for line in synthetic_path.read_text(encoding="utf-8").splitlines()]
        synthesized = _read_json(texts_path)
        synthesis_metadata = {
            "counts": synthesized["counts"],
            "synthetic_rows": len(synthetic_rows),
            "synthetic_target_spans": sum(len(row["entities"]) for row in synthetic_rows),
            "synthetic_extension_spans": sum(len(row["extensions"]) for row in synthetic_rows),
            "annotation_model_test_f1": summary["fusion_only_test"]["f1"],
            "beta": settings.training.synthetic_weight if settings.training.synthetic_weight is not None else TASK_DEFAULTS[settings.training.task]["synthetic_weight"],
            "max_chars": settings.max_chars,
            "llm": settings.llm.model or settings.llm.endpoint,
            "prompts_version": PROMPTS_VERSION,
        }
        summary["synthesis"] = synthesis_metadata

    workflow_record = {"source": source, "language": language, "annotator": annotator_kind, "llm": llm, "training": training,
                       "synthesis": {"max_chars": settings.max_chars, "min_chars": settings.min_chars}, "prompts": prompt_texts()}  # fmt: skip

    def build_dataset(resumable: bool) -> None:
        fusion = load_corpus(fusion_dir, splits=("train", "fusion", "dev", "test"))
        splits = dict(fusion.splits)
        if synthetic_rows:
            splits["synthetic"] = Dataset.from_list(synthetic_rows, features=FEATURES)
        dataset = DatasetDict(splits)
        metadata = {**fusion_metadata, "synthesis": synthesis_metadata or summary["synthesis"]}
        train_split = "fusion,synthetic" if synthetic_rows else "fusion"
        body = render_dataset_card(metadata, {name: len(split) for name, split in dataset.items()}, train_command(str(dataset_dir), train_split))
        save_augmented(dataset_dir, dataset, metadata, body, workflow=workflow_record, license=settings.license)

    dataset_key = steps.run("dataset", {"fusion": fusion_key, "synthetic": steps.finished.get("annotate_synthetic") if has_llm else None, "record": fingerprint(workflow_record)}, dataset_dir, build_dataset)

    if synthetic_rows:
        final_dir = final_model_dir
        steps.run("final_model", {"dataset": dataset_key, "training": training}, final_dir / "results.json", lambda resumable: train_model(final_training, resumable))
        summary["fusion_synthetic_test"] = _read_json(final_dir / "results.json")["test"]
    summary["step_seconds"] = dict(steps.seconds)
    if has_llm:
        summary["llm_usage"] = {"extend": fusion_metadata.get("llm_usage", {}), "synthesize": _read_json(texts_path).get("llm_usage", {}),
                                "annotate_synthetic": _read_json(synthetic_usage_path) if synthetic_usage_path.is_file() else {}}  # fmt: skip
        summary["structured_output"] = fusion_metadata["provenance"].get("structured_output")
    summary["final_model"] = str(final_dir)
    summary["dataset"] = str(dataset_dir)
    _write_json(work / "summary.json", summary)

    if settings.push_to_hub:
        push_augmented(dataset_dir, settings.push_to_hub, settings.hub_private, settings.llm.api_token())
        logger.info("pushed the dataset to %s", settings.push_to_hub)
    if settings.push_model:
        push_folder(final_dir, settings.push_model, settings.hub_private)
    return summary
