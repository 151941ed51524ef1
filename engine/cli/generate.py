"""`fewstep generate`: one image with one mode, and its JSON sidecar beside it.

The run is compare's (engine.cli.compare.run) with a single mode; only the flags differ.
"""

from __future__ import annotations

from typing import Any

from engine.cli.arguments import out
from engine.cli.compare import add_run_flags, run
from engine.contract.modes import MODES

SUMMARY = "one image with one mode"


def add_parser(commands: Any) -> None:
    generate = commands.add_parser("generate", help=SUMMARY)
    add_run_flags(generate)
    generate.add_argument("--mode", required=True, choices=list(MODES), metavar="MODE")
    generate.add_argument("--out", type=out, required=True, metavar="FILE.png")
    generate.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


__all__ = ["SUMMARY", "add_parser", "run"]  # run: the run compare makes, of one mode
