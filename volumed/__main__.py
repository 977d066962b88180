"""`python -m volumed` runs the command line."""

from volumed.cli import main

main()
