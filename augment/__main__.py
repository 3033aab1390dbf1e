"""`python -m augment` runs the knowfree-augment command line."""

from augment.cli import console_main

console_main()
