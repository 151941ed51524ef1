"""The `fewstep` command: `fewstep compare|generate|models ...` runs the headless CLI, else the window.

Qt is imported only for the window, so scripts that call the CLI never load it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

CLI_COMMANDS = frozenset({"compare", "generate", "models"})
USAGE = """usage: fewstep [gui]                 open the desktop application
       fewstep compare --prompt ... --out DIR    compare modes side by side (see fewstep compare --help)
       fewstep generate --prompt ... --mode M --out FILE.png
       fewstep models [DIR]                      list and classify model files (and the HF cache)
       fewstep --self-test                       check this installation: versions, backends, every mode
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in CLI_COMMANDS:
        from engine.cli import main as cli_main

        return cli_main(args)
    if args and args[0] == "--self-test":
        from gui.self_test import main as self_test_main

        return self_test_main(args[1:])
    if args and args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    if args and args[0] == "gui":
        args = args[1:]
    elif args and not args[0].startswith("-"):
        # An unknown word is most likely a mistyped subcommand: answer as the CLI does, without a window.
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
