"""``python -m mqkit`` runs the command line."""

import sys

from mqkit.cli import main

sys.exit(main())
