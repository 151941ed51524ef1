"""A model path's check (its safetensors header or config.json) never runs on the GUI thread: not in the
settings dialog as a path is typed, not when a file is given a use from the Models tab or the style panel.
A check that hangs, as on a hung network share, leaves the window turning."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

import gui.state.model_setup
from devtools.tiny_model import TinyModelSet
from engine.contract.modes import ModelRole
from engine.files.model_files import ModelFile
from gui.state.jobs import EngineConfig
from gui.state.model_controller import ModelController
from gui.state.model_setup import Use, check_use
from gui.state.settings import Settings, load_settings
from gui.state.worker import EngineWorker
from gui.widgets.settings_dialog import PathRow, SettingsDialog
from tests.gui.conftest import write_vae_file

WAIT_MS = 5_000
BLOCK_S = 10.0  # bounded, so that on code that checks on the GUI thread the test fails instead of hanging


@dataclass
class BlockedCheck:
    """check_use that notes its thread and waits for the test's release before the real check."""

    release: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    returned: threading.Event = field(default_factory=threading.Event)

    def __call__(self, use: Use, path: Path) -> ModelFile:
        self.threads.append(threading.current_thread())
        try:
            self.release.wait(BLOCK_S)
            return check_use(use, path)
        finally:
            self.returned.set()


@pytest.fixture
def ticks() -> Iterator[Callable[[], int]]:
    """A 10 ms timer on the GUI thread: it ticks only while the event loop turns."""
    count = [0]
    timer = QTimer()
    timer.setInterval(10)

    def tick() -> None:
        count[0] += 1

    timer.timeout.connect(tick)
    timer.start()
    yield lambda: count[0]
    timer.stop()


def checked(row: PathRow) -> Callable[[], bool]:
    return lambda: not row.pending


def blocked(monkeypatch: pytest.MonkeyPatch, module: object) -> Iterator[BlockedCheck]:
    check = BlockedCheck()
    monkeypatch.setattr(module, "check_use", check)
    try:
        yield check
    finally:
        check.release.set()  # never leave the pool thread blocked past the test


# The dialog and the controller both check through gui.state.model_setup.checked_use.
@pytest.fixture
def dialog_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[BlockedCheck]:
    yield from blocked(monkeypatch, gui.state.model_setup)


@pytest.fixture
def controller_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[BlockedCheck]:
    yield from blocked(monkeypatch, gui.state.model_setup)


def test_the_dialog_checks_a_typed_path_off_the_gui_thread_and_save_waits_for_it(
    qtbot: QtBot, tiny_models: TinyModelSet, dialog_check: BlockedCheck, ticks: Callable[[], int]
) -> None:
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    base = dialog.rows[ModelRole.BASE]
    base.edit.setText(str(tiny_models.base))
    qtbot.waitUntil(lambda: bool(dialog_check.threads), timeout=WAIT_MS)  # the check has started
    start = ticks()
    qtbot.waitUntil(lambda: ticks() >= start + 5, timeout=WAIT_MS)  # and the event loop turns meanwhile
    assert not dialog_check.returned.is_set()
    assert dialog_check.threads[0] is not threading.main_thread()
    assert base.pending and base.error is None and "checking" in base.status.text()
    assert dialog.checking() == ["SDXL base"]
    assert dialog.problems() == ["SDXL base: still being checked"]

    dialog.accept()  # Save before the answer: the dialog stays open and says it waits
    assert dialog.result() == 0 and "once these are checked: SDXL base" in dialog.problem.text()
    dialog_check.release.set()
    qtbot.waitUntil(lambda: dialog.result() == 1, timeout=WAIT_MS)  # saved when the answer came
    assert not base.pending and base.error is None and "✓" in base.status.text()
    assert dialog.chosen_settings().model_paths == {ModelRole.BASE: Path(tiny_models.base)}


def test_closing_the_dialog_does_not_wait_for_a_check_that_hangs(
    qtbot: QtBot, tiny_models: TinyModelSet, dialog_check: BlockedCheck
) -> None:
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    vae = dialog.vae_row
    vae.edit.setText(str(tiny_models.lcm_lora))
    qtbot.waitUntil(lambda: bool(dialog_check.threads), timeout=WAIT_MS)
    dialog.reject()
    assert dialog.result() == 0 and not dialog_check.returned.is_set()  # closed while the check hangs
    dialog_check.release.set()
    assert dialog_check.returned.wait(WAIT_MS / 1000)
    qtbot.wait(50)
    assert vae.pending and "checking" in vae.status.text()  # the late answer was dropped


def test_save_waits_for_a_pending_check_unless_the_path_is_edited_again(
    qtbot: QtBot, tiny_models: TinyModelSet, tmp_path: Path
) -> None:
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    vae = dialog.vae_row
    vae.edit.setText(str(tiny_models.lcm_lora))  # not a VAE; its check waits for a pause in typing
    dialog.accept()
    assert dialog.result() == 0 and "once these are checked: VAE" in dialog.problem.text()
    qtbot.waitUntil(lambda: not vae.pending, timeout=WAIT_MS)
    assert dialog.result() == 0 and "Fix or clear these first" in dialog.problem.text()
    assert "VAE:" in dialog.problem.text() and "not a VAE" in dialog.problem.text()

    vae.edit.setText(str(write_vae_file(tmp_path / "sdxl_vae.safetensors")))
    dialog.accept()
    vae.edit.setText(str(tmp_path / "elsewhere"))  # still choosing: Save no longer waits
    assert dialog.problem.text() == ""
    qtbot.waitUntil(lambda: not vae.pending, timeout=WAIT_MS)
    assert dialog.result() == 0 and "does not exist" in vae.status.text()

    vae.edit.setText(str(tmp_path / "sdxl_vae.safetensors"))
    dialog.accept()
    qtbot.waitUntil(lambda: dialog.result() == 1, timeout=WAIT_MS)
    assert dialog.chosen_settings().vae == tmp_path / "sdxl_vae.safetensors"


def test_a_cleared_path_is_not_overwritten_by_its_late_check(
    qtbot: QtBot, tiny_models: TinyModelSet, dialog_check: BlockedCheck
) -> None:
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    base = dialog.rows[ModelRole.BASE]
    base.edit.setText(str(tiny_models.lcm_lora))
    qtbot.waitUntil(lambda: bool(dialog_check.threads), timeout=WAIT_MS)
    base.edit.clear()
    assert not base.pending and base.status.text() == "not set"
    dialog_check.release.set()
    assert dialog_check.returned.wait(WAIT_MS / 1000)
    qtbot.waitUntil(lambda: not dialog.checks.busy, timeout=WAIT_MS)
    assert base.status.text() == "not set" and base.error is None


def test_a_fifo_given_in_the_dialog_is_refused_at_once(qtbot: QtBot, tmp_path: Path) -> None:
    fifo = tmp_path / "x.safetensors"
    os.mkfifo(fifo)
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    for row in (dialog.rows[ModelRole.BASE], dialog.rows[ModelRole.LCM_LORA], dialog.vae_row):
        row.edit.setText(str(fifo))
        qtbot.waitUntil(checked(row), timeout=WAIT_MS)
        assert row.error is not None and "not a regular file" in row.error and "✗" in row.status.text()
    dialog.accept()
    assert dialog.result() == 0 and "not a regular file" in dialog.problem.text()


@pytest.fixture
def controller() -> ModelController:
    """The window's model controller on the built-in model, with a worker that is never started."""
    return ModelController(Settings(), EngineWorker(EngineConfig(paths=None, device="cpu")))


def test_assigning_a_file_checks_it_off_the_gui_thread(
    qtbot: QtBot,
    tmp_path: Path,
    controller: ModelController,
    controller_check: BlockedCheck,
    ticks: Callable[[], int],
) -> None:
    messages: list[str] = []
    controller.message.connect(lambda text, level: messages.append(text))
    vae = write_vae_file(tmp_path / "sdxl_vae.safetensors")
    controller.assign(Use.VAE, vae)  # returns while the check is blocked
    qtbot.waitUntil(lambda: bool(controller_check.threads), timeout=WAIT_MS)
    start = ticks()
    qtbot.waitUntil(lambda: ticks() >= start + 5, timeout=WAIT_MS)
    assert not controller_check.returned.is_set() and controller.checking
    assert controller_check.threads[0] is not threading.main_thread()
    assert controller.settings.vae is None and messages == []  # nothing changes before the answer

    with qtbot.waitSignal(controller.assigned, timeout=WAIT_MS) as answered:
        controller_check.release.set()
    assert answered.args == [True]
    assert controller.settings.vae == vae and load_settings().settings.vae == vae
    assert messages == [f"{vae.name} (VAE (single file)) is now the VAE."]  # the built-in model: no reload
    assert not controller.checking


def test_assignments_are_answered_in_the_order_they_were_asked(
    qtbot: QtBot, tiny_models: TinyModelSet, tmp_path: Path, controller: ModelController
) -> None:
    messages: list[str] = []
    answers: list[bool] = []
    controller.message.connect(lambda text, level: messages.append(text))
    controller.assigned.connect(answers.append)
    vae = write_vae_file(tmp_path / "sdxl_vae.safetensors")
    controller.assign(Use.VAE, Path(tiny_models.lcm_lora))  # refused: a LoRA
    controller.assign(Use.VAE, vae)
    controller.assign(Use.VAE, vae)  # the second time: already the VAE
    qtbot.waitUntil(lambda: len(answers) == 3, timeout=WAIT_MS)
    assert answers == [False, True, False]
    assert "was not used as VAE" in messages[0] and "is now the VAE" in messages[1]
    assert messages[2] == f"{vae.name} is already the VAE."
    assert controller.settings.vae == vae
