"""Folders a crash may interrupt but never leave half-written: the resumable checkpoint and the best weights.

A folder is written beside its final place as `<name>.partial`, then swapped in: the old folder is
renamed `<name>.previous`, the new one takes the name, the old one is deleted. Whatever instant a
kill lands on, one complete copy exists: `<name>` itself, or, between the two renames,
`<name>.partial` (complete: its writer finished) or `<name>.previous`. `complete_checkpoint` finds it;
a folder whose marker file is missing (killed while writing) is never used. Training writes the
full resumable state (weights, optimizer, scheduler, random states, trainer_state.json last) at every
evaluation, and the best weights when dev F1 improves.
"""

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from knowfree.command_line import InputError
from knowfree.training_state import STATE_FILE

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"  # inside a training output folder: the full resumable state
BEST_DIR = "best"  # the weights of the best evaluation so far
PARTIAL, PREVIOUS = ".partial", ".previous"


class TornCheckpoint(InputError):
    """A checkpoint that cannot be loaded; the message names it and says how to go on."""


def sibling(folder: Path, suffix: str) -> Path:
    return folder.with_name(folder.name + suffix)


def swap_in(folder: Path) -> None:
    """Put the finished `<folder>.partial` in the place of `folder`."""
    previous = sibling(folder, PREVIOUS)
    shutil.rmtree(previous, ignore_errors=True)
    if folder.exists():
        folder.rename(previous)
    sibling(folder, PARTIAL).rename(folder)
    shutil.rmtree(previous, ignore_errors=True)


def write_folder_atomically(folder: Path, write: Callable[[Path], None]) -> None:
    """Call `write(staging)` to fill a fresh staging folder, then swap it in place of `folder`."""
    staging = sibling(folder, PARTIAL)
    shutil.rmtree(staging, ignore_errors=True)
    write(staging)
    swap_in(folder)


def restore_interrupted_swap(folder: Path) -> None:
    """After a kill between the two renames of `swap_in`, put the previous copy back.

    The previous copy is the one the last saved training state refers to (the state is saved after
    the swap), so it, not the unmarked staging copy, is the consistent one.
    """
    previous = sibling(folder, PREVIOUS)
    if not folder.exists() and previous.is_dir():
        logger.warning("restoring %s from %s: the run was stopped while replacing it", folder, previous)
        previous.rename(folder)
    shutil.rmtree(sibling(folder, PARTIAL), ignore_errors=True)


def complete_checkpoint(folder: Path) -> Path | None:
    """The complete copy of a checkpoint folder (see the module docstring), or None when there is none."""
    for candidate in (folder, sibling(folder, PARTIAL), sibling(folder, PREVIOUS)):
        if (candidate / STATE_FILE).is_file():
            if candidate != folder:
                logger.warning("using %s: the run was stopped while swapping in a new checkpoint", candidate)
            return candidate
        if candidate.exists():
            logger.warning("ignoring %s: it has no %s, so its writer was stopped before finishing it", candidate, STATE_FILE)
    return None


def has_checkpoint(output_dir: Path) -> bool:
    """Whether a training output folder holds a complete checkpoint to resume from."""
    return complete_checkpoint(output_dir / CHECKPOINT_DIR) is not None


def run_folders(name: str) -> list[str]:
    """`name` and its staging and previous copies, for ignore patterns and clean-up."""
    return [name, name + PARTIAL, name + PREVIOUS]


def drop_resume_state(output_dir: Path) -> None:
    """Delete a finished run's checkpoint (optimizer state included: 640 MB for e5-small) and best/ copy.

    The output folder's own model files are the dev-selected weights, so both only ever serve a resume
    of an unfinished run; kept, a grid of finished runs filled this machine's disk (1.1 GB a run)."""
    for name in (CHECKPOINT_DIR, BEST_DIR):
        for run_folder in run_folders(name):
            shutil.rmtree(output_dir / run_folder, ignore_errors=True)


def load_or_explain(folder: Path, load: Callable[[str], None]) -> None:
    """Load a checkpoint, turning a failure (a file torn by something other than a training kill) into a clear error."""
    try:
        load(str(folder))
    except Exception as error:  # torch, safetensors and pickle each raise their own kind
        raise TornCheckpoint(
            f"checkpoint {folder} cannot be loaded ({type(error).__name__}: {error}); delete that folder to start this "
            "run again from the beginning, or run without --resume"
        ) from error
