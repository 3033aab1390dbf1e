"""How knowfree's command lines report a problem with what the user gave them.

A bad data file, label map or encoder folder is the user's to fix, and the message already names the
file, line and field: it is printed as one line and the command exits with status 2, as argparse does
for bad options. The traceback, useful only for a bug in knowfree, comes with `--debug` or
KNOWFREE_DEBUG=1. Programmatic callers (`knowfree.training.main(argv)`) still get the exception.
"""

import os
import sys
from collections.abc import Callable, Sequence

DEBUG_FLAG = "--debug"
DEBUG_VARIABLE = "KNOWFREE_DEBUG"
USAGE_ERROR_STATUS = 2


class InputError(ValueError):
    """Input the user must correct (data, label map, encoder folder); the message says where and how."""


def run_command_line(main: Callable[[list[str] | None], object], argv: Sequence[str] | None = None) -> None:
    """Call `main` with the command's arguments (minus `--debug`), turning an InputError into one line and exit 2."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in arguments or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")
    arguments = [argument for argument in arguments if argument != DEBUG_FLAG]
    try:
        main(arguments)
    except InputError as error:
        if debug:
            raise
        program = os.path.basename(sys.argv[0]) or "knowfree"
        print(f"{program}: error: {error} (run with {DEBUG_FLAG} or {DEBUG_VARIABLE}=1 for the traceback)", file=sys.stderr)
        raise SystemExit(USAGE_ERROR_STATUS) from None
