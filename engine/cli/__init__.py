"""The headless `fewstep` commands other tools rely on: compare, generate, models, plan and info.

One module per command, each with SUMMARY, add_parser(commands) and run(args) -> exit code;
arguments.py holds what they share. Heavy libraries load only once a command's input is known to be good.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, Protocol

from engine.cli import compare, generate, info, models, plan
from engine.cli.arguments import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Parser,
    UsageError,
    say,
)
from engine.contract.errors import FewstepError


class Command(Protocol):
    SUMMARY: str  # the one line `fewstep --help` shows

    def add_parser(self, commands: Any) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


DESCRIPTION = (
    "Fewstep's headless commands. Exit codes: 0 done; 2 bad input (one line on stderr, nothing written);"
    " 1 an unexpected failure; 130 interrupted. Each command's flags: fewstep COMMAND --help"
)
# In the order `fewstep --help` lists them.
COMMANDS: dict[str, Command] = {
    "compare": compare,
    "generate": generate,
    "models": models,
    "plan": plan,
    "info": info,
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="fewstep", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS.values():
        command.add_parser(commands)
    return parser


def run(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command].run(args)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except (UsageError, FewstepError) as exc:
        say(f"error: {exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        say("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get("FEWSTEP_DEBUG"):
            raise
        say(f"unexpected failure: {type(exc).__name__}: {exc} (FEWSTEP_DEBUG=1 shows the traceback)")
        return EXIT_FAILED


__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "main"]
