"""The bench's one writer, on a thread of its own: it saves each cell (its PNG, then its record) and
measures it while the engine makes the next one.

Saving and measuring a cell is PNG encoding, two fsyncs and some numpy: on the engine's thread it
would add to every cell; here it runs on another core while torch computes (its kernels release the
GIL, and a bench runs torch with the user's thread count) or waits on the GPU.

A hand-over of one: the engine's thread hands cell N+1 over only once cell N's record is written. So
the cells "in flight" are the one being made and, for the few milliseconds its files take, the one
before it, which is finished but not yet saved; a kill (SIGKILL, out of memory) loses at most those two,
the second unfinished, and never leaves half a cell (each file is atomic, the record last). Ctrl-C or
an error on the engine's side loses only the cell being made: close() saves the one handed over first.
Cells are saved in the order handed over, by this one thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from engine.cli.bench_work import CellDone


class CellWriter:
    """save(done) writes a cell's files; measure(done), if given, runs after it (off the hand-over's
    path: the next cell is taken as soon as this one is saved). An error in either stops the writer
    and is raised on the engine's thread at its next hand_over() or at close()."""

    def __init__(
        self, save: Callable[[CellDone], None], measure: Callable[[CellDone], None] | None = None
    ) -> None:
        self._save = save
        self._measure = measure
        self._slot: queue.SimpleQueue[CellDone | None] = queue.SimpleQueue()
        self._saved = threading.Semaphore(1)  # released when the cell handed over last is saved
        self._failure: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="fewstep-bench-writer", daemon=True)
        self._thread.start()

    def hand_over(self, done: CellDone) -> None:
        """Give the writer a finished cell, once the one handed over before is saved."""
        self._saved.acquire()
        self._raise_failure()
        self._slot.put(done)

    def close(self) -> None:
        """Wait until every cell handed over is saved and measured; raise the writer's error, if any."""
        if not self._closed:
            self._closed = True
            self._slot.put(None)
            self._thread.join()
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def _run(self) -> None:
        stopped = False  # after an error, no more files: the engine's thread raises it and stops
        while (done := self._slot.get()) is not None:
            if not stopped:
                try:
                    self._save(done)
                except BaseException as exc:  # raised again on the engine's thread
                    self._failure, stopped = exc, True
            self._saved.release()
            if not stopped and self._measure is not None:
                try:
                    self._measure(done)
                except BaseException as exc:
                    self._failure, stopped = exc, True
