"""Checking an encoder folder before anything is trained on it.

transformers is forgiving in ways that waste a training run: a folder without tokenizer files gets a
five-token fallback vocabulary (every character becomes [UNK], and the model trains on nothing), a
missing local folder is reported as a malformed Hub repo id, and a truncated weights file fails with
a bare SafetensorError. `check_encoder` catches each of these up front with one message that names
the path and the fix.
"""

import os
from pathlib import Path

from safetensors import SafetensorError, safe_open

from knowfree.command_line import InputError
from knowfree.encoder import DEFAULT_OUTPUT_DIR

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model", "tokenizer.model")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
BUILD_HINT = "build it with `knowfree-build-encoder` (README: quickstart), or pass --encoder <folder or Hub id>"


class EncoderError(InputError):
    """An encoder source that would not give a working model."""


def looks_local(source: str) -> bool:
    """A path rather than a Hub id: absolute, relative with ./ or ../ or ~, more than one '/', or under an existing folder."""
    if source.startswith(("/", "./", "../", "~")) or source.count("/") > 1 or os.sep != "/" and os.sep in source:
        return True
    head = source.split("/", 1)[0]
    return "/" in source and Path(head).is_dir()


def check_encoder(source: str | Path) -> None:
    """Raise EncoderError when `source` is a local folder (or meant to be one) that cannot give a working encoder."""
    path = Path(source).expanduser()
    if not path.exists():
        if isinstance(source, Path) or looks_local(str(source)):
            hint = BUILD_HINT if path == DEFAULT_OUTPUT_DIR else "check the path, or give a Hub repo id"
            raise EncoderError(f"encoder folder {source} does not exist: {hint}")
        return  # a Hub repo id: transformers resolves (and reports) it
    if not path.is_dir():
        raise EncoderError(f"encoder {source} is a file; give the folder that holds config.json, the weights and the tokenizer")
    if not (path / "config.json").is_file():
        raise EncoderError(f"encoder folder {source} has no config.json: it is not a saved transformers model ({BUILD_HINT})")
    weights = [name for name in WEIGHT_FILES if (path / name).is_file()]
    if not weights:
        raise EncoderError(f"encoder folder {source} has no weights ({' or '.join(WEIGHT_FILES[::2])}): {BUILD_HINT}")
    if "model.safetensors" in weights:
        try:
            with safe_open(str(path / "model.safetensors"), framework="pt") as weights_file:
                for name in weights_file.keys():
                    weights_file.get_slice(name)
        except (SafetensorError, OSError) as error:
            raise EncoderError(f"encoder weights {path / 'model.safetensors'} cannot be read ({error}): the file is truncated or corrupt; rebuild or download it again") from None
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise EncoderError(
            f"encoder folder {source} has no tokenizer files (one of {', '.join(TOKENIZER_FILES)}): transformers would fall back "
            "to a five-token vocabulary and every character would become [UNK]; save the tokenizer into the folder "
            f"(tokenizer.save_pretrained) or {BUILD_HINT}"
        )
