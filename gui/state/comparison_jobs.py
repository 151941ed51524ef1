"""The Generate button's jobs: one comparison at a time, and only its events passed on.

The grid shows the newest comparison only, so a new one stops the one before it, and the events of
stopped or live jobs are never passed on.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.contract.request import ComparisonResult, GenerationRequest
from gui.state.jobs import FailedEvent, FinishedEvent, ImageEvent, Job, ProgressEvent
from gui.state.worker import EngineWorker


def finished_summary(comparison: ComparisonResult) -> str:
    total = sum(r.timings.total for r in comparison.results)
    text = f"{len(comparison.results)} images in {total:.2f} s"
    if comparison.skipped:
        text += "; skipped " + ", ".join(f"{s.mode} ({s.reason})" for s in comparison.skipped)
    return text


class ComparisonJobs(QObject):
    started = Signal()
    progress = Signal(object)  # Progress
    image_ready = Signal(object)  # ModeResult
    finished = Signal(object)  # FinishedEvent
    cancelled = Signal()
    failed = Signal(str)

    def __init__(self, worker: EngineWorker, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        self.current: int | None = None
        self.last_finished: FinishedEvent | None = None
        self._ids = itertools.count(1)
        worker.job_started.connect(self._job_started)
        worker.progress.connect(self._progress)
        worker.image_ready.connect(self._image_ready)
        worker.job_finished.connect(self._job_finished)
        worker.job_cancelled.connect(self._job_cancelled)
        worker.job_failed.connect(self._job_failed)

    @property
    def running(self) -> bool:
        return self.current is not None

    def next_job_id(self) -> int:
        """Shared with live mode: every job of the worker has its own id."""
        return next(self._ids)

    def stop_current(self) -> None:
        """A queued one is dropped at once (and `cancelled` emitted); a running one stops at its next step."""
        if self.current is not None:
            self.worker.cancel(self.current)

    def submit(self, request: GenerationRequest, save_to: Path | None) -> int:
        job = Job(id=self.next_job_id(), request=request, save_to=save_to)
        self.current = job.id
        self.last_finished = None
        self.worker.submit(job)
        return job.id

    def cancel_all(self) -> None:
        """Escape: the comparison and any live render."""
        self.worker.cancel_all()

    def _job_started(self, job_id: int) -> None:
        if job_id == self.current:
            self.started.emit()

    def _progress(self, event: ProgressEvent) -> None:
        if event.job_id == self.current:
            self.progress.emit(event.progress)

    def _image_ready(self, event: ImageEvent) -> None:
        if event.job_id == self.current:
            self.image_ready.emit(event.result)

    def _job_finished(self, event: FinishedEvent) -> None:
        if event.job_id == self.current:
            self.current = None
            self.last_finished = event
            self.finished.emit(event)

    def _job_cancelled(self, job_id: int) -> None:
        if job_id == self.current:
            self.current = None
            self.cancelled.emit()

    def _job_failed(self, event: FailedEvent) -> None:
        if event.job_id == self.current:
            self.current = None
            self.failed.emit(event.message)
