"""``python -m augdiff`` runs the command line (and is what torchrun launches)."""

from augdiff.cli.main import console

console()
