"""``python -m augdiff`` runs the command line (and is what torchrun launches)."""

import sys

from augdiff.cli.main import main

sys.exit(main())
