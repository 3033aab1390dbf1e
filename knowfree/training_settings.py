"""train.py's options as one typed dataclass, and the command line built from it.

Each TrainingSettings field is one option: its type and default are the field's, and its group, help
text and argparse details sit in the field's metadata, so the option list is written once. The
command line parses into TrainingSettings (`knowfree.training.parse_args`); code that trains in
process (the augmentation workflow, the benchmarks) builds TrainingSettings directly, and
`settings_arguments` turns settings back into the train.py arguments that give them, for the card.
"""

import argparse
import dataclasses
import types
from dataclasses import dataclass, field, fields
from typing import Any

from knowfree.model_card import DEFAULT_LICENSE, hub_license, hub_repo_id

TASK_DEFAULTS = {
    # Weight decay and synthetic-row weight beta per task type, approximating appendix G's Table 6,
    # which gives them per data set: the NER rows there are 1e-3 / 0.4 except Weibo (beta 1.0) and
    # Youku (weight decay 1e-2); segmentation and POS are 1e-2 / 1.0. README "Paper settings" has the
    # table and the flags that reproduce each row.
    "ner": {"weight_decay": 1e-3, "synthetic_weight": 0.4},
    "segmentation": {"weight_decay": 1e-2, "synthetic_weight": 1.0},
    "pos": {"weight_decay": 1e-2, "synthetic_weight": 1.0},
}
SPAN_WIDTH_MARGIN = 8
# The default band never exceeds this many characters: the head's work grows with the width, and one
# outlier span (Resume K = 250: 58 characters, none over 32 in its test set; cmeee: 118) would otherwise
# size every sentence's band. At 32, cmeee's longest test sentence predicts in 1.1-1.5x the baseline's
# time instead of 4.9-5.3x (W = 126), and 61 of cmeee's 15,847 test spans are out of reach (README, "Span width").
SPAN_WIDTH_CAP = 32
THRESHOLD_CHOICES = ("global", "per_label", "fixed")
REPORT_TO = ("none", "tensorboard", "wandb", "all")


def unit_interval(text: str) -> float:
    """argparse type of a probability: a number from 0 to 1."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability from 0 to 1")
    return value


def option(group: str, help: str | None = None, default: Any = dataclasses.MISSING, **parser_options: Any) -> Any:
    """A TrainingSettings field that is the train.py option of its name (no default: a required option).

    `parser_options` go to argparse's add_argument as they are (choices, metavar, a `type` checking
    the value, an `action`); the value type otherwise comes from the field's annotation.
    """
    return field(default=default, metadata={"group": group, "help": help, "parser_options": parser_options})


@dataclass(kw_only=True)
class TrainingSettings:
    """Everything one training run is told; the field order is the option order of `--help` and training_args.json."""

    # data
    data: str = option("data", "JSONL split folder (train/dev/test.jsonl + labels.txt), a CoNLL-style folder (train/dev/test .txt/.conll/.bio/.bmes: token and tag per line), a save_to_disk folder, or a Hub dataset repo id (span rows, or tokens + ner_tags)")
    tag_scheme: str | None = option("data", "the tag scheme of tagged data (default: BIOES when E-/S- tags occur, else BIO; IOB1 only when named)", None, choices=("BIO", "BIOES", "IOB1"))
    k: int | None = option("data", "low-resource train subset of K sentences (uses train_K.jsonl when present; nested 250 < 500 < 1000)", None)
    k_shot: int | None = option("data", "N-way K-shot greedy sampling instead: every target label gets at least this many mentions", None)
    train_split: str = option("data", "split(s) to train on, comma-separated and concatenated: 'fusion' or 'fusion,synthetic' for a knowfree-augment dataset", "train")
    train_file: str | None = option("data", "a JSONL file replacing the train split (relative to --data)", None)
    data_seed: int = option("data", "seed of the subset permutation (42 reproduces the shared train_K files)", 42)
    task: str = option("data", "task type; sets --weight_decay and --synthetic_weight to appendix G's values for the type (ner 1e-3 / 0.4, segmentation and pos 1e-2 / 1.0; the paper's Weibo run used --synthetic_weight 1.0, its Youku run --weight_decay 1e-2)", "ner", choices=sorted(TASK_DEFAULTS))
    mention_replacement: float = option("data", "each epoch, swap each target mention with this probability for another training mention of its label (online augmentation; 0 turns it off; README: the recipe)", 0.0, type=unit_interval)
    max_train_rows: int | None = option("data", "cap the train split (for smoke runs)", None)
    max_eval_rows: int | None = option("data", "cap dev and test (for smoke runs; never for reported figures)", None)

    # model
    model: str = option("model", "KnowFREE span model, or the AutoModelForTokenClassification BIO baseline on the same encoder", "knowfree", choices=["knowfree", "token-classification"])
    encoder: str = option("model", "pretrained encoder folder or Hub id (build the offline e5 with knowfree-build-encoder)", "encoders/multilingual-e5-small")
    max_span_width: int | None = option("model", f"longest span in characters (default: longest target span in training + {SPAN_WIDTH_MARGIN}, at most {SPAN_WIDTH_CAP}; wider training spans are skipped and counted)", None)
    decoding: str | None = option("model", "default: nested when training spans overlap, else flat", None, choices=["flat", "nested"])
    no_local_attention: bool = option("model", "ablation: drop the local span attention", False)
    extension_weight: str = option("model", "alpha for extension labels: 'auto' (eq. 20: 0.5 * mean target count / label count, capped at 1) or a number", "auto")
    synthetic_weight: float | None = option("model", "beta for rows marked synthetic (default from --task)", None)
    negative_weight: float = option("model", "loss weight of the (span, label) terms whose target is 0; 1.0 is eq. 18 as written (README: the recipe)", 0.1)
    character_embeddings: bool = option("model", "add each character's own input embedding to its state, for boundaries inside multi-character pieces", False, action=argparse.BooleanOptionalAction)
    threshold: float = option("model", "decision threshold on span scores before calibration (and with --thresholds fixed)", 0.5)
    thresholds: str = option("model", "decision thresholds stored with the model: one chosen on dev for every label (global), one per label with enough dev spans (per_label), or --threshold (fixed); every evaluation selects on dev F1 at the best global threshold unless fixed", "global", choices=THRESHOLD_CHOICES)
    config_overrides: str = option("model", "other KnowFreeConfig values, e.g. 'projection_size=100,local_attention_window=2' (values parsed as JSON when possible)", "")

    # optimisation
    encoder_lr: float = option("optimisation", "learning rate of the pretrained encoder (appendix G: 2e-5; README: the recipe)", 5e-5)
    head_lr: float = option("optimisation", "learning rate of every other module (appendix G: 1e-3; README: the recipe)", 3e-3)
    weight_decay: float | None = option("optimisation", "default from --task (1e-3 NER, 1e-2 segmentation/POS)", None)
    warmup_ratio: float = option("optimisation", "linear warm-up share of the schedule, then linear decay", 0.02)
    batch_size: int = option("optimisation", "sentences per batch per process", 8)
    eval_batch_size: int = option("optimisation", None, 32)
    gradient_accumulation_steps: int = option("optimisation", None, 1)
    epochs: int = option("optimisation", None, 20)
    max_steps: int | None = option("optimisation", "stop after this many optimizer steps (the schedule spans them)", None)
    max_grad_norm: float = option("optimisation", None, 1.0)
    freeze_embeddings: bool = option("optimisation", "freeze the encoder's embedding table (96M of e5's 118M parameters; much faster on CPU)", False)
    seed: int = option("optimisation", None, 42)

    # checkpoints and selection
    output_dir: str = option("checkpoints and selection")
    eval_every: int | None = option("checkpoints and selection", "evaluate on dev every N optimizer steps (default: every epoch)", None)
    patience: int = option("checkpoints and selection", "stop after this many evaluations without dev F1 improvement, counted once dev F1 is above zero (--epochs/--max_steps still cap a run that never gets there)", 5)
    max_train_minutes: float | None = option("checkpoints and selection", "a safety cap only: the budget is --epochs/--max_steps, which give the same model on any machine of one CPU kind; if this cap stops training first, the log, results.json (stopped_by: time) and the model card say so", None)
    resume: bool = option("checkpoints and selection", "continue from output_dir/checkpoint", False)
    interrupt_after_steps: int | None = option("checkpoints and selection", argparse.SUPPRESS, None)
    push_to_hub: str | None = option("checkpoints and selection", "push the final model folder (weights, code, tokenizer, card, results) to this Hub repo", None, metavar="REPO")
    hub_private: bool = option("checkpoints and selection", None, False)
    hub_dataset_id: str | None = option("checkpoints and selection", "the Hub dataset repo --data is a local copy of, named in the model card's datasets (a --data repo id is named without it)", None, type=hub_repo_id)
    license: str = option("checkpoints and selection", "Hub license id stated by the model card; the default is the knowfree code's own; set the training data's terms where they bind the model (e.g. cc-by-sa-3.0)", DEFAULT_LICENSE, type=hub_license)
    language: str | None = option("checkpoints and selection", "language code stated by the model card (default: zh when the test sentences are Chinese, else none)", None)

    # logging and precision
    report_to: str = option("logging and precision", "experiment trackers through accelerate: training loss per step, dev P/R/F1 and threshold per evaluation, test figures at the end (tensorboard writes to output_dir/runs)", "none", choices=REPORT_TO)
    mixed_precision: str | None = option("logging and precision", "default: what `accelerate launch` (or its config) says; bf16 runs on CPUs too, fp16 needs a GPU", None, choices=("no", "fp16", "bf16"))


def value_type(setting: dataclasses.Field) -> type:
    """The type a field holds when set: int for `int | None`."""
    annotation = setting.type
    if isinstance(annotation, types.UnionType):
        annotation = next(member for member in annotation.__args__ if member is not type(None))
    return annotation


def training_parser(description: str | None = None, overrides_only: bool = False) -> argparse.ArgumentParser:
    """train.py's parser, built from the TrainingSettings fields in their order and groups.

    With `overrides_only`, nothing is required and an option not given is left out of the result
    (no default), so the result holds only what the arguments change.
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for setting in fields(TrainingSettings):
        group_name = setting.metadata["group"]
        if group_name not in groups:
            groups[group_name] = parser.add_argument_group(group_name)
        options = dict(setting.metadata["parser_options"])
        kind = value_type(setting)
        if kind is bool:
            options.setdefault("action", "store_true")
        elif kind is not str:
            options.setdefault("type", kind)
        if overrides_only:
            options["default"] = argparse.SUPPRESS
        elif setting.default is dataclasses.MISSING:
            options["required"] = True
        else:
            options["default"] = setting.default
        groups[group_name].add_argument(f"--{setting.name}", help=setting.metadata["help"], **options)
    return parser


def training_overrides(arguments: list[str]) -> dict[str, Any]:
    """The TrainingSettings fields that train.py `arguments` set, with their values (for dataclasses.replace)."""
    return vars(training_parser(overrides_only=True).parse_args(arguments))


def settings_arguments(settings: TrainingSettings) -> list[str]:
    """train.py arguments that give `settings`: each option whose value is not its default, in field order."""
    arguments: list[str] = []
    for setting in fields(settings):
        value = getattr(settings, setting.name)
        if value == setting.default:
            continue
        flag = f"--{setting.name}"
        if setting.metadata["parser_options"].get("action") is argparse.BooleanOptionalAction:
            arguments.append(flag if value else f"--no-{setting.name}")
        elif value_type(setting) is bool:
            arguments.append(flag)
        else:
            arguments += [flag, str(value)]
    return arguments
