"""Train and evaluate a KnowFREE span model (or the token-classification baseline) with accelerate.

The command line is train.py at the repository root (`accelerate launch train.py --help`); this module
is what it runs, importable as `knowfree.training` by the augmentation workflow and the benchmarks:

    accelerate launch train.py --data ../shared/data/weibo --encoder encoders/multilingual-e5-small \
        --k 250 --output_dir outputs/weibo-250

Selects the checkpoint on dev, reports test micro/per-label span P/R/F1, saves a Hub-ready model
(remote code, tokenizer, model card) and optionally pushes it. `--resume` continues an interrupted
run from its last checkpoint with the same schedule and data order. Run with `--help` for options.
"""

import json
import logging
import math
import random
import shlex
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, gather_object, set_seed
from datasets import Dataset
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from knowfree.checkpoints import BEST_DIR, CHECKPOINT_DIR, PARTIAL, complete_checkpoint, load_or_explain, restore_interrupted_swap, run_folders, sibling, swap_in, write_folder_atomically
from knowfree.collate import SpanCollator
from knowfree.data import DataError, LabeledCorpus, load_corpus, report_unusable
from knowfree.encoder_checks import check_encoder
from knowfree.evaluation import score_spans
from knowfree.label_weights import extension_alphas
from knowfree.mention_replacement import mention_pool, replace_mentions
from knowfree.model_card import write_model_card
from knowfree.redaction import redact_arguments
from knowfree.thresholds import THRESHOLD_GRID, best_global_threshold, calibrate, decoded_spans
from knowfree.token_baseline import TokenClassificationCollator, alignment_report, build_token_classifier, predict_token_spans
from knowfree.training_settings import SPAN_WIDTH_CAP, SPAN_WIDTH_MARGIN, TASK_DEFAULTS, TrainingSettings, settings_arguments, training_parser
from knowfree.training_state import TrainingState
from modeling_knowfree import KnowFreeModel, SpanCandidate

logger = logging.getLogger("knowfree.train")


def trackers(report_to: str) -> list[str] | None:
    """accelerate's `log_with` for --report_to ("all": tensorboard and wandb)."""
    return None if report_to == "none" else ["tensorboard", "wandb"] if report_to == "all" else [report_to]


def parse_args(argv: list[str] | None = None) -> TrainingSettings:
    """train.py's command line as settings (the options are TrainingSettings' fields)."""
    return TrainingSettings(**vars(training_parser(__doc__).parse_args(argv)))


# --- data -------------------------------------------------------------------------------------------


def load_training_corpus(settings: TrainingSettings) -> LabeledCorpus:
    corpus = load_corpus(
        settings.data, k=settings.k, train_file=settings.train_file, seed=settings.data_seed, train_splits=settings.train_split.split(","), k_shot=settings.k_shot, tag_scheme=settings.tag_scheme
    )
    splits = corpus.splits
    if settings.max_train_rows:
        splits["train"] = splits["train"].select(range(min(settings.max_train_rows, len(splits["train"]))))
    if settings.max_eval_rows:
        for split in ("dev", "test"):
            splits[split] = splits[split].select(range(min(settings.max_eval_rows, len(splits[split]))))
    return corpus


def spans_overlap(rows) -> bool:
    for row in rows:
        spans = sorted((span["start"], span["end"]) for span in row["entities"])
        if any(later_start < end for (_, end), (later_start, _) in zip(spans, spans[1:])):
            return True
    return False


def extension_weights(train_rows, target_labels: list[str], extension_labels: list[str], setting: str) -> list[float]:
    """alpha per extension label: eq. 20 from training counts, or one fixed value."""
    if setting != "auto":
        return [float(setting)] * len(extension_labels)
    return extension_alphas(train_rows, target_labels, extension_labels)


# --- models -----------------------------------------------------------------------------------------


def parse_overrides(text: str) -> dict:
    """'a=1,b=flat' -> {"a": 1, "b": "flat"}: JSON values where they parse, strings otherwise."""
    overrides = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, separator, value = item.partition("=")
        if not separator:
            raise ValueError(f"--config_overrides: {item!r} is not key=value")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value.strip()
    return overrides


def build_knowfree(settings: TrainingSettings, corpus: LabeledCorpus):
    train_rows = corpus.splits["train"]
    spans = [span for row in train_rows for field in ("entities", "extensions") for span in row[field]]
    widths = [span["end"] - span["start"] for span in spans]
    # the band is sized for the targets: a long extension span (a URL tagged as a word) is skipped
    # and counted rather than widening every sentence's span grid
    target_widths = [span["end"] - span["start"] for row in train_rows for span in row["entities"]]
    max_span_width = settings.max_span_width or min(max(target_widths, default=1) + SPAN_WIDTH_MARGIN, SPAN_WIDTH_CAP)
    extension_labels = list(corpus.extension_labels)
    config_values = {
        "extension_label_weights": extension_weights(train_rows, list(corpus.labels), extension_labels, settings.extension_weight),
        "synthetic_weight": settings.synthetic_weight,
        "negative_weight": settings.negative_weight,
        "character_embeddings": settings.character_embeddings,
        "max_span_width": max_span_width,
        "decoding": settings.decoding or ("nested" if spans_overlap(train_rows) else "flat"),
        "use_local_attention": not settings.no_local_attention,
        "threshold": settings.threshold,
    }
    config_values.update(parse_overrides(settings.config_overrides))  # the explicit escape hatch wins
    model = KnowFreeModel.from_encoder(settings.encoder, target_labels=list(corpus.labels), extension_labels=extension_labels, **config_values)
    model.initialize_label_priors([len(text) for text in train_rows["text"]], [(span["end"] - span["start"], span["label"]) for span in spans])
    wider = sum(width > max_span_width for width in widths)
    collator = SpanCollator(model.tokenizer, model.config, skip_wider_spans=True)
    return model, model.tokenizer, collator, wider


def build_baseline(settings: TrainingSettings, corpus: LabeledCorpus):
    model, tokenizer = build_token_classifier(settings.encoder, list(corpus.labels))
    collator = TokenClassificationCollator(tokenizer, list(corpus.labels))
    return model, tokenizer, collator, 0


def map_sharded(accelerator: Accelerator, texts: list[str], predict) -> list:
    """`predict` over `texts` split between processes, gathered back in text order."""
    with accelerator.split_between_processes(list(range(len(texts)))) as indices:
        local = list(zip(indices, predict([texts[index] for index in indices])))
    gathered = gather_object(local) if accelerator.num_processes > 1 else local
    return [value for _, value in sorted(gathered, key=lambda pair: pair[0])]


def span_candidates(settings: TrainingSettings, accelerator: Accelerator, model: KnowFreeModel, texts: list[str]) -> list[list[SpanCandidate]]:
    """Candidates down to the lowest threshold calibration (or the fixed threshold) may keep."""
    floor = min(THRESHOLD_GRID[0], settings.threshold)
    return map_sharded(accelerator, texts, lambda part: model.span_candidates(part, batch_size=settings.eval_batch_size, min_score=floor))


def evaluate_split(settings: TrainingSettings, accelerator: Accelerator, model, tokenizer, dataset) -> dict:
    """Span scores of a split, predicted sharded over processes.

    KnowFREE is scored at the best global threshold for this split (`threshold` in the result) unless
    `--thresholds fixed`: selection then compares checkpoints by what they rank, not by how far their
    scores have drifted from 0.5, and `fixed_threshold_f1` keeps the figure at `--threshold`.
    """
    texts, references = list(dataset["text"]), list(dataset["entities"])
    unwrapped = accelerator.unwrap_model(model)
    if settings.model != "knowfree":
        predictions = map_sharded(accelerator, texts, lambda part: predict_token_spans(unwrapped, tokenizer, part, batch_size=settings.eval_batch_size))
        return score_spans(predictions, references)
    candidates = span_candidates(settings, accelerator, unwrapped, texts)
    labels, nested = unwrapped.config.target_labels, unwrapped.config.decoding == "nested"
    fixed = score_spans(decoded_spans(candidates, [settings.threshold] * len(labels), labels, nested), references)
    if settings.thresholds == "fixed":
        return {**fixed, "threshold": settings.threshold, "fixed_threshold_f1": fixed["f1"]}
    threshold, scores = best_global_threshold(candidates, references, labels, nested)
    return {**scores, "threshold": threshold, "fixed_threshold_f1": fixed["f1"]}


def choose_thresholds(settings: TrainingSettings, accelerator: Accelerator, model: KnowFreeModel, splits) -> tuple[dict, dict, dict]:
    """Calibrate on dev, store the chosen thresholds in the model's config, score test under each choice.

    Returns the dev and test scores at the chosen thresholds and the record results.json keeps: for
    `fixed`, `global` and `per_label`, the thresholds with their dev and test F1, so the choice is
    measured, not assumed.
    """
    labels, nested = model.config.target_labels, model.config.decoding == "nested"
    dev_candidates = span_candidates(settings, accelerator, model, list(splits["dev"]["text"]))
    test_candidates = span_candidates(settings, accelerator, model, list(splits["test"]["text"]))
    dev_references, test_references = list(splits["dev"]["entities"]), list(splits["test"]["entities"])
    calibration = calibrate(dev_candidates, dev_references, labels, nested)
    choices = {
        "fixed": (settings.threshold, {}),
        "global": (calibration.threshold, {}),
        "per_label": (calibration.threshold, calibration.label_thresholds),
    }
    record: dict = {"chosen": settings.thresholds}
    scores: dict = {}
    for name, (threshold, label_thresholds) in choices.items():
        thresholds = [label_thresholds.get(label, threshold) for label in labels]
        dev = score_spans(decoded_spans(dev_candidates, thresholds, labels, nested), dev_references)
        test = score_spans(decoded_spans(test_candidates, thresholds, labels, nested), test_references)
        scores[name] = (dev, test)
        record[name] = {"threshold": threshold, "label_thresholds": label_thresholds, "dev_f1": dev["f1"], "test_f1": test["f1"]}
    threshold, label_thresholds = choices[settings.thresholds]
    model.config.threshold, model.config.label_thresholds = threshold, dict(label_thresholds)
    dev, test = scores[settings.thresholds]
    return dev, test, record


def optimizer_groups(model, settings: TrainingSettings, weight_decay: float) -> list[dict]:
    """Encoder parameters at the encoder learning rate, everything else at the head rate; no decay on
    biases (the width bias included) and norms."""
    encoder_prefix = model.base_model_prefix + "."
    groups: dict[tuple[bool, bool], list] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        is_encoder = name.startswith(encoder_prefix)
        decays = parameter.ndim > 1 and "norm" not in name.lower() and not name.endswith("bias")
        groups.setdefault((is_encoder, decays), []).append(parameter)
    return [
        {"params": params, "lr": settings.encoder_lr if is_encoder else settings.head_lr, "weight_decay": weight_decay if decays else 0.0}
        for (is_encoder, decays), params in groups.items()
    ]


# --- the loop ---------------------------------------------------------------------------------------


def trainable_rows(rows: Dataset) -> Dataset:
    """The train rows with text: an empty text has no character to label, and a batch of only such
    rows would have no tensor to build. They stay in the data and are counted in results.json."""
    empty = {index for index, text in enumerate(rows["text"]) if not text}
    if not empty:
        return rows
    if len(empty) == len(rows):
        raise DataError(f"the train split has {len(rows)} rows and every one has empty text: nothing to train on")
    logger.warning("train: %d rows with empty text are left out of the training batches (results.json: empty_train_rows)", len(empty))
    return rows.select([index for index in range(len(rows)) if index not in empty])


def epoch_order(size: int, seed: int, epoch: int) -> list[int]:
    """The train order of one epoch: a permutation fixed by (seed, epoch), so a resumed run sees it too."""
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed * 1000 + epoch)).tolist()


def main(argv: list[str] | None = None) -> dict:
    """train.py: the command line parsed into settings, then trained on."""
    return train(parse_args(argv))


def train(settings: TrainingSettings) -> dict:
    """One training run as `settings` say (the command line's and the augmentation workflow's); returns results.json's figures."""
    command = card_command(settings_arguments(settings))  # the train.py command giving these settings, before task defaults fill them
    check_encoder(settings.encoder)
    defaults = TASK_DEFAULTS[settings.task]
    weight_decay = defaults["weight_decay"] if settings.weight_decay is None else settings.weight_decay
    if settings.synthetic_weight is None:
        settings = replace(settings, synthetic_weight=defaults["synthetic_weight"])
    accelerator = Accelerator(
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        mixed_precision=settings.mixed_precision,
        log_with=trackers(settings.report_to),
        project_config=ProjectConfiguration(project_dir=settings.output_dir, logging_dir=str(Path(settings.output_dir) / "runs")),
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO if accelerator.is_main_process else logging.WARNING)
    output_dir = Path(settings.output_dir)
    checkpoint_dir, best_dir = output_dir / CHECKPOINT_DIR, output_dir / BEST_DIR
    set_seed(settings.seed)

    corpus = load_training_corpus(settings)
    splits = corpus.splits
    for split in (name for name in splits if name != "train"):  # the train split's are reported by trainable_rows
        report = report_unusable(splits[split], max_chars=None)
        if report["empty_text"]["count"]:
            logger.warning("%s: %d rows with empty text (kept; they carry no spans)", split, report["empty_text"]["count"])
    logger.info("data %s: %s; %d target labels, %d extension labels", settings.data, {split: len(splits[split]) for split in splits}, len(corpus.labels), len(corpus.extension_labels))

    model, tokenizer, collator, untrainable = (build_knowfree if settings.model == "knowfree" else build_baseline)(settings, corpus)
    if untrainable:
        logger.warning("%d training spans are wider than max_span_width=%s and cannot be learnt (they stay in evaluation)", untrainable, model.config.max_span_width)
    if settings.model == "token-classification":
        report = alignment_report(list(splits["train"]), tokenizer, list(corpus.labels))
        logger.warning("token-classification baseline, spans BIO cannot hold exactly in training: %s", report)
    if settings.freeze_embeddings:
        (model.encoder if settings.model == "knowfree" else model.base_model).get_input_embeddings().weight.requires_grad_(False)

    train_rows = trainable_rows(splits["train"])
    mentions = mention_pool(train_rows) if settings.mention_replacement else {}
    batches_per_epoch = math.ceil(len(train_rows) / settings.batch_size)
    updates_per_epoch = math.ceil(batches_per_epoch / settings.gradient_accumulation_steps)
    total_updates = settings.max_steps or updates_per_epoch * settings.epochs
    optimizer = torch.optim.AdamW(optimizer_groups(model, settings, weight_decay))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(settings.warmup_ratio * total_updates), total_updates)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    state = TrainingState()
    accelerator.init_trackers("knowfree", config={key: value for key, value in asdict(settings).items() if isinstance(value, (int, float, str, bool))})
    resume_from = complete_checkpoint(checkpoint_dir) if settings.resume else None
    if resume_from is not None:
        load_or_explain(resume_from, accelerator.load_state)
        state = TrainingState.load(resume_from)
        if accelerator.is_main_process:
            restore_interrupted_swap(best_dir)
        logger.info("resumed from %s at epoch %d, step %d", resume_from, state.epoch, state.global_step)
    elif settings.resume:
        logger.info("no checkpoint in %s; starting fresh", checkpoint_dir)

    def save_checkpoint() -> None:
        """The full resumable state, written beside the checkpoint and swapped in (knowfree/checkpoints.py)."""
        staging = sibling(checkpoint_dir, PARTIAL)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(staging))
        if accelerator.is_main_process:
            state.save(staging)  # last: its presence marks the folder complete
            swap_in(checkpoint_dir)
        accelerator.wait_for_everyone()

    def evaluate_and_select() -> None:
        model.eval()
        dev = evaluate_split(settings, accelerator, model, tokenizer, splits["dev"])
        model.train()
        improved = dev["f1"] > state.best_f1
        entry = {"step": state.global_step, "epoch": state.epoch, "dev_f1": dev["f1"], "dev_precision": dev["precision"], "dev_recall": dev["recall"]}
        if "threshold" in dev:
            entry.update(threshold=dev["threshold"], fixed_threshold_dev_f1=dev["fixed_threshold_f1"])
        state.history.append(entry)
        accelerator.log({f"dev/{key.removeprefix('dev_')}": value for key, value in entry.items() if key not in ("step", "epoch")}, step=state.global_step)
        if improved:
            state.best_f1, state.best_step, state.evaluations_without_improvement = dev["f1"], state.global_step, 0
            if accelerator.is_main_process:
                write_folder_atomically(best_dir, lambda folder: (accelerator.unwrap_model(model).save_pretrained(folder), tokenizer.save_pretrained(folder)))
        else:
            state.evaluations_without_improvement += 1
        logger.info(
            "eval step %d epoch %d: dev P %.4f R %.4f F1 %.4f%s (best %.4f at step %s)%s",
            state.global_step, state.epoch, dev["precision"], dev["recall"], dev["f1"],
            f" at threshold {dev['threshold']:.2f}, {dev['fixed_threshold_f1']:.4f} at {settings.threshold}" if "threshold" in dev else "",
            state.best_f1, state.best_step, "" if improved else f", {state.evaluations_without_improvement} without improvement",
        )
        # until the model scores above zero on dev it is still starting, not on a plateau: patience
        # counts only from then on, so a slow start is not stopped before it finds a single span
        state.stopped_early = state.best_f1 > 0 and state.evaluations_without_improvement >= settings.patience
        save_checkpoint()

    started = time.monotonic()
    model.train()
    try:
        while not state.finished and state.epoch < settings.epochs and not state.stopped_early:
            order = epoch_order(len(train_rows), settings.seed, state.epoch)
            epoch_rows = [train_rows[index] for index in order]
            if settings.mention_replacement:
                # a generator per (seed, epoch, row), not the global RNG: a resumed run draws the same swaps
                epoch_rows = [
                    replace_mentions(row, mentions, settings.mention_replacement, random.Random(f"{settings.seed}:{state.epoch}:{index}"))
                    for row, index in zip(epoch_rows, order)
                ]
            # the loader's own generator keeps iterator start-up from drawing on the global RNG, which
            # drives dropout and is restored on resume
            loader = DataLoader(
                epoch_rows,
                batch_size=settings.batch_size,
                collate_fn=collator,
                generator=torch.Generator().manual_seed(settings.seed + state.epoch),
            )
            loader = accelerator.prepare(loader)
            remaining = accelerator.skip_first_batches(loader, state.batches_in_epoch) if state.batches_in_epoch else loader
            progress = tqdm(remaining, desc=f"epoch {state.epoch + 1}/{settings.epochs}", initial=state.batches_in_epoch, total=len(loader), disable=not accelerator.is_main_process)
            for batch in progress:
                with accelerator.accumulate(model):
                    loss = model(**batch).loss
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                state.batches_in_epoch += 1
                progress.set_postfix(loss=f"{loss.item():.4f}")
                if not accelerator.sync_gradients:
                    continue
                state.global_step += 1
                accelerator.log({"train/loss": loss.item(), "train/learning_rate": scheduler.get_last_lr()[0]}, step=state.global_step)
                if settings.interrupt_after_steps and state.global_step == settings.interrupt_after_steps and not settings.resume:
                    raise KeyboardInterrupt
                out_of_steps = settings.max_steps is not None and state.global_step >= settings.max_steps
                out_of_time = settings.max_train_minutes is not None and time.monotonic() - started > 60 * settings.max_train_minutes
                if settings.eval_every and state.global_step % settings.eval_every == 0:
                    evaluate_and_select()
                if out_of_steps or out_of_time or state.stopped_early:
                    state.stop_reason = "patience" if state.stopped_early else "max_steps" if out_of_steps else "time"
                    if state.stop_reason == "time":
                        logger.warning(
                            "WALL-CLOCK CAP: --max_train_minutes %s stopped training at step %d of %d, before its step budget; "
                            "this model depends on the machine's speed (results.json and the model card say so)",
                            settings.max_train_minutes, state.global_step, total_updates,
                        )
                    state.finished = True
                    break
            else:
                state.epoch += 1
                state.batches_in_epoch = 0
                if not settings.eval_every:
                    evaluate_and_select()
                continue
            break
    except KeyboardInterrupt:
        logger.warning("interrupted at step %d: saving a checkpoint; continue with --resume", state.global_step)
        save_checkpoint()
        raise SystemExit(130)
    if state.best_step is None or (state.history and state.history[-1]["step"] != state.global_step):
        evaluate_and_select()
    state.stop_reason = state.stop_reason or ("patience" if state.stopped_early else "epochs")
    state.finished = True
    save_checkpoint()
    return finish(settings, accelerator, corpus, tokenizer, state, time.monotonic() - started, command)


def finish(settings: TrainingSettings, accelerator: Accelerator, corpus: LabeledCorpus, tokenizer, state: TrainingState, train_seconds: float, command: str) -> dict:
    """Reload the dev-selected model, calibrate its thresholds on dev, score test, write the model
    folder, card and results; push."""
    output_dir = Path(settings.output_dir)
    best_dir = output_dir / BEST_DIR
    selected = next(entry for entry in state.history if entry["step"] == state.best_step)
    thresholds = None
    if settings.model == "knowfree":
        best = KnowFreeModel.from_pretrained(best_dir).to(accelerator.device).eval()
        dev, test, thresholds = choose_thresholds(settings, accelerator, best, corpus.splits)
        dev = {key: dev[key] for key in ("precision", "recall", "f1")}
    else:
        best, _ = build_token_classifier(best_dir, list(corpus.labels))
        best.to(accelerator.device).eval()
        dev = {"precision": selected["dev_precision"], "recall": selected["dev_recall"], "f1": selected["dev_f1"]}
        test = evaluate_split(settings, accelerator, best, tokenizer, corpus.splits["test"])
    results = {
        "model": settings.model,
        "data": str(settings.data),
        "train_rows": len(corpus.splits["train"]),
        "empty_train_rows": sum(1 for text in corpus.splits["train"]["text"] if not text),
        "best_step": state.best_step,
        "steps": state.global_step,
        "stopped_by": state.stop_reason,
        "dev": dev,
        "test": test,
        "thresholds": thresholds,
        "train_seconds": round(train_seconds, 1),
        "mixed_precision": accelerator.mixed_precision,
        "history": state.history,
    }
    if accelerator.is_main_process:
        best.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        (output_dir / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
        recorded = {key: value for key, value in asdict(settings).items() if key not in ("push_to_hub", "interrupt_after_steps")}
        (output_dir / "training_args.json").write_text(json.dumps(recorded, indent=2), encoding="utf-8")
        extension_labels = list(getattr(best.config, "extension_labels", []) or [])
        write_model_card(
            output_dir,
            model_name=settings.push_to_hub or output_dir.name,
            architecture="KnowFREE span" if settings.model == "knowfree" else "token-classification (BIO)",
            task={"ner": "named-entity-recognition", "segmentation": "word-segmentation", "pos": "part-of-speech-tagging"}[settings.task],
            dataset=str(settings.data),
            base_model=str(settings.encoder),
            train_rows=len(corpus.splits["train"]),
            subset_note=f", K = {settings.k}" if settings.k else "",
            target_labels=list(corpus.labels),
            extension_labels=extension_labels,
            dev_metrics=results["dev"],
            test_metrics=test,
            thresholds=thresholds,
            stopped_by=state.stop_reason,
            settings=recorded,
            command=command,
            examples=list(corpus.splits["test"]["text"][:3]),
            repo_or_path=settings.push_to_hub or str(output_dir),
            license=settings.license,
            language=settings.language,
            hub_dataset_id=settings.hub_dataset_id,
        )
        print_report(results)
        if settings.push_to_hub:
            push_folder(output_dir, settings.push_to_hub, settings.hub_private)
    accelerator.log({f"test/{key}": test[key] for key in ("precision", "recall", "f1")}, step=state.global_step)
    accelerator.wait_for_everyone()
    accelerator.end_training()  # closes the trackers (and, with several processes, the process group): last
    return results


def card_command(arguments: list[str]) -> str:
    """The command the card shows to repeat this training: its train.py arguments, secrets redacted."""
    return "accelerate launch train.py " + shlex.join(redact_arguments(arguments))


def print_report(results: dict) -> None:
    test = results["test"]
    lines = [
        f"best dev F1 {results['dev']['f1']:.4f} at step {results['best_step']}; training took {results['train_seconds']:.0f} s",
        f"test  P {test['precision']:.4f}  R {test['recall']:.4f}  F1 {test['f1']:.4f}  ({test['num_correct']}/{test['num_gold']} gold spans found, {test['num_predicted']} predicted)",
    ]
    for label, figures in sorted(test["per_label"].items()):
        lines.append(f"  {label:<16} P {figures['precision']:.4f}  R {figures['recall']:.4f}  F1 {figures['f1']:.4f}  support {figures['support']}")
    print("\n".join(lines), flush=True)


def push_folder(folder: Path, repo_id: str, private: bool) -> None:
    """Upload the final model folder (not the checkpoints) to the Hub."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), ignore_patterns=[f"{run_folder}/*" for name in (CHECKPOINT_DIR, BEST_DIR) for run_folder in run_folders(name)], commit_message="Upload KnowFREE model")
    logger.info("pushed %s to %s", folder, repo_id)
