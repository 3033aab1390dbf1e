"""The dataset card of an augmented dataset: where the rows came from and what was added to them.

`dataset_card_data` builds the front matter the Hub validates and indexes (task, license, size, language);
`render_dataset_card` the body a reader sees.
"""

import json
from collections.abc import Mapping, Sequence

from datasets import Dataset
from huggingface_hub import DatasetCardData

TASK_IDS = {"ner": ["named-entity-recognition"], "segmentation": None, "pos": ["part-of-speech"]}
"""The Hub's token-classification task ids per task; it has none for word segmentation."""
TASK_TAGS = {"ner": ["named-entity-recognition"], "segmentation": ["word-segmentation"], "pos": ["part-of-speech-tagging"]}
SIZE_CATEGORIES = ("n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B", "1B<n<10B", "10B<n<100B", "100B<n<1T")
"""The Hub's size buckets, the first below 10**3 rows and each next one ten times larger; beyond them, n>1T."""


def _tiles(text: str, spans: list[dict]) -> bool:
    position = 0
    for span in sorted(spans, key=lambda span: span["start"]):
        if span["start"] != position:
            return False
        position = span["end"]
    return position == len(text)


def labelling_task(texts: Sequence[str], entities: Sequence[list[dict]], target_labels: Sequence[str]) -> str:
    """What the target spans annotate, read from the rows since no task is recorded with them: spans tiling every
    sentence are words, labelled by one label (segmentation) or by several (POS tags); anything else is entities."""
    tiled = [_tiles(text, spans) for text, spans in zip(texts, entities) if text]
    if not tiled or not all(tiled):
        return "ner"
    return "segmentation" if len(target_labels) == 1 else "pos"


def size_category(rows: int) -> str:
    """The Hub's size bucket for a row count (`n<1K`, `1K<n<10K`, ...)."""
    for exponent, category in enumerate(SIZE_CATEGORIES, start=3):
        if rows < 10**exponent:
            return category
    return "n>1T"


def dataset_card_data(metadata: dict, splits: Mapping[str, Dataset], license: str | list[str] | None) -> DatasetCardData:
    """Front matter of the card: token classification, tagged by the task the source's train rows show, with the
    license (left out when unknown), the size bucket of all splits together and the language of the text."""
    task = labelling_task(splits["train"]["text"], splits["train"]["entities"], metadata["target_labels"])
    return DatasetCardData(
        language=[metadata["provenance"].get("language", "zh")],
        license=license,
        task_categories=["token-classification"],
        task_ids=TASK_IDS[task],
        tags=["knowfree", *TASK_TAGS[task], "low-resource"],
        size_categories=[size_category(sum(len(split) for split in splits.values()))],
    )


def license_section(license: str | list[str] | None, source: str, inherited: bool) -> str:
    """Markdown saying which license the rows carry and where it comes from, or that none is known."""
    if license is None:
        return (
            f"## License\n\nNone is stated: the source `{source}` states no license the Hub knows. Its own terms apply "
            "to these rows, which are derived from it; read them before sharing.\n"
        )
    stated = ", ".join(f"`{name}`" for name in ([license] if isinstance(license, str) else license))
    origin = f", the license the source `{source}` states: these rows are derived from it" if inherited else ""
    return f"## License\n\n{stated}{origin}.\n"


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
            f"## Synonym merging (epsilon = {merging['epsilon']}, top-p = {merging['top_p']}, name similarity at least {merging['min_name_similarity']})",
            _table(
                [
                    (d["group"], d["type"], d["reference"], d["samples"], f"{d['distance']:.4f}", f"{d['threshold']:.4f}", f"{d['name_similarity']:.3f}", "merged" if d["merged"] else "kept apart")
                    for d in merging["decisions"]
                ],
                ("group", "type", "reference", "samples", "distance", "threshold", "name similarity", "decision"),
            ),
            "",
        ]
    synthesis = metadata.get("synthesis")
    if synthesis:
        parts += ["## Synthesis", f"`{json.dumps(synthesis, ensure_ascii=False)}`", ""]
    parts += ["## Training on it", "```bash", train_command, "```", ""]
    return "\n".join(parts)
