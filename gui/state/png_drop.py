"""A dropped PNG's settings, read off the GUI thread.

A dropped "PNG" can be anything: a FIFO, which blocks the reader until a writer appears, or a file
on a slow or hung network share. The read and parse run on a pool thread of their own; the result
comes back to the GUI thread as a queued signal, and the window stays responsive whatever the file.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal

from gui.state.parameters import ParametersError, RestoredSettings, restore_from_png

READ_WAIT_MS = 5_000


class PngSettingsReader(QObject):
    """read(path) returns at once; `finished` (path, RestoredSettings or ParametersError) follows."""

    finished = Signal(object, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)

    def read(self, path: Path) -> None:
        def work() -> None:
            result: RestoredSettings | ParametersError
            try:
                result = restore_from_png(path)
            except ParametersError as exc:
                result = exc
            except Exception as exc:
                result = ParametersError(f"cannot read {path.name}: {type(exc).__name__}: {exc}")
            self.finished.emit(path, result)

        self._pool.start(work)

    def shutdown(self, timeout_ms: int = READ_WAIT_MS) -> None:
        self._pool.waitForDone(timeout_ms)
