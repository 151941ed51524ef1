"""A main window on the built-in model whose engine never starts: for what the window shows before any
image is made (the mode panel, the grid's tiles), without loading a model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from gui.state.jobs import EngineConfig
from gui.state.settings import Settings, save_settings
from gui.state.worker import EngineWorker, LoadedEngine
from gui.widgets.main_window import MainWindow
from gui.widgets.theme import apply_theme


def _no_engine(config: EngineConfig, say: Callable[[str], None]) -> LoadedEngine:
    raise AssertionError("this window's engine is never started")


@pytest.fixture
def bare_window(qtbot: QtBot, qapp: Any, tmp_path: Path) -> Iterator[MainWindow]:
    apply_theme(qapp)
    settings = Settings(output_dir=tmp_path / "out")
    save_settings(settings)
    window = MainWindow(settings, EngineWorker(EngineConfig(paths=None, device="cpu"), _no_engine))
    qtbot.addWidget(window)
    window.show()
    yield window
    window.close()
