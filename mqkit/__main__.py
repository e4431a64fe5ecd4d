"""``python -m mqkit`` runs the command line."""

from mqkit.cli import run

run()
