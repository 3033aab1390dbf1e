"""`python -m augment` runs the knowfree-augment command line."""

from augment.cli import main

main()
