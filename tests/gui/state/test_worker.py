"""The worker thread on its own: events in order, cancelling, failures that leave it usable."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from devtools.tiny_model import TinyModelSet
from engine.contract.errors import ModelInputError
from engine.contract.request import GenerationRequest, ModeSettings
from engine.files.model_paths import ModelPaths
from engine.outputs.run_writer import HISTORY_FOLDER, write_image_files
from gui.state.jobs import JOB_ENDS, EngineConfig, EventKind, Job, JobKind, WorkerEvent
from gui.state.worker import EngineFactory, EngineWorker, JobRouter, LoadedEngine
from tests.gui.conftest import ENGINE_READY_MS, JOB_MS, wait_event

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
    with wait_event(qtbot, thread, EventKind.ENGINE_READY, timeout=ENGINE_READY_MS):
        thread.start()
    yield thread
    thread.stop()


def finished_run_id(png: Path) -> str:
    return "-".join(png.stem.split("-")[:3])  # 20261128-101502-j3-lcm-seed0 -> 20261128-101502-j3


class Recorder:
    """Every event of the worker's one signal, in the order the GUI thread receives them."""

    def __init__(self, worker: EngineWorker) -> None:
        self.events: list[WorkerEvent] = []
        worker.reported.connect(self.events.append)

    def of(self, job_id: int, *kinds: EventKind) -> list[WorkerEvent]:
        return [e for e in self.events if e.job_id == job_id and (not kinds or e.kind in kinds)]


def test_the_worker_has_one_signal() -> None:
    signals = [name for name, value in vars(EngineWorker).items() if type(value).__name__ == "Signal"]
    assert signals == ["reported"]


def test_a_job_reports_in_order_and_saves(worker: EngineWorker, qtbot: QtBot, tmp_path: Path) -> None:
    recorder = Recorder(worker)
    job = Job(id=1, request=request(*MODES, seeds=(0, 1)), save_to=tmp_path)
    with wait_event(qtbot, worker, EventKind.FINISHED):
        worker.submit(job)
    kinds = [e.kind for e in recorder.of(1)]
    assert kinds[:2] == [EventKind.QUEUED, EventKind.STARTED] and kinds[-1] is EventKind.FINISHED
    # Per image: its steps 1..N in order, then the image; images never interleave.
    assert len(recorder.of(1, EventKind.IMAGE)) == len(MODES) * 2
    steps_seen: dict[tuple[str, int], list[int]] = {}
    done: set[tuple[str, int]] = set()
    for event in recorder.of(1, EventKind.PROGRESS, EventKind.IMAGE):
        if event.progress is not None:
            key = (event.progress.mode, event.progress.seed)
            assert key not in done
            steps_seen.setdefault(key, []).append(event.progress.step)
            assert event.progress.preview is not None and event.progress.preview.shape[2] == 3
        else:
            assert event.result is not None
            key = (event.result.mode, event.result.seed)
            assert steps_seen[key] == [1, 2]
            done.add(key)
            assert event.saved is not None and event.saved.png.is_file() and event.saved.sidecar.is_file()
    # The CLI's `generate` writes the same bytes for the same result: one writer for both.
    loaded = worker._loaded
    assert loaded is not None
    for event in recorder.of(1, EventKind.IMAGE):
        assert event.result is not None and event.saved is not None
        cli_png = tmp_path / "cli" / event.saved.png.name
        cli_sidecar = write_image_files(cli_png, event.result, job.request, loaded.context)
        assert cli_png.read_bytes() == event.saved.png.read_bytes()
        ours = json.loads(event.saved.sidecar.read_text())
        assert ours.pop("run") == finished_run_id(event.saved.png)
        assert json.loads(cli_sidecar.read_text()) == ours
    finished = recorder.of(1)[-1].finished
    assert finished is not None and finished.job_id == 1
    assert finished.run_record is not None and finished.run_record.is_file()
    assert finished.run_record.parent == tmp_path / HISTORY_FOLDER
    assert [(r.mode, r.seed) for r in finished.comparison.results] == [(m, s) for s in (0, 1) for m in MODES]


def test_each_job_s_handler_gets_its_events_alone_until_its_last(worker: EngineWorker, qtbot: QtBot) -> None:
    got: dict[int, list[WorkerEvent]] = {1: [], 2: [], 3: []}
    for job_id in (1, 2, 3):
        worker.submit(Job(id=job_id, request=request("lcm")), got[job_id].append)
    worker.cancel(2)
    qtbot.waitUntil(lambda: all(e and e[-1].kind in JOB_ENDS for e in got.values()), timeout=JOB_MS)
    for job_id, events in got.items():
        assert {e.job_id for e in events} == {job_id}
    assert [e.kind for e in got[2]] == [EventKind.QUEUED, EventKind.CANCELLED]
    for job_id in (1, 3):
        kinds = [e.kind for e in got[job_id]]
        assert kinds[:2] == [EventKind.QUEUED, EventKind.STARTED] and kinds[-1] is EventKind.FINISHED
        assert kinds.count(EventKind.IMAGE) == 1
    assert worker.router.subscribed() == 0  # each job's last event ended its subscription


def test_the_router_ends_a_subscription_with_the_job_s_last_event() -> None:
    router = JobRouter()
    seen: list[WorkerEvent] = []
    router.subscribe(7, seen.append)
    for kind in (EventKind.STARTED, EventKind.FAILED, EventKind.PROGRESS):
        router.route(WorkerEvent(kind=kind, job_id=7, message="x"))
    router.route(WorkerEvent(kind=EventKind.STARTED, job_id=8))  # another job's
    router.route(WorkerEvent(kind=EventKind.STATUS, message="loading"))  # the engine's
    assert [e.kind for e in seen] == [EventKind.STARTED, EventKind.FAILED]
    assert router.subscribed() == 0


def test_cancel_the_running_job_at_its_next_step(worker: EngineWorker, qtbot: QtBot) -> None:
    recorder = Recorder(worker)
    long_job = Job(id=1, request=request("ddim", steps=200))
    queued_job = Job(id=2, request=request("lcm"))

    def cancel_on_first_step(event: WorkerEvent) -> None:
        if event.progress is not None and event.progress.step == 1:
            worker.cancel(1)

    with wait_event(qtbot, worker, EventKind.FINISHED):
        worker.submit(long_job, cancel_on_first_step)
        worker.submit(queued_job)
    assert recorder.of(1, EventKind.CANCELLED)
    assert len(recorder.of(1, EventKind.PROGRESS)) < 200
    assert not recorder.of(1, EventKind.FINISHED)
    finished = [e.job_id for e in recorder.events if e.kind is EventKind.FINISHED]
    assert finished == [2]  # the engine stayed usable


def test_cancel_a_queued_job_drops_it(worker: EngineWorker, qtbot: QtBot) -> None:
    recorder = Recorder(worker)
    with wait_event(qtbot, worker, EventKind.FINISHED):
        worker.submit(Job(id=1, request=request("lcm", steps=8)))
        worker.submit(Job(id=2, request=request("lcm")))
        worker.submit(Job(id=3, request=request("lcm"), kind=JobKind.LIVE))
        worker.cancel(2)
        worker.cancel_all(JobKind.LIVE)
    qtbot.wait(50)
    assert recorder.of(2, EventKind.CANCELLED) and recorder.of(3, EventKind.CANCELLED)
    assert not recorder.of(2, EventKind.STARTED) and not recorder.of(3, EventKind.STARTED)


def test_a_failing_job_says_why_and_the_next_one_runs(worker: EngineWorker, qtbot: QtBot) -> None:
    # Past the GUI's own checks, as a bug would be: the engine refuses it with a message.
    bad = GenerationRequest(prompt="x", modes=(ModeSettings(mode="ddim", steps=2),), width=64, height=41)
    with wait_event(qtbot, worker, EventKind.FAILED) as failed:
        worker.submit(Job(id=1, request=bad))
    event = failed.args[0]
    assert event.job_id == 1 and "multiple of 8" in event.message
    with wait_event(qtbot, worker, EventKind.FINISHED):
        worker.submit(Job(id=2, request=request("lcm")))


def test_an_unexpected_exception_becomes_a_message(
    worker: EngineWorker, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    loaded = worker._loaded
    assert loaded is not None

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(loaded.engine, "run", explode)
    with wait_event(qtbot, worker, EventKind.FAILED) as failed:
        worker.submit(Job(id=1, request=request("lcm")))
    assert "RuntimeError: CUDA out of memory" in failed.args[0].message
    monkeypatch.undo()
    with wait_event(qtbot, worker, EventKind.FINISHED):
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
        with wait_event(qtbot, thread, EventKind.ENGINE_FAILED, timeout=ENGINE_READY_MS) as failed:
            thread.start()
        assert "does not exist" in failed.args[0].message
        with wait_event(qtbot, thread, EventKind.FAILED) as job_failed:
            thread.submit(Job(id=1, request=request("lcm")))
        assert "does not exist" in job_failed.args[0].message
        with wait_event(qtbot, thread, EventKind.ENGINE_READY, timeout=ENGINE_READY_MS):
            thread.configure(EngineConfig(paths=None))
        with wait_event(qtbot, thread, EventKind.FINISHED):
            thread.submit(Job(id=2, request=request("lcm")))
    finally:
        thread.stop()


def test_the_real_loader_builds_the_engine_in_the_thread(qtbot: QtBot, tiny_models: TinyModelSet) -> None:
    paths = ModelPaths(base=Path(tiny_models.base), lightning_lora=Path(tiny_models.lightning_lora))
    thread = EngineWorker(EngineConfig(paths=paths, device="cpu"))
    try:
        with wait_event(qtbot, thread, EventKind.ENGINE_READY, timeout=ENGINE_READY_MS) as ready:
            thread.start()
        info = ready.args[0].info
        assert set(info.available_modes) == {"ddim", "lightning-lora", "euler", "dpmpp-2m", "ays"}
        assert info.steps_of_file("lightning-lora") == 4
        assert not info.builtin
    finally:
        thread.stop()
