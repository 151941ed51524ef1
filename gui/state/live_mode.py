"""Live prompting: each pause in typing renders the prompt with one fast mode.

Edits are debounced (a render starts once the prompt has been still for `delay_ms`). A newer render
drops every queued live job and stops the running one at its next step, and only the image of the
newest job is passed on, so a slow old render can never replace the picture of a newer prompt.
Every live render that finishes is saved and enters the history, like any other image.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from engine.contract.errors import FewstepError
from engine.contract.request import GenerationRequest
from gui.state.jobs import EventKind, Job, JobKind, WorkerEvent
from gui.state.worker import EngineWorker

DEBOUNCE_MS = 300  # long enough to skip the keystrokes of a word, short enough to feel live


class LiveRenderer(QObject):
    rendered = Signal(str, object)  # the prompt it was made from, the ModeResult
    failed = Signal(str)

    def __init__(
        self,
        worker: EngineWorker,
        make_request: Callable[[], GenerationRequest],
        next_job_id: Callable[[], int],
        *,
        save_to: Callable[[], Path | None] = lambda: None,
        delay_ms: int = DEBOUNCE_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.worker = worker
        self.save_to = save_to
        self.make_request = make_request
        self.next_job_id = next_job_id
        self.active = False
        self.latest_job: int | None = None
        self.latest_prompt = ""
        self.submitted = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.render_now)

    def set_active(self, active: bool) -> None:
        self.active = active
        if active:
            self.render_now()
        else:
            self._timer.stop()
            self.latest_job = None
            self.worker.cancel_all(JobKind.LIVE)

    def edited(self) -> None:
        if self.active:
            self._timer.start()  # restarts: the render waits for the typing to pause

    def render_now(self) -> None:
        self._timer.stop()
        self.worker.cancel_all(JobKind.LIVE)
        try:
            request = self.make_request()
            request.validate()
        except FewstepError as exc:
            self.latest_job = None
            self.failed.emit(str(exc))
            return
        # Saved like any finished image (a job stopped by a newer edit finishes nothing, saves nothing).
        job = Job(id=self.next_job_id(), request=request, kind=JobKind.LIVE, save_to=self.save_to())
        self.latest_job, self.latest_prompt = job.id, request.prompt
        self.submitted += 1
        self.worker.submit(job, self._job_event)

    def _job_event(self, event: WorkerEvent) -> None:
        if event.job_id != self.latest_job:
            return  # superseded by a newer edit
        if event.kind is EventKind.IMAGE and event.result is not None:
            self.rendered.emit(self.latest_prompt, event.result)
        elif event.kind is EventKind.FAILED:
            self.failed.emit(event.message)
