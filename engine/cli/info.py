"""`fewstep info FILE.png`: what Fewstep reads from a PNG's settings text, as JSON.

The same reader as the window's drop (engine.outputs.png_info), so what this prints is what a drop
restores, and `ignored` is what it leaves out, with the reason.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.cli.arguments import EXIT_OK
from engine.outputs.png_info import info_record, read_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE.png")


def run(args: argparse.Namespace) -> int:
    print(json.dumps(info_record(read_settings(args.file)), indent=2, ensure_ascii=False))
    return EXIT_OK
