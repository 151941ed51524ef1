"""The output folder's disk work, none of it on the GUI thread: claiming and recovering the folder,
reading its history, reading back a run just saved, and exporting a grid into it.

All of it runs on one pool thread (gui.state.background), in the order asked: recovery adopts a
crashed run's images into the history before the history is read, and a record is read back only
after the folder it lies in was claimed. Results come back as signals on the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.contract.info import EngineInfo
from gui.state.background import WAIT_AT_CLOSE_MS, Background
from gui.state.export import export_grid
from gui.state.image_store import RecordError, RunRecord, load_history, read_run_record
from gui.state.jobs import FinishedRun
from gui.state.recovery import OutputClaim, Recovery

HISTORY_KEY = "history"


@dataclass(frozen=True)
class History:
    root: Path
    records: tuple[RunRecord, ...]  # newest first
    damaged: int  # entries that could not be read, skipped
    recovery: Recovery | None = None  # what opening the folder put right; None when nothing was run


class OutputFolder(QObject):
    history_loading = Signal(object)  # the folder (Path) whose history is being read
    history_loaded = Signal(object)  # History
    history_failed = Signal(str)
    record_read = Signal(object)  # RunRecord of a run just saved
    record_failed = Signal(object, str)  # the record's path, why it could not be read
    grid_exported = Signal(object)  # Path
    export_failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._background = Background(self)
        self._claim = OutputClaim()

    @property
    def busy(self) -> bool:
        return self._background.busy

    def open(self, root: Path) -> None:
        """Claim `root` (recovering it when no other window uses it), then read its history."""
        self._read_history(root, claim=True)

    def reload_history(self, root: Path) -> None:
        """Read the history again, claiming nothing."""
        self._read_history(root, claim=False)

    def _read_history(self, root: Path, *, claim: bool) -> None:
        owner = self._claim

        def work() -> History:
            recovery = owner.take(root) if claim else None
            records, damaged = load_history(root)
            return History(root, tuple(records), damaged, recovery)

        self.history_loading.emit(root)
        self._background.submit(work, self.history_loaded.emit, self._history_failed, key=HISTORY_KEY)

    def read_record(self, path: Path, root: Path) -> None:
        """The history entry a finished run just wrote, for the history list."""
        self._background.submit(
            lambda: read_run_record(path, root),
            self.record_read.emit,
            lambda exc: self.record_failed.emit(
                path, str(exc) if isinstance(exc, RecordError) else f"{type(exc).__name__}: {exc}"
            ),
        )

    def export_grid(self, root: Path, event: FinishedRun, info: EngineInfo | None) -> None:
        def failed(exc: Exception) -> None:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.export_failed.emit(f"The grid was not exported: {reason}")

        self._background.submit(lambda: export_grid(root, event, info), self.grid_exported.emit, failed)

    def shutdown(self) -> None:
        """Wait (bounded) for the disk work in progress, then let other windows recover the folder."""
        self._background.shutdown(WAIT_AT_CLOSE_MS)  # it writes: recovered records, exported grids
        self._claim.release()

    def _history_failed(self, exc: Exception) -> None:
        self.history_failed.emit(f"The history could not be read: {type(exc).__name__}: {exc}")
