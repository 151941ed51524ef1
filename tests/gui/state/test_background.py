"""Background: the work runs on its pool thread, the answer comes back on the GUI thread, the newest
submission of a key wins, and a read that never returns leaves the GUI thread free."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from gui.state.background import Background

WAIT_MS = 5_000


def test_work_runs_off_the_gui_thread_and_answers_on_it(qtbot: QtBot) -> None:
    background = Background()
    ran_on: list[threading.Thread] = []
    answered_on: list[threading.Thread] = []
    results: list[int] = []

    def work() -> int:
        ran_on.append(threading.current_thread())
        return 41 + 1

    def done(value: int) -> None:
        answered_on.append(threading.current_thread())
        results.append(value)

    background.submit(work, done, lambda exc: None)
    qtbot.waitUntil(lambda: results == [42], timeout=WAIT_MS)
    assert ran_on[0] is not threading.main_thread()
    assert answered_on == [threading.main_thread()]
    assert not background.busy


def test_an_error_reaches_the_failed_callback_on_the_gui_thread(qtbot: QtBot) -> None:
    background = Background()
    errors: list[tuple[Exception, threading.Thread]] = []

    def work() -> int:
        raise OSError("the share went away")

    background.submit(work, lambda value: None, lambda exc: errors.append((exc, threading.current_thread())))
    qtbot.waitUntil(lambda: bool(errors), timeout=WAIT_MS)
    error, thread = errors[0]
    assert isinstance(error, OSError) and "share" in str(error)
    assert thread is threading.main_thread()


def test_the_newest_submission_of_a_key_wins(qtbot: QtBot) -> None:
    background = Background()
    release = threading.Event()
    results: list[str] = []

    def slow() -> str:
        release.wait(WAIT_MS / 1000)
        return "old folder"

    background.submit(slow, results.append, lambda exc: None, key="history")
    background.submit(lambda: "new folder", results.append, lambda exc: None, key="history")
    background.submit(lambda: "other key", results.append, lambda exc: None, key="thumbnail")
    release.set()
    qtbot.waitUntil(lambda: not background.busy, timeout=WAIT_MS)
    assert results == ["new folder", "other key"]


def test_forget_drops_every_answer_so_far_and_skips_what_has_not_started(qtbot: QtBot) -> None:
    """A replaced list: the read under way is dropped, the ones queued behind it never run, and
    `idle` counts only what was asked since."""
    background = Background()
    release = threading.Event()
    ran: list[str] = []
    results: list[str] = []
    idle: list[int] = []
    background.idle.connect(lambda: idle.append(len(results)))

    def read(name: str) -> Callable[[], str]:
        def work() -> str:
            ran.append(name)
            if name == "old 1":
                release.wait(WAIT_MS / 1000)
            return name

        return work

    for name in ("old 1", "old 2", "old 3"):
        background.submit(read(name), results.append, lambda exc: None)
    qtbot.waitUntil(lambda: ran == ["old 1"], timeout=WAIT_MS)  # the first is under way
    background.forget()
    assert not background.busy
    background.submit(read("new"), results.append, lambda exc: None)
    release.set()
    qtbot.waitUntil(lambda: bool(idle), timeout=WAIT_MS)
    assert results == ["new"] and ran == ["old 1", "new"]
    assert idle == [1] and not background.busy


def test_a_read_that_hangs_leaves_the_event_loop_running(qtbot: QtBot) -> None:
    """A FIFO or a hung share blocks its reader: the GUI thread goes on handling events meanwhile."""
    background = Background()
    release = threading.Event()
    results: list[str] = []

    def hang() -> str:
        release.wait(30)
        return "read"

    background.submit(hang, results.append, lambda exc: None)
    ticks: list[int] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=WAIT_MS)  # the event loop turns while it hangs
    assert results == [] and background.busy
    release.set()
    qtbot.waitUntil(lambda: results == ["read"], timeout=WAIT_MS)
    timer.stop()


def test_results_after_shutdown_are_dropped(qtbot: QtBot) -> None:
    background = Background()
    release = threading.Event()
    results: list[str] = []

    def late() -> str:
        release.wait(WAIT_MS / 1000)
        return "late"

    background.submit(late, results.append, lambda exc: None)
    release.set()
    background.shutdown()
    qtbot.wait(50)
    assert results == []


def test_a_read_hanging_at_exit_does_not_hold_the_application(tmp_path: Path) -> None:
    """The owner is deleted and the application quits while a read of a FIFO waits for a writer that
    never comes: the process still exits (a thread pool's destructor would wait for the read forever)."""
    fifo = tmp_path / "never-written.png"
    os.mkfifo(fifo)
    code = f"""
import sys, time
from PySide6.QtCore import QCoreApplication, QObject
from gui.state.background import Background
app = QCoreApplication([])
owner = QObject()
background = Background(owner)
background.submit(lambda: open({str(fifo)!r}, "rb").read(), print, print)
time.sleep(0.2)  # the read is under way, blocked in open()
background.shutdown(timeout_ms=100)
del background, owner  # the window is gone: its C++ objects are destroyed here
print("exiting", flush=True)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "exiting"
