"""The one thread that owns the engine: it takes jobs from a queue and reports back with events.

Every model and every device call lives on this thread, so GPU work is serialised and the window
never waits on it. torch and diffusers are imported here, inside run(), after the window is shown.
Everything it reports is a gui.state.jobs.WorkerEvent on its one signal, `reported` (the name `event` is QObject.event, Qt's event handler); whoever submits a
job may pass a handler that receives that job's events alone, on the GUI thread (the one place that
routes by job id). Previews and images travel as numpy arrays and become QImages only in the GUI thread.
Each finished image is handed to the run's writer (engine.outputs.run_writer.RunWriter) once.

Cancelling a queued job removes it from the queue; cancelling the running job sets a flag that the
engine checks after each denoising step, so the job stops at its next step.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.contract.errors import FewstepError, JobCancelled
from engine.contract.info import ComparisonEngine, EngineInfo
from engine.contract.request import ModeResult, Progress
from engine.outputs.comparison_files import RunContext
from engine.outputs.run_writer import RunWriter, new_run_id
from engine.runtime.collector import collect_garbage
from gui.state.jobs import (
    JOB_ENDS,
    EngineConfig,
    EventKind,
    FinishedRun,
    Job,
    JobHandler,
    JobKind,
    WorkerEvent,
)

log = logging.getLogger(__name__)

STOP_TIMEOUT_MS = 60_000  # a job stops at its next step; a 1024 px CPU step can take several seconds


@dataclass(frozen=True)
class LoadedEngine:
    engine: ComparisonEngine
    info: EngineInfo
    context: RunContext  # what saved files say about the model and device


EngineFactory = Callable[[EngineConfig, Callable[[str], None]], LoadedEngine]


def load_engine(config: EngineConfig, say: Callable[[str], None]) -> LoadedEngine:
    """The real engine. Runs on the worker thread: this is where torch is imported."""
    from engine.pocket.model import builtin_model_paths

    say("loading torch and diffusers")
    from engine.runtime.collector import collector_quiet

    with collector_quiet():  # importing creates ~440,000 objects: no full collection meanwhile
        from engine.runtime.device import plan_device
        from engine.runtime.engine import Engine

    paths = config.paths
    if paths is None:
        say("preparing the built-in model (built on first use)")
        paths = builtin_model_paths()
    plan = plan_device(
        None if config.device == "auto" else config.device, None if config.dtype == "auto" else config.dtype
    )
    engine = Engine(
        paths, plan, on_status=say, residency=config.residency, vram=config.vram, lora_route=config.lora_route
    )
    say("hashing the model files (once per file version) for the report and the PNG text")
    context = engine.run_context(say)  # off the GUI thread: a 7 GB file takes about half a minute
    return LoadedEngine(engine=engine, info=engine.info(), context=context)


class JobRouter(QObject):
    """Hands each job's events to the handler given with the job, on the GUI thread; a job's last
    event (JOB_ENDS) ends its subscription."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._handlers: dict[int, JobHandler] = {}

    def subscribe(self, job_id: int, handler: JobHandler) -> None:
        self._handlers[job_id] = handler

    def subscribed(self) -> int:
        return len(self._handlers)

    @Slot(object)
    def route(self, event: WorkerEvent) -> None:
        if event.job_id is None:
            return
        if event.kind in JOB_ENDS:
            handler = self._handlers.pop(event.job_id, None)
        else:
            handler = self._handlers.get(event.job_id)
        if handler is not None:
            handler(event)


class EngineWorker(QThread):
    """Owns the engine; all public methods are called from the GUI thread."""

    reported = Signal(object)  # WorkerEvent: the engine's and every job's

    def __init__(
        self, config: EngineConfig, factory: EngineFactory = load_engine, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._factory = factory
        self._condition = threading.Condition()
        self._pending: deque[Job] = deque()
        self._config = config
        self._loaded_config: EngineConfig | None = None
        self._loaded: LoadedEngine | None = None
        self._style_files: dict[str, Path] = {}  # of the loaded engine; only the worker thread uses it
        self._load_error = "the engine is still loading"
        self._running: Job | None = None
        self._cancel_running = threading.Event()
        self._stopping = False
        # Created on the GUI thread, so events emitted on the worker thread reach it there (queued).
        self.router = JobRouter(self)
        self.reported.connect(self.router.route)

    # --- called from the GUI thread --------------------------------------------------------------

    def submit(self, job: Job, on_event: JobHandler | None = None) -> None:
        """Queue a job; on_event, when given, receives its events (and no other job's) on the GUI thread."""
        if on_event is not None:
            self.router.subscribe(job.id, on_event)
        with self._condition:
            self._pending.append(job)
            self._condition.notify()
        self.reported.emit(WorkerEvent(kind=EventKind.QUEUED, job_id=job.id))

    def cancel(self, job_id: int) -> None:
        """Drop a queued job, or stop the running one at its next step."""
        with self._condition:
            dropped = [job for job in self._pending if job.id == job_id]
            for job in dropped:
                self._pending.remove(job)
            if self._running is not None and self._running.id == job_id:
                self._cancel_running.set()
        for job in dropped:
            self._emit_cancelled(job.id)

    def cancel_all(self, kind: JobKind | None = None) -> None:
        """Drop every queued job (of one kind) and stop the running one (if of that kind)."""
        with self._condition:
            dropped = [job for job in self._pending if kind is None or job.kind is kind]
            for job in dropped:
                self._pending.remove(job)
            if self._running is not None and (kind is None or self._running.kind is kind):
                self._cancel_running.set()
        for job in dropped:
            self._emit_cancelled(job.id)

    def _emit_cancelled(self, job_id: int) -> None:
        self.reported.emit(WorkerEvent(kind=EventKind.CANCELLED, job_id=job_id))

    def _say(self, message: str) -> None:
        self.reported.emit(WorkerEvent(kind=EventKind.STATUS, message=message))

    def configure(self, config: EngineConfig) -> None:
        """Use other model files or another device; the engine reloads before the next job."""
        with self._condition:
            self._config = config
            self._condition.notify()

    def reload(self) -> None:
        """Load again with the same settings, e.g. after the user put the missing files in place."""
        with self._condition:
            self._loaded_config = None
            self._condition.notify()

    def is_busy(self) -> bool:
        with self._condition:
            return self._running is not None or bool(self._pending)

    def waiting(self) -> int:
        """Jobs waiting behind the running one (live mode keeps this at one at most)."""
        with self._condition:
            return len(self._pending)

    def stop(self) -> None:
        """Cancel everything and wait for the thread to end."""
        with self._condition:
            self._stopping = True
            dropped = list(self._pending)
            self._pending.clear()
            self._cancel_running.set()
            self._condition.notify()
        for job in dropped:
            self._emit_cancelled(job.id)
        if not self.wait(STOP_TIMEOUT_MS):
            log.error("the engine thread did not stop within %d s", STOP_TIMEOUT_MS // 1000)

    # --- the worker thread -----------------------------------------------------------------------

    def run(self) -> None:
        while True:
            with self._condition:
                while not self._stopping and not self._pending and self._config == self._loaded_config:
                    self._condition.wait()
                if self._stopping:
                    return
                config = self._config
                job = None
                if config == self._loaded_config:
                    job = self._pending.popleft()
                    self._running = job
                    self._cancel_running.clear()
            if job is None:
                self._load(config)
                continue
            try:
                self._run_job(job)
            finally:
                with self._condition:
                    self._running = None

    def _load(self, config: EngineConfig) -> None:
        self._loaded = None  # free the old models before loading new ones
        # Now, not at some later full collection: models in reference cycles would otherwise keep
        # their memory while the new ones load beside them (full collections wait during a load).
        # On the GUI thread where the window runs one (gui.state.gui_collector), never on this one.
        collect_garbage()
        try:
            loaded = self._factory(config, self._say)
        except FewstepError as exc:
            self._fail_load(config, str(exc))
        except Exception as exc:
            log.exception("loading the engine failed")
            self._fail_load(config, f"loading the models failed: {type(exc).__name__}: {exc}")
        else:
            with self._condition:
                self._loaded, self._loaded_config = loaded, config
            self._style_files = config.style_files()
            self.reported.emit(WorkerEvent(kind=EventKind.ENGINE_READY, info=loaded.info))

    def _fail_load(self, config: EngineConfig, message: str) -> None:
        with self._condition:
            self._loaded_config, self._load_error = config, message
        self.reported.emit(WorkerEvent(kind=EventKind.ENGINE_FAILED, message=message))

    def _fail(self, job: Job, message: str) -> None:
        self.reported.emit(WorkerEvent(kind=EventKind.FAILED, job_id=job.id, message=message))

    def _run_job(self, job: Job) -> None:
        loaded = self._loaded
        if loaded is None:
            self._fail(job, self._load_error)
            return
        self.reported.emit(WorkerEvent(kind=EventKind.STARTED, job_id=job.id))
        writer = None
        if job.save_to is not None:
            writer = RunWriter(
                job.save_to, new_run_id(job.id), job.request, loaded.context, style_files=self._style_files
            )
        save_errors: list[str] = []

        def on_result(result: ModeResult) -> None:
            saved = None
            if writer is not None and not save_errors:
                try:
                    saved = writer.save(result)
                except OSError as exc:
                    save_errors.append(f"images not saved to {writer.root}: {exc.strerror or exc}")
            self.reported.emit(WorkerEvent(kind=EventKind.IMAGE, job_id=job.id, result=result, saved=saved))

        def on_progress(progress: Progress) -> None:
            self.reported.emit(WorkerEvent(kind=EventKind.PROGRESS, job_id=job.id, progress=progress))

        try:
            comparison = loaded.engine.run(
                job.request,
                on_progress=on_progress,
                on_result=on_result,
                should_cancel=self._cancel_running.is_set,
            )
        except JobCancelled:
            _finish_record(writer, "cancelled", save_errors)
            self._emit_cancelled(job.id)
        except FewstepError as exc:
            self._fail(job, str(exc))
        except Exception as exc:
            log.exception("job %d failed", job.id)
            self._fail(job, f"generation failed: {type(exc).__name__}: {exc}")
        else:
            record = _finish_record(writer, "finished", save_errors)
            finished = FinishedRun(
                job_id=job.id,
                comparison=comparison,
                run_record=record,
                save_error=save_errors[0] if save_errors else None,
                context=loaded.context,
            )
            self.reported.emit(WorkerEvent(kind=EventKind.FINISHED, job_id=job.id, finished=finished))


def _finish_record(writer: RunWriter | None, status: str, save_errors: list[str]) -> Path | None:
    """The run's history record, written last; None when nothing was saved."""
    if writer is None:
        return None
    try:
        return writer.finish(status)
    except OSError as exc:
        save_errors.append(f"history entry not saved: {exc.strerror or exc}")
        return None
