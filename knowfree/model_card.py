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
(`"flat"` or `"nested"`) arguments.

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
