"""GUI fixtures: offscreen Qt, private settings and output folders, the real worker on the tiny models.

Every test fails if it leaves a QThread running (napari's rule): a worker that outlives its test
would keep the engine busy and emit signals into the next test.
"""

from __future__ import annotations

import os

# Before Qt is imported: no display is needed, and none of the developer's is used.
os.environ["QT_QPA_PLATFORM"] = "offscreen"

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication, QThread
from pytestqt.qtbot import QtBot
from pytestqt.wait_signal import SignalBlocker
from safetensors.numpy import save_file

from devtools.tiny_model import TinyModelSet
from engine.contract.modes import ModelRole
from engine.outputs.comparison_files import RunContext
from engine.runtime.engine import Engine
from gui.state.gui_collector import GuiThreadCollector
from gui.state.jobs import EngineConfig, EventKind, WorkerEvent
from gui.state.settings import Settings, save_settings
from gui.state.worker import EngineFactory, EngineWorker, LoadedEngine
from gui.widgets.main_window import MainWindow
from gui.widgets.theme import apply_theme

ENGINE_READY_MS = 120_000
JOB_MS = 120_000


def kind_is(*kinds: EventKind) -> Callable[[WorkerEvent], bool]:
    """For qtbot.waitSignal(s)' check_params_cb(s): a worker event of one of these kinds."""
    return lambda event: event.kind in kinds


def anything(*_args: object) -> bool:
    """For qtbot.waitSignals' check_params_cbs: this signal's arguments do not matter."""
    return True


def wait_event(qtbot: QtBot, worker: EngineWorker, *kinds: EventKind, timeout: int = JOB_MS) -> SignalBlocker:
    """Waits (as a `with` block) for the worker's next event of one of these kinds; .args[0] is it."""
    return qtbot.waitSignal(worker.reported, timeout=timeout, check_params_cb=kind_is(*kinds))


@pytest.fixture(autouse=True)
def _gui_thread_collections(qapp: Any) -> Iterator[None]:
    """As in the application: cyclic collections on the GUI thread alone (gui.state.gui_collector), so
    that a collection on an engine thread never deletes a window of an earlier test there. Stopped
    (automatic collection back, then one full collection here) once the test's worker has stopped."""
    collector = GuiThreadCollector(qapp)
    collector.start()
    yield
    collector.stop()
    collector.deleteLater()


@pytest.fixture(autouse=True)
def _kept_signal_waits(monkeypatch: pytest.MonkeyPatch, _gui_thread_collections: None) -> Iterator[None]:
    """pytest-qt's SignalBlocker is no QObject. What the worker thread emitted before a wait ended
    still reaches the blocker's bound method later, queued, after the disconnect; and PySide6 calls
    it even once the blocker has been freed: a segfault in a later processEvents (test_live_mode
    crashed 4 times in 11 runs). So every blocker lives until the worker is stopped (by make_window,
    or by _no_thread_left, which asks for this fixture and so is torn down before it) and the queue
    drained."""
    kept: list[object] = []
    original_one, original_many = QtBot.waitSignal, QtBot.waitSignals

    def wait_signal(self: QtBot, *args: Any, **kwargs: Any) -> Any:
        blocker = original_one(self, *args, **kwargs)
        kept.append(blocker)
        return blocker

    def wait_signals(self: QtBot, *args: Any, **kwargs: Any) -> Any:
        blocker = original_many(self, *args, **kwargs)
        kept.append(blocker)
        return blocker

    monkeypatch.setattr(QtBot, "waitSignal", wait_signal)
    monkeypatch.setattr(QtBot, "waitSignals", wait_signals)
    yield
    if (app := QCoreApplication.instance()) is not None:
        app.processEvents()
    kept.clear()


@pytest.fixture(autouse=True)
def _no_thread_left(monkeypatch: pytest.MonkeyPatch, _kept_signal_waits: None) -> Iterator[None]:
    started: list[QThread] = []
    original_start = QThread.start

    def start(self: QThread, *args: Any) -> None:
        started.append(self)
        original_start(self, *args)

    monkeypatch.setattr(QThread, "start", start)
    yield
    running = []
    for thread in started:
        try:
            if thread.isRunning():
                running.append(thread)
        except RuntimeError:  # its C++ object is gone, so it has stopped
            continue
    for thread in running:  # stop them, so that one leak does not spill into the next tests
        if isinstance(thread, EngineWorker):
            thread.stop()
        else:
            thread.quit()
            thread.wait(10_000)
    if running:
        pytest.fail(f"{len(running)} QThread(s) still running after the test: {running}")


@pytest.fixture(autouse=True)
def _private_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the developer's settings."""
    path = tmp_path / "config" / "settings.json"
    monkeypatch.setenv("FEWSTEP_SETTINGS", str(path))
    return path


@pytest.fixture(autouse=True)
def _private_model_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The models panel scans a private data folder and an empty Hugging Face cache, never the developer's."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    return tmp_path / "out"


def roles_of(models: TinyModelSet) -> dict[str, Path]:
    return {
        ModelRole.BASE: Path(models.base),
        ModelRole.LCM_UNET: Path(models.lcm_unet),
        ModelRole.LCM_LORA: Path(models.lcm_lora),
        ModelRole.LIGHTNING_UNET: Path(models.lightning_unet),
        ModelRole.LIGHTNING_LORA: Path(models.lightning_lora),
    }


@pytest.fixture
def gui_settings(tiny_models: TinyModelSet, output_dir: Path) -> Settings:
    settings = Settings(model_paths=roles_of(tiny_models), output_dir=output_dir)
    save_settings(settings)
    return settings


@pytest.fixture
def shared_engine_factory(engine_all: Engine) -> EngineFactory:
    """The session's engine, so that each test skips the 2 s load; the worker and its thread are real."""

    def factory(config: EngineConfig, say: Callable[[str], None]) -> LoadedEngine:
        say("using the test session's engine")
        label = "tiny test model"
        return LoadedEngine(
            engine=engine_all,
            info=replace(engine_all.info(), model_label=label),
            context=RunContext(model_label=label, device="cpu"),
        )

    return factory


WindowMaker = Callable[..., MainWindow]


@pytest.fixture
def make_window(
    qtbot: QtBot, qapp: Any, gui_settings: Settings, shared_engine_factory: EngineFactory
) -> Iterator[WindowMaker]:
    """A started main window whose engine is ready; closed (and its worker stopped) afterwards."""
    apply_theme(qapp)
    windows: list[MainWindow] = []

    def make(
        settings: Settings | None = None,
        factory: EngineFactory | None = None,
        wait_ready: bool = True,
        start: bool = True,
    ) -> MainWindow:
        """start=False leaves window.start() to the test, to wait on a signal the start may emit."""
        chosen = settings or gui_settings
        worker = EngineWorker(
            EngineConfig(paths=chosen.model_paths_for_engine(), device="cpu"),
            factory or shared_engine_factory,
        )
        window = MainWindow(chosen, worker)
        qtbot.addWidget(window)
        windows.append(window)
        window.show()
        if not start:
            return window
        if not wait_ready:
            window.start()  # the test looks at the window before the engine (or the history) is ready
            return window
        with wait_event(qtbot, worker, EventKind.ENGINE_READY, timeout=ENGINE_READY_MS):
            window.start()
        # The output folder is claimed and its history read off the GUI thread: tests start after.
        qtbot.waitUntil(lambda: not window.output.busy, timeout=ENGINE_READY_MS)
        return window

    yield make
    for window in windows:
        window.close()
        window.worker.stop()


def write_vae_file(path: Path) -> Path:
    """What engine.files.model_files takes for an SDXL VAE file (its keys), with tiny tensors."""
    save_file(
        {
            "encoder.down.0.block.0.conv1.weight": np.zeros((4, 4, 3, 3), np.float16),
            "decoder.conv_in.weight": np.zeros((4, 4, 3, 3), np.float16),
        },
        str(path),
    )
    return path


def two_step_modes(window: MainWindow, modes: tuple[str, ...]) -> None:
    """Only these modes, at 2 steps each: the tiny model renders a tile in a few hundredths of a second."""
    window.mode_panel.set_checked(modes)
    for mode in modes:
        window.mode_panel.apply(mode, steps=2, guidance=None)
