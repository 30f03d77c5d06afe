"""The `lrlab` command line (Click, rich output). Exit codes: see lrlab.cli.app."""

from lrlab.cli import analyze, commands, export, lr, watch  # noqa: F401  (they register commands)
from lrlab.cli.app import main

__all__ = ["main"]
