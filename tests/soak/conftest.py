"""Soak tests: many cancels, a typing flood, kill -9 around saves, hostile CLI input, two writers.

CI runs them at reduced counts as part of the normal pytest run; FEWSTEP_SOAK=full runs the full
counts (`.venv/bin/python -m tests.soak`). Each test adds its figures to the summary at the end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

# The GUI fixtures (offscreen Qt, private settings, a window on the session's tiny engine).
from tests.gui.conftest import (  # noqa: F401 - fixtures, found by pytest by name
    _gui_thread_collections,
    _kept_signal_waits,
    _no_thread_left,
    _private_model_dirs,
    _private_settings,
    gui_settings,
    make_window,
    output_dir,
    shared_engine_factory,
)


@dataclass(frozen=True)
class SoakCounts:
    cancels: int
    edits: int
    kills: int
    full: bool


FULL = os.environ.get("FEWSTEP_SOAK", "").lower() == "full"
COUNTS = SoakCounts(cancels=100, edits=1000, kills=50, full=True) if FULL else SoakCounts(20, 200, 10, False)
FIGURES: list[str] = []


def report(line: str) -> None:
    """A figure for the summary printed after the run."""
    FIGURES.append(line)
    print(f"soak: {line}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        mode = "full" if COUNTS.full else "reduced (FEWSTEP_SOAK=full for the full counts)"
        terminalreporter.section(f"soak figures, {mode} counts")
        for line in FIGURES:
            terminalreporter.write_line(line)
