"""Python's cyclic garbage collector, run on the GUI thread alone.

A collection frees every unreachable reference cycle, whichever thread runs it and whoever made the
cycle. Python-owned Qt objects in such a cycle (a window or dialog without a parent, a timer, a
pixmap) are then deleted by that thread, and Qt objects must be deleted on the thread they live in.
The engine's thread allocates fast enough to trigger the automatic collector all the time, and frees
models with explicit full collections: either could delete a widget there, which crashes the process
(CI met such crashes in the window's tests). So while a GuiThreadCollector runs:

- the automatic collector is off, and a timer on the GUI thread runs each generation's collection
  when its count passes its threshold, as the automatic collector would (the thresholds are read at
  each check: engine.runtime.collector puts full collections off during a load);
- an explicit collection asked for on another thread (engine.runtime.collector.collect_garbage) runs
  on the GUI thread while the asking thread waits. If the GUI thread does not get to it in time (it
  may itself be waiting on that thread, as when the window closes and stops the engine), the asking
  thread goes on without one, and the next check collects.

pyqtgraph's GarbageCollector does the same, for the same reason; no library offers it for PySide6.
"""

from __future__ import annotations

import gc
import logging
import threading

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from engine.runtime.collector import set_collector

log = logging.getLogger(__name__)

CHECK_MS = 100  # ten checks a second: each is one gc.get_count() unless a threshold is passed
ASK_TIMEOUT_S = 5.0  # how long another thread waits for the GUI thread to run its collection


class GuiThreadCollector(QObject):
    """Owned by the application object; start() once its thread runs Qt's event loop."""

    _asked = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(CHECK_MS)
        self._timer.timeout.connect(self.check)
        self._asked.connect(self._collect_asked)  # queued: emitted on other threads
        self._lock = threading.Lock()
        self._waiting: list[threading.Event] = []
        self._was_enabled = gc.isenabled()
        self._gui_thread = threading.get_ident()  # made on the thread whose event loop runs it

    def start(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()
        set_collector(self.collect)
        self._timer.start()

    def stop(self) -> None:
        """The automatic collector back, as it was; then one full collection, here."""
        self._timer.stop()
        set_collector(None)
        if self._was_enabled:
            gc.enable()
        self._collect_asked()

    @Slot()
    def check(self) -> None:
        """What the automatic collector would do now: the oldest generation whose count has passed
        its threshold is collected, with the younger ones."""
        thresholds, counts = gc.get_threshold(), gc.get_count()
        if thresholds[0] == 0 or counts[0] <= thresholds[0]:
            return
        generation = 0
        if counts[1] > thresholds[1]:
            generation = 2 if counts[2] > thresholds[2] else 1
        gc.collect(generation)

    def collect(self) -> None:
        """A full collection on the GUI thread, from any thread (engine.runtime.collector's hook)."""
        if threading.get_ident() == self._gui_thread:
            gc.collect()
            return
        done = threading.Event()
        with self._lock:
            self._waiting.append(done)
        self._asked.emit()
        if not done.wait(ASK_TIMEOUT_S):
            log.info("the GUI thread did not collect within %.0f s; the next check will", ASK_TIMEOUT_S)

    @Slot()
    def _collect_asked(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, []
        gc.collect()
        for done in waiting:
            done.set()
