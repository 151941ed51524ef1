"""Work that touches the disk, run off the GUI thread, its result handed back on the GUI thread.

Every file the window reads can be hostile or slow: a FIFO in place of a PNG blocks its reader until
a writer appears, a file on a hung network share blocks for minutes, and a folder of thousands of
images takes seconds to list. So the window reads nothing itself. A `Background` owns one thread
(reads from one place stay in order: recovery before the history it adopts into) and hands
each result to a callback on the GUI thread through a queued signal, so a stuck read stalls that
one owner's later reads, never the window.

A key makes the newest submission win: the result of an older one with the same key is dropped,
as a history folder that was left for another no longer matters. forget() drops everything asked so
far, and skips what has not started: the thumbnails of a list that was replaced.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

T = TypeVar("T")

WAIT_AT_CLOSE_MS = 5_000  # for owners that write: long enough for a save, short enough to close


@dataclass(frozen=True)
class _Outcome:
    key: str | None
    ticket: int
    epoch: int
    value: Any
    error: Exception | None
    done: Callable[[Any], None]
    failed: Callable[[Exception], None]


class Background(QObject):
    """submit() returns at once; `done(result)` or `failed(exception)` follows on the GUI thread."""

    _finished = Signal(object)  # _Outcome, queued to the thread this object lives in
    idle = Signal()  # every submission since the last forget() is answered (or replaced by its key)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # A daemon thread of Python's, not a QThreadPool: a pool's destructor waits for its work
        # without a limit, so a read that hangs on a dead share would hang the application's exit.
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._tickets = 0
        self._newest: dict[str, int] = {}
        self._pending = 0  # submissions since the last forget() not answered yet
        self._epoch = 0  # forget() starts a new one; work of an older one is skipped and dropped
        self._closed = False
        self._finished.connect(self._deliver)

    def submit(
        self,
        work: Callable[[], T],
        done: Callable[[T], None],
        failed: Callable[[Exception], None],
        *,
        key: str | None = None,
    ) -> None:
        if self._closed:
            return
        self._tickets += 1
        ticket = self._tickets
        if key is not None:
            self._newest[key] = ticket
        self._pending += 1
        finished = self._finished
        epoch = self._epoch

        def run() -> None:
            value: Any = None
            error: Exception | None = None
            if epoch == self._epoch:  # else forgotten before it started: skip the read
                try:
                    value = work()
                except Exception as exc:  # handed to `failed`, which says it in the window
                    error = exc
            # RuntimeError: the owner was deleted meanwhile, and nobody waits for the answer.
            with contextlib.suppress(RuntimeError):
                finished.emit(_Outcome(key, ticket, epoch, value, error, done, failed))

        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, args=(self._queue,), name="fewstep-disk", daemon=True
            )
            self._thread.start()
        self._queue.put(run)

    @property
    def busy(self) -> bool:
        """Work submitted (since the last forget()) whose result has not been handed over yet."""
        return self._pending > 0

    def forget(self) -> None:
        """Drop the answers of everything submitted so far; what has not started yet is skipped."""
        self._epoch += 1
        self._pending = 0

    def shutdown(self, timeout_ms: int = 0) -> None:
        """Drop every pending result; wait at most timeout_ms for the work in progress to end.

        Readers pass nothing: a read cut short at exit leaves nothing behind. A writer passes a bound,
        so that a save in progress can finish its file (an atomic write left half-way leaves only a
        temporary file, removed at the next start)."""
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_ms / 1000)

    @staticmethod
    def _run(jobs: queue.SimpleQueue[Callable[[], None] | None]) -> None:
        while (job := jobs.get()) is not None:
            job()

    def _deliver(self, outcome: _Outcome) -> None:
        if outcome.epoch != self._epoch or self._closed:
            return  # forgotten, or the owner is closing
        self._pending -= 1
        self._hand_over(outcome)
        if not self._pending:
            self.idle.emit()

    def _hand_over(self, outcome: _Outcome) -> None:
        if outcome.key is not None and self._newest.get(outcome.key) != outcome.ticket:
            return  # a newer submission with this key replaced it
        if outcome.error is not None:
            if not isinstance(outcome.error, OSError | ValueError):
                log.error("background work failed", exc_info=outcome.error)
            outcome.failed(outcome.error)
        else:
            outcome.done(outcome.value)
