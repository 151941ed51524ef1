"""The worker thread on its own: events in order, cancelling, failures that leave it usable."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from devtools.tiny_model import TinyModelSet
from engine.contract.errors import ModelInputError
from engine.contract.request import GenerationRequest, ModeSettings
from engine.files.model_paths import ModelPaths
from gui.state.jobs import EngineConfig, FailedEvent, FinishedEvent, ImageEvent, Job, JobKind, ProgressEvent
from gui.state.worker import EngineFactory, EngineWorker, LoadedEngine
from tests.gui.conftest import ENGINE_READY_MS, JOB_MS

MODES = ("ddim", "lcm", "lightning-lora")


def request(*modes: str, steps: int = 2, seeds: tuple[int, ...] = (0,)) -> GenerationRequest:
    return GenerationRequest(
        prompt="a red circle",
        seeds=seeds,
        modes=tuple(ModeSettings(mode=m, steps=steps) for m in modes),
        want_previews=True,
    )


@pytest.fixture
def worker(shared_engine_factory: EngineFactory, qtbot: QtBot) -> Iterator[EngineWorker]:
    thread = EngineWorker(EngineConfig(paths=None), shared_engine_factory)
    with qtbot.waitSignal(thread.engine_ready, timeout=ENGINE_READY_MS):
        thread.start()
    yield thread
    thread.stop()


class Recorder:
    def __init__(self, worker: EngineWorker) -> None:
        self.events: list[tuple[str, object]] = []
        worker.queued.connect(lambda job_id: self.events.append(("queued", job_id)))
        worker.job_started.connect(lambda job_id: self.events.append(("started", job_id)))
        worker.progress.connect(lambda event: self.events.append(("progress", event)))
        worker.image_ready.connect(lambda event: self.events.append(("image", event)))
        worker.job_finished.connect(lambda event: self.events.append(("finished", event)))
        worker.job_cancelled.connect(lambda job_id: self.events.append(("cancelled", job_id)))
        worker.job_failed.connect(lambda event: self.events.append(("failed", event)))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


def test_a_job_reports_in_order_and_saves(worker: EngineWorker, qtbot: QtBot, tmp_path: Path) -> None:
    recorder = Recorder(worker)
    job = Job(id=1, request=request(*MODES, seeds=(0, 1)), save_to=tmp_path)
    with qtbot.waitSignals(
        [worker.queued, worker.job_started, worker.job_finished], order="strict", timeout=JOB_MS
    ):
        worker.submit(job)
    kinds = recorder.kinds()
    assert kinds[:2] == ["queued", "started"] and kinds[-1] == "finished"
    # Per image: its steps 1..N in order, then the image; images never interleave.
    images = [event for kind, event in recorder.events if kind == "image"]
    assert len(images) == len(MODES) * 2
    steps_seen: dict[tuple[str, int], list[int]] = {}
    done: set[tuple[str, int]] = set()
    for _kind, event in recorder.events:
        if isinstance(event, ProgressEvent):
            key = (event.progress.mode, event.progress.seed)
            assert key not in done
            steps_seen.setdefault(key, []).append(event.progress.step)
            assert event.progress.preview is not None and event.progress.preview.shape[2] == 3
        elif isinstance(event, ImageEvent):
            key = (event.result.mode, event.result.seed)
            assert steps_seen[key] == [1, 2]
            done.add(key)
            assert event.saved is not None and event.saved.png.is_file() and event.saved.sidecar.is_file()
    finished = recorder.events[-1][1]
    assert isinstance(finished, FinishedEvent)
    assert finished.run_record is not None and finished.run_record.is_file()
    assert [(r.mode, r.seed) for r in finished.comparison.results] == [(m, s) for s in (0, 1) for m in MODES]


def test_cancel_the_running_job_at_its_next_step(worker: EngineWorker, qtbot: QtBot) -> None:
    recorder = Recorder(worker)
    long_job = Job(id=1, request=request("ddim", steps=200))
    queued_job = Job(id=2, request=request("lcm"))

    def cancel_on_first_step(event: ProgressEvent) -> None:
        if event.progress.step == 1:
            worker.cancel(1)

    worker.progress.connect(cancel_on_first_step)
    with qtbot.waitSignal(worker.job_finished, timeout=JOB_MS):
        worker.submit(long_job)
        worker.submit(queued_job)
    worker.progress.disconnect(cancel_on_first_step)
    assert ("cancelled", 1) in recorder.events
    steps = [e.progress.step for _, e in recorder.events if isinstance(e, ProgressEvent) and e.job_id == 1]
    assert len(steps) < 200
    assert not any(isinstance(e, FinishedEvent) and e.job_id == 1 for _, e in recorder.events)
    finished = [e for _, e in recorder.events if isinstance(e, FinishedEvent)]
    assert [e.job_id for e in finished] == [2]  # the engine stayed usable


def test_cancel_a_queued_job_drops_it(worker: EngineWorker, qtbot: QtBot) -> None:
    recorder = Recorder(worker)
    with qtbot.waitSignal(worker.job_finished, timeout=JOB_MS):
        worker.submit(Job(id=1, request=request("lcm", steps=8)))
        worker.submit(Job(id=2, request=request("lcm")))
        worker.submit(Job(id=3, request=request("lcm"), kind=JobKind.LIVE))
        worker.cancel(2)
        worker.cancel_all(JobKind.LIVE)
    qtbot.wait(50)
    assert ("cancelled", 2) in recorder.events and ("cancelled", 3) in recorder.events
    assert ("started", 2) not in recorder.events and ("started", 3) not in recorder.events


def test_a_failing_job_says_why_and_the_next_one_runs(worker: EngineWorker, qtbot: QtBot) -> None:
    # Past the GUI's own checks, as a bug would be: the engine refuses it with a message.
    bad = GenerationRequest(prompt="x", modes=(ModeSettings(mode="ddim", steps=2),), width=64, height=41)
    with qtbot.waitSignal(worker.job_failed, timeout=JOB_MS) as failed:
        worker.submit(Job(id=1, request=bad))
    event = failed.args[0]
    assert isinstance(event, FailedEvent) and "multiple of 8" in event.message
    with qtbot.waitSignal(worker.job_finished, timeout=JOB_MS):
        worker.submit(Job(id=2, request=request("lcm")))


def test_an_unexpected_exception_becomes_a_message(
    worker: EngineWorker, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    loaded = worker._loaded
    assert loaded is not None

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(loaded.engine, "run", explode)
    with qtbot.waitSignal(worker.job_failed, timeout=JOB_MS) as failed:
        worker.submit(Job(id=1, request=request("lcm")))
    assert "RuntimeError: CUDA out of memory" in failed.args[0].message
    monkeypatch.undo()
    with qtbot.waitSignal(worker.job_finished, timeout=JOB_MS):
        worker.submit(Job(id=2, request=request("lcm")))


def test_a_failed_load_fails_jobs_with_its_message_until_reconfigured(
    shared_engine_factory: EngineFactory, qtbot: QtBot
) -> None:
    def factory(config: EngineConfig, say: Callable[[str], None]) -> LoadedEngine:
        if config.paths is not None and config.paths.base == Path("/nowhere"):
            raise ModelInputError("/nowhere does not exist: check the path")
        return shared_engine_factory(config, say)

    thread = EngineWorker(EngineConfig(paths=ModelPaths(base=Path("/nowhere"))), factory)
    try:
        with qtbot.waitSignal(thread.engine_failed, timeout=ENGINE_READY_MS) as failed:
            thread.start()
        assert "does not exist" in failed.args[0]
        with qtbot.waitSignal(thread.job_failed, timeout=JOB_MS) as job_failed:
            thread.submit(Job(id=1, request=request("lcm")))
        assert "does not exist" in job_failed.args[0].message
        with qtbot.waitSignal(thread.engine_ready, timeout=ENGINE_READY_MS):
            thread.configure(EngineConfig(paths=None))
        with qtbot.waitSignal(thread.job_finished, timeout=JOB_MS):
            thread.submit(Job(id=2, request=request("lcm")))
    finally:
        thread.stop()


def test_the_real_loader_builds_the_engine_in_the_thread(qtbot: QtBot, tiny_models: TinyModelSet) -> None:
    paths = ModelPaths(base=Path(tiny_models.base), lightning_lora=Path(tiny_models.lightning_lora))
    thread = EngineWorker(EngineConfig(paths=paths, device="cpu"))
    try:
        with qtbot.waitSignal(thread.engine_ready, timeout=ENGINE_READY_MS) as ready:
            thread.start()
        info = ready.args[0]
        assert set(info.available_modes) == {"ddim", "lightning-lora", "euler", "dpmpp-2m"}
        assert info.steps_of_file("lightning-lora") == 4
        assert not info.builtin
    finally:
        thread.stop()
