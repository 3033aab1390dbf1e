"""The README.md model card written beside every trained model: metrics, labels, data, settings, usage."""

import json
from pathlib import Path

CARD_TEMPLATE = """---
library_name: transformers
pipeline_tag: token-classification
language:
- zh
license: apache-2.0
tags:
- knowfree
- span-labeling
- {task}
base_model: {base_model}
datasets:
- {dataset}
metrics:
- precision
- recall
- f1
widget:
{widget}
model-index:
- name: {model_name}
  results:
  - task:
      type: token-classification
      name: {task}
    dataset:
      name: {dataset}
      type: {dataset}
      split: test
    metrics:
    - type: f1
      value: {test_f1:.4f}
      name: span F1 (micro)
    - type: precision
      value: {test_precision:.4f}
      name: span precision (micro)
    - type: recall
      value: {test_recall:.4f}
      name: span recall (micro)
---

# {model_name}

A {architecture} model for **{task}**, trained with [knowfree](https://github.com/) on `{dataset}`
({train_rows} training sentences{subset_note}). Spans are character offsets into the input text,
`end` exclusive; text longer than the encoder limit is read in overlapping windows, never truncated.

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
"""


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
) -> Path:
    """Render the card to `output_dir/README.md`; the widget examples come from real sentences."""
    widget = "\n".join(f"- text: {json.dumps(text, ensure_ascii=False)}" for text in examples) or "- text: 你好"
    extension_note = (
        f"Trained with {len(extension_labels)} extension labels (never predicted): {', '.join(extension_labels[:30])}"
        + (" ..." if len(extension_labels) > 30 else "")
        if extension_labels
        else "No extension labels were used."
    )
    card = CARD_TEMPLATE.format(
        task=task,
        base_model=base_model,
        dataset=dataset,
        widget=widget,
        model_name=model_name,
        architecture=architecture,
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
    )
    path = output_dir / "README.md"
    path.write_text(card, encoding="utf-8")
    return path
