"""Where a training run stands, saved beside accelerate's checkpoint so `--resume` continues exactly."""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FILE = "trainer_state.json"


@dataclass
class TrainingState:
    """Progress counters and model-selection bookkeeping.

    `batches_in_epoch` counts batches already consumed in the current epoch, so a resumed run skips
    exactly those and sees the same data order as an uninterrupted one.
    """

    epoch: int = 0
    batches_in_epoch: int = 0
    global_step: int = 0
    best_f1: float = -1.0
    best_step: int | None = None
    evaluations_without_improvement: int = 0
    stopped_early: bool = False
    stop_reason: str | None = None
    """What ended training: "epochs", "max_steps", "patience", or "time" (the wall-clock cap)."""
    finished: bool = False
    history: list[dict] = field(default_factory=list)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / (STATE_FILE + ".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        temporary.replace(folder / STATE_FILE)

    @classmethod
    def load(cls, folder: Path) -> "TrainingState":
        return cls(**json.loads((folder / STATE_FILE).read_text(encoding="utf-8")))
