"""`fewstep generate`: one image with one mode, and its JSON sidecar beside it.

The run is compare's (engine.cli.compare.run) with a single mode; only the flags differ.
"""

from __future__ import annotations

import argparse

from engine.cli.arguments import out
from engine.cli.compare import add_run_flags, run
from engine.contract.modes import MODES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_flags(parser)
    parser.add_argument("--mode", required=True, choices=list(MODES), metavar="MODE")
    parser.add_argument("--out", type=out, required=True, metavar="FILE.png")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


__all__ = ["add_arguments", "run"]  # run: the run compare makes, of one mode
