"""The headless `fewstep` commands other tools rely on: compare, generate, models, plan, info and bench.

One module per command, each with add_arguments(parser) and run(args) -> exit code; arguments.py holds
what they share. The modules load only when a command runs (`fewstep --help` reads COMMANDS alone),
and heavy libraries only once a command's input is known to be good.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Protocol

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

DESCRIPTION = (
    "Fewstep's headless commands. Exit codes: 0 done; 2 bad input (one line on stderr, nothing written);"
    " 1 an unexpected failure; 130 interrupted. Each command's flags: fewstep COMMAND --help"
)
# Each command and its one line in `fewstep --help`, in the order listed there.
COMMANDS = {
    "compare": "run several modes on one prompt, same seed, side by side",
    "generate": "one image with one mode",
    "models": "list and classify the model files in a folder and the HF cache",
    "plan": "where each model part would live on a card with this much free memory (loads nothing)",
    "info": "print as JSON the settings Fewstep reads from a PNG",
    "bench": "the trilemma over a prompt set with 95% intervals, resumable, with an HTML report",
}


class Command(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def command_modules() -> dict[str, Command]:
    # Imported when a command runs, not with the package: `fewstep --help` reads COMMANDS alone, without
    # the numpy that compare's request types bring (0.07 s instead of 0.25 s).
    from engine.cli import bench, compare, generate, info, models, plan

    return {
        "compare": compare,
        "generate": generate,
        "models": models,
        "plan": plan,
        "info": info,
        "bench": bench,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="fewstep", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    modules = command_modules()
    for name, summary in COMMANDS.items():
        modules[name].add_arguments(commands.add_parser(name, help=summary))
    return parser


def run(argv: Sequence[str]) -> int:
    from engine.cli.user_modes import user_modes
    from engine.contract.modes import MODES

    # The user's modes join the built-in ones for this command only (a test may run many in one process).
    with MODES.added(user_modes(argv)):
        args = build_parser().parse_args(argv)
        return command_modules()[args.command].run(args)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except (UsageError, FewstepError) as exc:
        say(f"error: {exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        say("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader left (`fewstep models --json | head`): nothing is wrong with the input or the run.
        # stdout is pointed at devnull so that the interpreter's own flush at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as exc:
        if os.environ.get("FEWSTEP_DEBUG"):
            raise
        say(f"unexpected failure: {type(exc).__name__}: {exc} (FEWSTEP_DEBUG=1 shows the traceback)")
        return EXIT_FAILED


__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "main"]
