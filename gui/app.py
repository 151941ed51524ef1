"""Starts the desktop application: the window first, the engine after, in its own thread."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from gui.state.settings import load_settings
from gui.state.worker import EngineWorker
from gui.widgets.main_window import MainWindow
from gui.widgets.theme import apply_theme


def create_window(app: QApplication) -> MainWindow:
    apply_theme(app)
    loaded = load_settings()
    settings = loaded.settings
    worker = EngineWorker(settings.engine_config())
    return MainWindow(settings, worker, settings_problem=loaded.problem)


def run_app(argv: Sequence[str] = ()) -> int:
    # Passive OpenMP threads: torch shares the machine with the GUI thread, and spinning
    # OpenMP threads made generation 50 to 500 times slower on a busy 2-core machine.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app = QApplication([sys.argv[0], *argv])
    app.setApplicationName("Fewstep")
    window = create_window(app)
    window.show()
    # Load the engine once the window has painted, so that torch's import never delays it.
    QTimer.singleShot(0, window.start)
    return app.exec()
