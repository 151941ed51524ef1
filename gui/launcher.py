"""The `fewstep` command: `fewstep COMMAND ...` runs a headless command (engine.cli), else the window.

Qt is imported only for the window, so scripts that call the CLI never load it.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import Sequence

WINDOW_USAGE = (
    ("[gui]", "open the desktop application"),
    ("--self-test", "check this installation: versions, backends, every mode"),
)


def usage() -> str:
    """`fewstep --help`: the window, the self-test, and every headless command engine.cli has."""
    from engine.cli import COMMANDS

    forms = [*WINDOW_USAGE, *((f"{name} ...", summary) for name, summary in COMMANDS.items())]
    width = max(len(form) for form, _ in forms)
    columns = max(shutil.get_terminal_size().columns, 60)
    lines: list[str] = []
    for i, (form, summary) in enumerate(forms):
        start = f"{'usage:' if i == 0 else '':6} fewstep {form:{width}}  "
        lines += textwrap.wrap(summary, columns - 1, initial_indent=start, subsequent_indent=" " * len(start))
    return "\n".join([*lines, "Each command's flags: fewstep COMMAND --help", ""])


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--self-test":
        from gui.self_test import main as self_test_main

        return self_test_main(args[1:])
    if args and args[0] in ("-h", "--help"):
        print(usage(), end="")
        return 0
    if args and args[0] == "gui":
        args = args[1:]
    elif args and not args[0].startswith("-"):
        # A command, or a mistyped one: engine.cli runs it or answers in one line, without a window.
        from engine.cli import main as cli_main

        return cli_main(args)
    return open_window(args)


def open_window(args: Sequence[str]) -> int:
    """The window; first, on X11, one line naming the packages to install when Qt's libraries are missing."""
    from gui.xcb_libraries import xcb_problem

    if (problem := xcb_problem()) is not None:
        print(problem, file=sys.stderr)
        return 2
    from gui.app import run_app

    return run_app(args)


if __name__ == "__main__":
    sys.exit(main())
