"""Writing an augmented dataset locally (JSONL + save_to_disk) and pushing it as a Hub dataset.

The folder is a complete `knowfree.data.load_corpus` source: `<split>.jsonl` files, the arrow
`save_to_disk` copy (which load_corpus prefers), `labels.txt`, `augmentation.json` (label
metadata, alpha, provenance, prompts), the editable `label_map.json` (when entity types were
merged) and the dataset card `README.md`. It is written to a
temporary folder and renamed into place, so an interrupted run never leaves a half-written dataset.
"""

import json
import logging
import shutil
from pathlib import Path

from datasets import DatasetDict, load_from_disk
from huggingface_hub import DatasetCard, HfApi
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

from augment.dataset_card import dataset_card_data, license_section
from augment.label_map import LABEL_MAP_FILE, write_label_map
from augment.prompts import prompt_texts
from knowfree.data import LABELS_FILE
from knowfree.model_card import HUB_LICENSES, is_hub_repo_id

logger = logging.getLogger(__name__)

METADATA_FILE = "augmentation.json"
WORKFLOW_FILE = "workflow.json"
CARD_FILE = "README.md"


def save_augmented(
    folder: str | Path,
    splits: DatasetDict,
    metadata: dict,
    card_body: str,
    workflow: dict | None = None,
    license: str | list[str] | None = None,
) -> Path:
    """Write every form of the dataset into `folder` atomically (replacing an older copy).

    `workflow` (the resolved settings of the run that built it) is written beside it as workflow.json.
    `license` (Hub license ids) goes into the card; without it the rows keep the license the source's card
    states, since they are derived from it, and the card states none when that is unknown.
    """
    folder = Path(folder)
    staging = folder.with_name(folder.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    splits.save_to_disk(str(staging))
    for name, split in splits.items():
        with (staging / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for row in split:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    (staging / LABELS_FILE).write_text("\n".join(metadata["target_labels"]) + "\n", encoding="utf-8")
    (staging / METADATA_FILE).write_text(json.dumps({**metadata, "prompts": prompt_texts()}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if metadata.get("merging", {}).get("label_map"):
        write_label_map(staging, metadata["merging"]["label_map"])
    (staging / CARD_FILE).write_text(_card(metadata, splits, card_body, license).content, encoding="utf-8")
    if workflow is not None:
        (staging / WORKFLOW_FILE).write_text(json.dumps(workflow, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    return folder


def read_metadata(folder: str | Path) -> dict:
    return json.loads((Path(folder) / METADATA_FILE).read_text(encoding="utf-8"))


def source_license(source: str) -> str | list[str] | None:
    """The license the card of a source data set (a local folder's README.md, or a Hub dataset repo) states, when it
    is one the Hub knows; None when there is no card, no license, or the Hub cannot be asked."""
    try:
        if (Path(source) / CARD_FILE).is_file():
            card = DatasetCard.load(Path(source) / CARD_FILE, ignore_metadata_errors=True)
        elif is_hub_repo_id(source):
            card = DatasetCard.load(source, repo_type="dataset", ignore_metadata_errors=True)
        else:
            return None
    except (EntryNotFoundError, HfHubHTTPError) as error:
        logger.warning("cannot read the card of %s, so its license is unknown: %s", source, error)
        return None
    license = card.data.get("license")
    names = [license] if isinstance(license, str) else license or []
    if names and not set(names) <= HUB_LICENSES:
        logger.warning("%s states the license %s, which is no Hub license id; the card states none", source, license)
        return None
    return license or None


def _card(metadata: dict, splits: DatasetDict, body: str, license: str | list[str] | None) -> DatasetCard:
    source = str(metadata["provenance"].get("source"))
    stated = license or source_license(source)
    data = dataset_card_data(metadata, splits, stated)
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n{body}\n{license_section(stated, source, inherited=license is None)}")


def push_augmented(folder: str | Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Push the saved splits, labels.txt, augmentation.json, label_map.json and workflow.json (if any) and the card to a Hub dataset repo."""
    folder = Path(folder)
    splits = load_from_disk(str(folder))
    splits.push_to_hub(repo_id, private=private, token=token)
    api = HfApi(token=token)
    for name in (LABELS_FILE, METADATA_FILE, LABEL_MAP_FILE, WORKFLOW_FILE):
        if not (folder / name).is_file():
            continue
        api.upload_file(path_or_fileobj=str(folder / name), path_in_repo=name, repo_id=repo_id, repo_type="dataset", commit_message=f"Add {name}")
    pushed = DatasetCard.load(repo_id, repo_type="dataset", token=token)
    local = DatasetCard.load(folder / CARD_FILE)
    pushed.text = local.text
    for key, value in local.data.to_dict().items():
        pushed.data[key] = value
    pushed.push_to_hub(repo_id, repo_type="dataset", token=token, commit_message="Describe the augmentation")
    return repo_id
