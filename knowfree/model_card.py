"""The README.md model card written beside every trained model: Hub metadata, metrics, labels, data, usage.

The front matter is built with huggingface_hub (`ModelCardData`, `EvalResult` for the model-index)
because the Hub validates it on push: `base_model` and `datasets` name Hub repos, so a local folder a
run was given never appears there. An encoder folder converted by `knowfree-build-encoder` records
the Hub id it came from under `SOURCE_MODEL_KEY` in its config.json; any other local folder has no
known id and the card names no base model rather than a path.
"""

import argparse
import importlib.metadata
import json
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

SOURCE_MODEL_KEY = "knowfree_source_model"
"""config.json key of an encoder folder naming the Hub model its weights were converted from."""

DEFAULT_LICENSE = "apache-2.0"
"""The license of the knowfree code every pushed model carries as remote code; the multilingual-e5-small
weights it fine-tunes are MIT, which allows it. Training data may add terms of its own: pass `--license`."""

HUB_LICENSES = frozenset(
    """
    apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0 bigcode-openrail-m
    afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0
    cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0
    cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0
    cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 agpl-3.0 gfdl gpl
    gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc lppl-1.3c ms-pl mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql
    ofl-1.1 ncsa unlicense zlib pddl lgpl-lr deepfloyd-if-license llama2 gemma unknown other
    """.split()
)
"""The license identifiers a Hub card may state (huggingface.co/docs/hub/repositories-licenses)."""

CITATION = """@inproceedings{lai-etal-2025-improving,
    title = {Improving Low-Resource Sequence Labeling with Knowledge Fusion and Contextual Label Explanations},
    author = {Lai, Peichao and Gan, Jiaxin and Ye, Feiyang and Zhang, Wentao and Fu, Fangcheng and Wang, Yilei and Cui, Bin},
    booktitle = {Proceedings of the 2025 Conference on Empirical Methods in Natural Language Processing},
    month = nov,
    year = {2025},
    address = {Suzhou, China},
    publisher = {Association for Computational Linguistics},
}"""
VERSIONED_LIBRARIES = ("knowfree", "transformers", "torch")
SPAN_METRICS = ("f1", "precision", "recall")

CARD_BODY = """
# {model_name}

A {architecture} model for **{task}**, trained with knowfree (an implementation of KnowFREE,
Lai et al., EMNLP 2025, "Improving Low-Resource Sequence Labeling with Knowledge Fusion and
Contextual Label Explanations"; citation below) on {dataset_text} ({train_rows} training sentences{subset_note}),
starting from the encoder {encoder_text}. Spans are character offsets into the input text, `end` exclusive;
text longer than the encoder limit is read in overlapping windows, never truncated.

## Results (exact-match span metric, test split; checkpoint selected on dev)

| split | precision | recall | F1 |
|---|---|---|---|
| dev (best) | {dev_precision:.4f} | {dev_recall:.4f} | {dev_f1:.4f} |
| test | {test_precision:.4f} | {test_recall:.4f} | {test_f1:.4f} |

{thresholds_note}

{stop_note}

Per label (test):

| label | precision | recall | F1 | support |
|---|---|---|---|---|
{per_label_rows}

## Labels

Predicted labels: {target_labels}.
{extension_note}

## Usage

```python
from transformers import AutoModel

model = AutoModel.from_pretrained("{repo_or_path}", trust_remote_code=True)
model.predict("{example}")
# [{{"start": ..., "end": ..., "label": ..., "score": ..., "text": ...}}, ...]
```

`predict` takes a string or a list of strings, with `batch_size`, `threshold` and `decoding`
(`"flat"` or `"nested"`) arguments; without `threshold` it uses the thresholds stored in the config.

`trust_remote_code=True` runs this repository's Python files on your machine. Pin the commit you have
read, so a later push cannot change what runs: `AutoModel.from_pretrained(..., trust_remote_code=True,
revision="<commit hash>")`.

## Training

```
{command}
```

| setting | value |
|---|---|
{settings_rows}

## Framework versions

{version_rows}

## License

{license_note}

## Citation

```bibtex
{citation}
```
"""


def hub_license(value: str) -> str:
    """Argument type of `--license`: refuse at once an identifier the Hub would refuse at push time."""
    if value not in HUB_LICENSES:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a Hub license identifier (e.g. apache-2.0, mit, cc-by-sa-4.0; "
            "'other' for the rest; list: https://huggingface.co/docs/hub/repositories-licenses)"
        )
    return value


def hub_repo_id(value: str) -> str:
    """Argument type of `--hub_dataset_id`: a repo id the card can name, checked before hours of training."""
    try:
        validate_repo_id(value)
    except HFValidationError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def is_hub_repo_id(value: str) -> bool:
    """Whether `value` names a Hub repo: shaped like `name` or `org/name` and not a local path that exists."""
    if Path(value).exists():
        return False
    try:
        validate_repo_id(value)
    except HFValidationError:
        return False
    return True


def encoder_hub_id(encoder: str) -> str | None:
    """The Hub id of the model an encoder came from: the one a local folder records, or the id it was loaded by."""
    config = Path(encoder) / "config.json"
    if config.is_file():
        return json.loads(config.read_text(encoding="utf-8")).get(SOURCE_MODEL_KEY)
    return encoder if is_hub_repo_id(encoder) else None


def hub_datasets(data: str, hub_dataset_id: str | None) -> list[str] | None:
    """The Hub dataset repos trained on: `hub_dataset_id` for a local copy, else `data` when it is a repo id."""
    if hub_dataset_id:
        return [hub_dataset_id]
    return [data] if is_hub_repo_id(data) else None


def _script_of(char: str) -> str:
    return unicodedata.name(char, "").split(" ")[0].split("-")[0]


def data_language(texts: Sequence[str]) -> str | None:
    """'zh' when Han characters are at least a fifth of the letters and outnumber kana and hangul (the marks of
    Japanese and Korean, which use Han characters too) ten to one; None otherwise, as a script names no language."""
    scripts = [_script_of(char) for text in texts for char in text if char.isalpha()]
    han = scripts.count("CJK")
    kana_or_hangul = sum(scripts.count(script) for script in ("HIRAGANA", "KATAKANA", "HANGUL"))
    return "zh" if scripts and han * 5 >= len(scripts) and han >= 10 * kana_or_hangul else None


def library_versions() -> dict[str, str]:
    """Versions of the libraries that trained the model, so a reader can rebuild the same environment."""
    versions = {}
    for name in VERSIONED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed (run from a source checkout)"
    return versions


def _per_label_rows(per_label: dict) -> str:
    rows = [
        f"| {label} | {figures['precision']:.4f} | {figures['recall']:.4f} | {figures['f1']:.4f} | {figures['support']} |"
        for label, figures in sorted(per_label.items())
    ]
    return "\n".join(rows) or "| (none) | | | | |"


def thresholds_note(thresholds: dict | None) -> str:
    """The decision thresholds the model predicts with, and the dev/test F1 of each way of choosing them."""
    if thresholds is None:
        return "Decisions: the argmax of the BIO tags (no threshold)."
    chosen = thresholds[thresholds["chosen"]]
    per_label = ", ".join(f"`{label}` {value:.2f}" for label, value in sorted(chosen["label_thresholds"].items()))
    lines = [
        f"Decision thresholds, chosen on dev ({thresholds['chosen']}): {chosen['threshold']:.2f}"
        + (f" for every label but {per_label}." if per_label else " for every label."),
        "",
        "| thresholds | value | dev F1 | test F1 |",
        "|---|---|---|---|",
    ]
    for name in ("fixed", "global", "per_label"):
        entry = thresholds[name]
        value = f"{entry['threshold']:.2f}" + (f", {len(entry['label_thresholds'])} labels their own" if entry["label_thresholds"] else "")
        used = " (used)" if name == thresholds["chosen"] else ""
        lines.append(f"| {name}{used} | {value} | {entry['dev_f1']:.4f} | {entry['test_f1']:.4f} |")
    return "\n".join(lines)


def stop_note(stopped_by: str | None) -> str:
    """What ended training; a wall-clock stop is a warning, since the same command then gives other models elsewhere."""
    if stopped_by == "time":
        return (
            "**Warning: training was stopped by its wall-clock cap (`--max_train_minutes`) before its step budget.** "
            "This model depends on the speed of the machine that trained it; the same command elsewhere gives another."
        )
    reasons = {"epochs": "its epoch budget", "max_steps": "its step budget (`--max_steps`)", "patience": "early stopping on dev F1 (`--patience`)"}
    return f"Training ended by {reasons.get(stopped_by, 'an unrecorded reason')}."


def _dataset_text(data: str, datasets: list[str] | None) -> str:
    if datasets is None:
        return f"`{data}`"
    link = f"[{datasets[0]}](https://huggingface.co/datasets/{datasets[0]})"
    return link if datasets[0] == data else f"{link} (its local copy `{data}`)"


def _encoder_text(encoder: str, hub_id: str | None) -> str:
    if hub_id is None:
        return f"`{encoder}` (a local folder that records no Hub id, so the metadata names no base model)"
    link = f"[{hub_id}](https://huggingface.co/{hub_id})"
    return link if hub_id == encoder else f"{link} (its local conversion `{encoder}`)"


def _license_note(license: str) -> str:
    return (
        f"The repository states `{license}` (train.py `--license`, default `{DEFAULT_LICENSE}`: the license of the "
        "knowfree code it carries). The training data and the encoder keep their own terms; a data set's license may "
        "restrict what this model can be used for, so check it and set `--license` to match."
    )


def model_card_data(
    *,
    model_name: str,
    task: str,
    base_model: str | None,
    datasets: list[str] | None,
    dataset_name: str,
    test_metrics: dict,
    license: str,
    language: str | None,
    examples: list[str],
) -> ModelCardData:
    """The front matter: Hub ids only for base_model and datasets, test span metrics as the model-index."""
    dataset_id = datasets[0] if datasets else dataset_name
    results = [
        EvalResult(
            task_type="token-classification", task_name=task, dataset_type=dataset_id, dataset_name=dataset_name,
            dataset_split="test", metric_type=metric, metric_value=round(float(test_metrics[metric]), 4),
            metric_name=f"span {metric} (micro)",
        )  # fmt: skip
        for metric in SPAN_METRICS
    ]
    return ModelCardData(
        model_name=model_name,
        base_model=base_model,
        datasets=datasets,
        language=[language] if language else None,
        license=license,
        library_name="transformers",
        pipeline_tag="token-classification",
        tags=["knowfree", "span-labeling", task],
        metrics=list(SPAN_METRICS),
        eval_results=results,
        widget=[{"text": text} for text in examples] or [{"text": "你好"}],
    )


def write_model_card(
    output_dir: Path,
    *,
    model_name: str,
    architecture: str,
    task: str,
    dataset: str,
    base_model: str,
    train_rows: int,
    subset_note: str,
    target_labels: list[str],
    extension_labels: list[str],
    dev_metrics: dict,
    test_metrics: dict,
    thresholds: dict | None,
    stopped_by: str | None,
    settings: dict,
    command: str,
    examples: list[str],
    repo_or_path: str,
    license: str = DEFAULT_LICENSE,
    language: str | None = None,
    hub_dataset_id: str | None = None,
) -> Path:
    """Render the card to `output_dir/README.md`.

    `dataset` and `base_model` are what the run was given (paths or repo ids); only repo ids reach the
    metadata. `language` defaults to the one the examples (real sentences) are written in, when the script
    tells it. The widget examples come from real sentences too.
    """
    datasets = hub_datasets(dataset, hub_dataset_id)
    encoder_id = encoder_hub_id(base_model)
    data = model_card_data(
        model_name=model_name, task=task, base_model=encoder_id, datasets=datasets,
        dataset_name=datasets[0] if datasets else Path(dataset).name, test_metrics=test_metrics, license=license,
        language=language or data_language(examples), examples=examples,
    )  # fmt: skip
    extension_note = (
        f"Trained with {len(extension_labels)} extension labels (never predicted): {', '.join(extension_labels[:30])}"
        + (" ..." if len(extension_labels) > 30 else "")
        if extension_labels
        else "No extension labels were used."
    )
    body = CARD_BODY.format(
        model_name=model_name,
        architecture=architecture,
        task=task,
        dataset_text=_dataset_text(dataset, datasets),
        encoder_text=_encoder_text(base_model, encoder_id),
        train_rows=train_rows,
        subset_note=subset_note,
        dev_precision=dev_metrics.get("precision", 0.0),
        dev_recall=dev_metrics.get("recall", 0.0),
        dev_f1=dev_metrics.get("f1", 0.0),
        test_precision=test_metrics["precision"],
        test_recall=test_metrics["recall"],
        test_f1=test_metrics["f1"],
        per_label_rows=_per_label_rows(test_metrics.get("per_label", {})),
        thresholds_note=thresholds_note(thresholds),
        stop_note=stop_note(stopped_by),
        target_labels=", ".join(f"`{label}`" for label in target_labels),
        extension_note=extension_note,
        repo_or_path=repo_or_path,
        example=(examples[0] if examples else "你好").replace('"', '\\"'),
        command=command,
        settings_rows="\n".join(f"| {key} | {value} |" for key, value in settings.items()),
        version_rows="\n".join(f"- {name}: {version}" for name, version in library_versions().items()),
        license_note=_license_note(license),
        citation=CITATION,
    )
    path = output_dir / "README.md"
    ModelCard(f"---\n{data.to_yaml()}\n---\n{body}").save(path)
    return path
