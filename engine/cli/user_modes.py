"""The user's own modes for one command: the config folder's modes.toml, then --modes-file PATH.

Read before the arguments are parsed, so that a user's mode is a mode like any other to every flag
(--modes, --mode, --steps MODE=N). A bad --modes-file stops the command with its one line (exit 2); a
bad modes.toml in the config folder is said in one line and left out, so that every other command
still runs with the built-in modes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.cli.arguments import UsageError, say
from engine.contract.mode_files import ModeFileError, read_mode_file, user_modes_path
from engine.contract.modes import MODES, ModeSpec

FLAG = "--modes-file"


def modes_file_given(argv: Sequence[str]) -> Path | None:
    """--modes-file's value, found before argparse runs (which needs the modes to check --modes)."""
    found: Path | None = None
    for index, word in enumerate(argv):
        if word == FLAG:
            if index + 1 >= len(argv) or not argv[index + 1].strip():
                raise UsageError(f"{FLAG} needs a path to a mode file (.toml)")
            found = Path(argv[index + 1])
        elif word.startswith(FLAG + "="):
            found = Path(word.removeprefix(FLAG + "="))
    return found


def user_modes(argv: Sequence[str]) -> tuple[ModeSpec, ...]:
    specs: tuple[ModeSpec, ...] = ()
    config = user_modes_path()
    if config.is_file():
        try:
            specs = read_mode_file(config, MODES.values())
        except ModeFileError as exc:
            say(f"warning: {exc}; running with the built-in modes only")
    given = modes_file_given(argv)
    if given is not None:
        specs += read_mode_file(given, (*MODES.values(), *specs))
    return specs
