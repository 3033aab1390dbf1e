"""Keeping secrets out of what we record: commands in model cards, logs and workflow records.

A command line is recorded so that a run can be repeated, and a recorded command may be published
(a model card pushed to the Hub). Values of options that carry credentials, and anything shaped like
a Hugging Face or OpenAI-style key wherever it appears, are replaced by REDACTED.
"""

import re
from collections.abc import Sequence

REDACTED = "<redacted>"
SECRET_OPTIONS = ("--token", "--hub_token", "--api_key", "--password")
_KEY_SHAPED = re.compile(r"\b(?:hf_[A-Za-z0-9]{8,}|sk-[A-Za-z0-9_-]{8,})\b")


def redact_text(text: str) -> str:
    """`text` with every key-shaped substring replaced."""
    return _KEY_SHAPED.sub(REDACTED, text)


def redact_arguments(arguments: Sequence[str]) -> list[str]:
    """Command-line arguments with the values of SECRET_OPTIONS (`--token X`, `--token=X`) and key-shaped strings hidden."""
    redacted, hide_next = [], False
    for argument in arguments:
        if hide_next:
            redacted.append(REDACTED)
            hide_next = False
            continue
        option, equals, _ = argument.partition("=")
        if option in SECRET_OPTIONS:
            if equals:
                redacted.append(f"{option}={REDACTED}")
            else:
                redacted.append(argument)
                hide_next = True
            continue
        redacted.append(redact_text(argument))
    return redacted
