"""What each knowfree-augment step is told, typed; augment/cli.py converts its options once into these.

A step takes only its part: loading the source corpus (SourceSettings), the LLM client (LLMSettings),
synonym label merging (MergingSettings); `extend` (ExtendSettings) and `workflow` (WorkflowSettings)
compose them. Field names are the command line's option names.
"""

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SourceSettings:
    """The corpus and its train subset: the sentences train.py's --k / --k_shot / --train_file / --data_seed select too."""

    data: str
    k: int | None
    k_shot: int | None
    train_file: str | None
    data_seed: int


@dataclass(frozen=True)
class LLMSettings:
    """The LLM server or provider and how to call it; without --endpoint and --model there is none (`enabled`)."""

    endpoint: str | None
    model: str | None
    provider: str | None
    token: str | None = field(repr=False)  # a secret: never in a log line
    route: str
    structured: str
    concurrency: int
    timeout: float
    retries: int
    backoff: float
    max_new_tokens: int
    temperature: float
    cache: str | None

    @property
    def enabled(self) -> bool:
        return bool(self.endpoint or self.model)

    def api_token(self) -> str | None:
        """--token, else $HF_TOKEN, read when needed (a default taken at parse time would show in --help)."""
        return self.token or os.environ.get("HF_TOKEN")


@dataclass(frozen=True)
class MergingSettings:
    """Synonym label merging (eqs. 2-8), or the label map of an earlier run that decides it."""

    embedding_model: str
    epsilon: float
    top_p: int
    min_name_similarity: float
    label_map: str | None
    min_label_count: int | None


@dataclass(frozen=True)
class ExtendSettings:
    """Pipeline 1 on the source, written as a fusion dataset to output_dir (and pushed)."""

    source: SourceSettings
    llm: LLMSettings
    merging: MergingSettings
    annotator: str
    language: str | None
    output_dir: str
    push_to_hub: str | None
    hub_private: bool
    license: str | None
    dry_run: bool


@dataclass(frozen=True)
class WorkflowTraining:
    """The training options of both workflow models; --train_args adds any other train.py option.

    These fields, by these names, are the workflow's training fingerprint: a new one redoes training
    in every existing work folder.
    """

    encoder: str
    task: str
    epochs: int
    batch_size: int
    patience: int
    seed: int
    freeze_embeddings: bool
    max_train_minutes: float | None
    synthetic_weight: float | None
    train_args: str


@dataclass(frozen=True)
class WorkflowSettings:
    """Figure 2 end to end in work_dir; push_to_hub is the dataset's repo, push_model the final model's."""

    source: SourceSettings
    llm: LLMSettings
    merging: MergingSettings
    annotator: str
    language: str | None
    max_chars: int
    min_chars: int
    training: WorkflowTraining
    work_dir: str
    push_to_hub: str | None
    push_model: str | None
    hub_private: bool
    license: str | None
