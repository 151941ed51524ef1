"""The window reads nothing on the GUI thread: the history, its thumbnails, a past run's images, a
run's record read back and an exported grid all go through pool threads, so a slow disk, a hung share
or a FIFO never freezes the window.

Two kinds of proof: an audit hook sees every file Python opens and on which thread, over a whole
session of the window; and reads made to hang (as a FIFO or a dead network share would) leave the
event loop turning, the window saying what it waits for.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

import gui.state.output_folder as output_folder_module
import gui.widgets.comparison_grid as comparison_grid_module
from engine.outputs.run_writer import HISTORY_FOLDER
from gui.state.image_store import load_history
from gui.state.jobs import EventKind
from gui.state.settings import Settings
from gui.widgets.images import read_image
from gui.widgets.main_window import MainWindow
from tests.gui.conftest import JOB_MS, WindowMaker, anything, kind_is, two_step_modes

HANG_S = 30.0


@dataclass
class OpenWatch:
    """Files opened under `root`, each with whether it was on the GUI (main) thread."""

    root: str = ""
    opened: list[tuple[str, bool]] = field(default_factory=list)

    def on_gui_thread(self) -> list[str]:
        return [path for path, gui in self.opened if gui]


_WATCH = OpenWatch()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Audit hooks cannot be removed: this one does nothing unless a test set a root to watch.
    if event == "open" and _WATCH.root and isinstance(args[0], str | os.PathLike):
        path = os.fspath(args[0])
        if isinstance(path, str) and path.startswith(_WATCH.root):
            _WATCH.opened.append((path, threading.current_thread() is threading.main_thread()))


_hook_installed = False


@pytest.fixture
def watch_opens(output_dir: Path) -> Iterator[OpenWatch]:
    global _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)
        _hook_installed = True
    _WATCH.root, _WATCH.opened = str(output_dir), []
    try:
        yield _WATCH
    finally:
        _WATCH.root = ""


def make_history(make_window: WindowMaker, qtbot: QtBot) -> MainWindow:
    """A window that ran one comparison of two modes, saved into the output folder."""
    window = make_window()
    two_step_modes(window, ("lcm", "lightning"))
    window.prompt_panel.prompt.setPlainText("a red circle")
    with qtbot.waitSignals(
        [window.worker.reported, window.output.record_read],
        check_params_cbs=[kind_is(EventKind.FINISHED), anything],
        timeout=JOB_MS,
    ):
        assert window.generate() is not None
    return window


def ticking(qtbot: QtBot, ticks: int = 5) -> None:
    """The GUI thread's event loop turns: a 10 ms timer fires `ticks` times."""
    count: list[int] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: count.append(1))
    timer.start()
    qtbot.waitUntil(lambda: len(count) >= ticks, timeout=5_000)
    timer.stop()


def hanging(original: Callable[..., Any], release: threading.Event, threads: list[threading.Thread]) -> Any:
    """`original`, made to wait for `release` first, as a read of a FIFO or a dead share waits."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        release.wait(HANG_S)
        return original(*args, **kwargs)

    return wrapped


def test_a_whole_session_opens_no_file_of_the_output_folder_on_the_gui_thread(
    make_window: WindowMaker, qtbot: QtBot, watch_opens: OpenWatch
) -> None:
    first = make_history(make_window, qtbot)
    # A second window starts on the same folder: it reads the history and its thumbnails.
    window = make_window()
    qtbot.waitUntil(lambda: len(window.history.records()) == 1, timeout=JOB_MS)
    with qtbot.waitSignal(window.history.thumbnails_done, timeout=JOB_MS):
        window.output.reload_history(window.settings.resolved_output_dir)
    with qtbot.waitSignal(window.grid.saved_run_shown, timeout=JOB_MS):
        window.history.run_chosen.emit(window.history.records()[0])
    assert len(window.grid.tiles) == 2 and all(not tile.image.isNull() for tile in window.grid.tiles)
    with qtbot.waitSignal(first.output.grid_exported, timeout=JOB_MS):
        assert first.export_current_grid()
    opened = [Path(path).name for path, _gui in watch_opens.opened]
    # The watch saw the reads: records, thumbnails, the run's images, the claim, the export.
    assert any(name.endswith(".json") for name in opened) and any(name.endswith(".png") for name in opened)
    assert watch_opens.on_gui_thread() == []


def test_a_hanging_history_read_leaves_the_window_answering(
    make_window: WindowMaker, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, gui_settings: Settings
) -> None:
    make_history(make_window, qtbot)
    release, threads = threading.Event(), list[threading.Thread]()
    monkeypatch.setattr(output_folder_module, "load_history", hanging(load_history, release, threads))
    window = make_window(settings=gui_settings, wait_ready=False)
    ticking(qtbot)  # start() returned and the window answers while the history read hangs
    assert window.history.records() == [] and "reading the history" in window.history.note.text()
    release.set()
    qtbot.waitUntil(lambda: len(window.history.records()) == 1, timeout=JOB_MS)
    assert threads and threading.main_thread() not in threads
    assert window.history.note.isHidden()


def test_a_hanging_image_read_leaves_the_window_answering(
    make_window: WindowMaker, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = make_history(make_window, qtbot)
    record = window.history.records()[0]
    release, threads = threading.Event(), list[threading.Thread]()
    monkeypatch.setattr(comparison_grid_module, "read_image", hanging(read_image, release, threads))
    window.history.run_chosen.emit(record)
    ticking(qtbot)
    assert window.prompt_panel.prompt_text() == "a red circle"  # the settings are restored at once
    assert [tile.canvas.placeholder for tile in window.grid.tiles] == ["reading…", "reading…"]
    with qtbot.waitSignal(window.grid.saved_run_shown, timeout=JOB_MS):
        release.set()
    assert all(not tile.image.isNull() for tile in window.grid.tiles)
    assert threads and threading.main_thread() not in threads


def test_fifos_in_the_history_are_skipped_and_said(
    make_window: WindowMaker, qtbot: QtBot, output_dir: Path
) -> None:
    """A FIFO in place of a record and of a run's image: the rest of the history shows, nothing hangs."""
    window = make_history(make_window, qtbot)
    record = window.history.records()[0]
    os.mkfifo(output_dir / HISTORY_FOLDER / "20990101-000000-j1.json")  # sorts first: read first
    lcm_png = next(image.png for image in record.images if image.mode == "lcm")
    lcm_png.unlink()
    os.mkfifo(lcm_png)
    with qtbot.waitSignal(window.history.thumbnails_done, timeout=JOB_MS):
        window.output.reload_history(output_dir)
    assert [r.run_id for r in window.history.records()] == [record.run_id]
    assert window.history.note.text() == "1 unreadable history entries skipped"
    with qtbot.waitSignal(window.grid.saved_run_shown, timeout=JOB_MS):
        window.history.run_chosen.emit(window.history.records()[0])
    lcm = window.grid.tile("lcm", record.images[0].seed)
    lightning = window.grid.tile("lightning", record.images[0].seed)
    assert lcm is not None and lcm.image.isNull() and lcm.canvas.placeholder == "image file missing"
    assert lightning is not None and not lightning.image.isNull()


def test_a_run_read_back_after_the_folder_changed_stays_out_of_the_new_list(
    make_window: WindowMaker, qtbot: QtBot, tmp_path: Path
) -> None:
    window = make_history(make_window, qtbot)
    record = window.history.records()[0]
    window.history.show_loading(tmp_path / "another-folder")  # the artist chose another output folder
    window.output.record_read.emit(record)  # the old folder's run, read back late
    assert window.history.records() == []
    window.history.show_loading(window.settings.resolved_output_dir)
    window.output.record_read.emit(record)
    assert window.history.records() == [record]


def test_closing_the_window_does_not_wait_for_a_read_that_hangs(
    make_window: WindowMaker, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = make_history(make_window, qtbot)
    release, threads = threading.Event(), list[threading.Thread]()
    monkeypatch.setattr(comparison_grid_module, "read_image", hanging(read_image, release, threads))
    window.history.run_chosen.emit(window.history.records()[0])
    qtbot.waitUntil(lambda: bool(threads), timeout=JOB_MS)  # a read of the run's images hangs
    started = time.monotonic()
    window.close()
    closing_s = time.monotonic() - started
    assert not window.isVisible() and not release.is_set()  # closed while the read still hangs
    release.set()
    # A close that waited for the read would take the readers' bound (5 s) or the hang (30 s).
    assert closing_s < 3.0
