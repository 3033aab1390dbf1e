"""The dataset card of an augmented dataset: where the rows came from and what was added to them."""

import json


def _table(rows: list[tuple], header: tuple) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render_dataset_card(metadata: dict, split_sizes: dict[str, int], train_command: str) -> str:
    """Markdown body (no front matter) describing source, annotator, label sets, alpha/beta and prompts."""
    provenance = metadata["provenance"]
    alphas = metadata.get("extension_label_weights", {})
    counts = metadata.get("extension_span_counts", {})
    parts = [
        "# KnowFREE augmented dataset",
        "",
        f"Built by `knowfree-augment` from `{provenance.get('source')}`"
        + (f" (K = {provenance['k']})" if provenance.get("k") else "")
        + (f" ({provenance['k_shot']}-shot: every target label at least {provenance['k_shot']} mentions)" if provenance.get("k_shot") else "")
        + f" on {provenance.get('date')}. Spans are character offsets into `text`, end exclusive.",
        "",
        "## Splits",
        _table(sorted(split_sizes.items()), ("split", "rows")),
        "",
        "`fusion` holds the training rows with the extension spans added by the annotator (column `extensions`); "
        "`synthetic` (when present) holds LLM explanations annotated by a KnowFREE model trained on `fusion`, with "
        "`synthetic = true`. The other splits are the source's, untouched.",
        "",
        "## Annotation",
        f"- annotator: `{provenance.get('annotator')}` ({provenance.get('annotator_version')})",
        f"- prompts version: `{provenance.get('prompts_version')}` (full templates in `augmentation.json`)",
        f"- annotation counts: `{json.dumps(metadata.get('annotation_counts', {}), ensure_ascii=False)}`",
        "",
        "## Labels",
        f"Target labels ({len(metadata['target_labels'])}): {', '.join(metadata['target_labels'])}",
        "",
        f"Extension labels ({len(metadata.get('extension_labels', []))}; trained with weight alpha, masked at inference):",
        "",
        _table([(label, counts.get(label, 0), f"{alphas.get(label, 0):.4f}") for label in metadata.get("extension_labels", [])], ("label", "spans", "alpha (eq. 20)")),
        "",
    ]
    rare = metadata.get("rare_labels", {})
    if rare.get("labels"):
        parts += [
            f"Rare extension labels (fewer than {rare['min_label_count']} spans) folded into their kind's catch-all or dropped:",
            "",
            _table([(label, info["spans"], info["folded_into"] or "dropped") for label, info in rare["labels"].items()], ("label", "spans", "became")),
            "",
        ]
    merging = metadata.get("merging", {})
    if merging.get("label_map"):
        changed = [entry for entry in merging["label_map"] if entry["decision"] == "merge" and entry["group"] != entry["member"]]
        parts += [
            "## Label map",
            f"{len(merging['label_map'])} entity types"
            + (" (decided by an edited label map file)" if merging.get("from_label_map_file") else "")
            + f"; {len(changed)} merged into another name, the rest kept as named. Edit `label_map.json` and run "
            "`knowfree-augment extend ... --label_map label_map.json` to change it without new LLM requests.",
            "",
            _table([(entry["member"], entry["group"] if entry["decision"] == "merge" else entry["member"], entry["samples"]) for entry in merging["label_map"]], ("type", "label", "samples")),
            "",
        ]
    if merging.get("decisions"):
        parts += [
            f"## Synonym merging (epsilon = {merging['epsilon']}, top-p = {merging['top_p']})",
            _table(
                [(d["group"], d["type"], d["reference"], d["samples"], f"{d['distance']:.4f}", f"{d['threshold']:.4f}", "merged" if d["merged"] else "kept apart") for d in merging["decisions"]],
                ("group", "type", "reference", "samples", "distance", "threshold", "decision"),
            ),
            "",
        ]
    synthesis = metadata.get("synthesis")
    if synthesis:
        parts += ["## Synthesis", f"`{json.dumps(synthesis, ensure_ascii=False)}`", ""]
    parts += ["## Training on it", "```bash", train_command, "```", ""]
    return "\n".join(parts)
