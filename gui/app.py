"""Starts the desktop application: the window first, the engine after, in its own thread."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from engine.contract.mode_files import ModeFileError, read_mode_file, user_modes_path
from engine.contract.modes import MODES
from gui.state.gui_collector import GuiThreadCollector
from gui.state.settings import load_settings
from gui.state.worker import EngineWorker
from gui.widgets.main_window import MainWindow
from gui.widgets.theme import apply_theme


def add_user_modes() -> str | None:
    """The config folder's modes.toml joins the built-in modes for this session, before any panel lists
    them; where it cannot be read, its one line (the built-in modes run without it)."""
    path = user_modes_path()
    if not path.is_file():
        return None
    try:
        others = [spec for spec in MODES.values() if spec.source != str(path)]
        MODES.set_source(str(path), read_mode_file(path, others))
    except ModeFileError as exc:
        return f"{exc}; running with the built-in modes only"
    return None


def create_window(app: QApplication) -> MainWindow:
    apply_theme(app)
    modes_problem = add_user_modes()
    loaded = load_settings()
    settings = loaded.settings
    worker = EngineWorker(settings.engine_config())
    problem = "; ".join(p for p in (loaded.problem, modes_problem) if p) or None
    return MainWindow(settings, worker, settings_problem=problem)


def run_app(argv: Sequence[str] = ()) -> int:
    # Passive OpenMP threads: torch shares the machine with the GUI thread, and spinning
    # OpenMP threads made generation 50 to 500 times slower on a busy 2-core machine.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app = QApplication([sys.argv[0], *argv])
    app.setApplicationName("Fewstep")
    # Every cyclic collection on this thread: one on the engine's could delete a widget there.
    GuiThreadCollector(app).start()
    window = create_window(app)
    window.show()
    # Load the engine once the window has painted, so that torch's import never delays it.
    QTimer.singleShot(0, window.start)
    return app.exec()
