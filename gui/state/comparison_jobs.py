"""The Generate button's jobs: one comparison at a time, and only its events passed on.

The grid shows the newest comparison only, so a new one stops the one before it, and the events of
stopped or live jobs are never passed on.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.contract.request import ComparisonResult, GenerationRequest
from gui.state.jobs import JOB_ENDS, EventKind, FinishedRun, Job, WorkerEvent
from gui.state.worker import EngineWorker


def finished_summary(comparison: ComparisonResult) -> str:
    total = sum(r.timings.total for r in comparison.results)
    text = f"{len(comparison.results)} images in {total:.2f} s"
    if comparison.skipped:
        text += "; skipped " + ", ".join(f"{s.mode} ({s.reason})" for s in comparison.skipped)
    return text


class ComparisonJobs(QObject):
    reported = Signal(object)  # WorkerEvent of the current comparison (never QUEUED: it is known at submit)

    def __init__(self, worker: EngineWorker, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        self.current: int | None = None
        self.last_finished: FinishedRun | None = None
        self._ids = itertools.count(1)

    @property
    def running(self) -> bool:
        return self.current is not None

    def next_job_id(self) -> int:
        """Shared with live mode: every job of the worker has its own id."""
        return next(self._ids)

    def stop_current(self) -> None:
        """A queued one is dropped at once (and CANCELLED passed on); a running one stops at its next step."""
        if self.current is not None:
            self.worker.cancel(self.current)

    def submit(self, request: GenerationRequest, save_to: Path | None) -> int:
        job = Job(id=self.next_job_id(), request=request, save_to=save_to)
        self.current = job.id
        self.last_finished = None
        self.worker.submit(job, self._job_event)
        return job.id

    def cancel_all(self) -> None:
        """Escape: the comparison and any live render."""
        self.worker.cancel_all()

    def _job_event(self, event: WorkerEvent) -> None:
        # A stopped comparison's events may still arrive after a newer one started: never passed on.
        if event.job_id != self.current or event.kind is EventKind.QUEUED:
            return
        if event.kind in JOB_ENDS:
            self.current = None
            self.last_finished = event.finished
        self.reported.emit(event)
