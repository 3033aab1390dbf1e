"""Train and evaluate a KnowFREE span model (or the token-classification baseline) with accelerate.

    accelerate launch train.py --data ../shared/data/weibo --encoder encoders/multilingual-e5-small \
        --k 250 --output_dir outputs/weibo-250

The training itself is `knowfree.training` (`--help` lists every option); this script is its command
line: input errors print as one line with exit status 2 (`--debug` for the traceback).
"""

from knowfree.command_line import run_command_line
from knowfree.training import main

if __name__ == "__main__":
    run_command_line(main)
