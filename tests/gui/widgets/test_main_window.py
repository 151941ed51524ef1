"""The window driving the real worker on the tiny models: what the artist does, and bad input."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from engine.contract.modes import DEFAULT_COMPARISON, MODES, ModelRole
from engine.files.model_paths import ModelPaths
from engine.outputs.png_text import read_png_parameters
from engine.outputs.trilemma import METRIC_KEYS
from engine.pocket.model import BUILTIN_ROLES
from engine.runtime.engine import Engine
from gui.state.jobs import EngineConfig, EventKind, WorkerEvent
from gui.state.model_setup import builtin_hint
from gui.state.settings import Settings
from gui.state.worker import load_engine
from gui.widgets.main_window import MainWindow
from tests.gui.conftest import (
    ENGINE_READY_MS,
    JOB_MS,
    WindowMaker,
    anything,
    kind_is,
    two_step_modes,
    wait_event,
)


def run_comparison(window: MainWindow, qtbot: QtBot) -> None:
    """Run the comparison set up in the window, and wait until its history entry is read back."""
    with qtbot.waitSignals(
        [window.worker.reported, window.output.record_read],
        check_params_cbs=[kind_is(EventKind.FINISHED), anything],
        timeout=JOB_MS,
    ):
        assert window.generate() is not None


def drop(window: MainWindow, path: Path, qtbot: QtBot) -> None:
    """Drop a file on the window and wait for its read, which runs off the GUI thread."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(window.png_restore_done, timeout=5000):
        window.dropEvent(event)


def test_comparison_fills_every_tile_with_progress_in_order(
    make_window: WindowMaker, qtbot: QtBot, output_dir: Path
) -> None:
    window = make_window()
    two_step_modes(window, DEFAULT_COMPARISON)
    window.prompt_panel.prompt.setPlainText("a red circle")
    steps: dict[str, list[int]] = {}
    finished_modes: list[str] = []

    kinds: list[EventKind] = []

    def on_event(event: WorkerEvent) -> None:
        kinds.append(event.kind)
        if event.progress is not None:
            tile = window.grid.tile(event.progress.mode, event.progress.seed)
            assert tile is not None and tile.result is None  # progress never after the tile's image
            steps.setdefault(event.progress.mode, []).append(event.progress.step)
        elif event.result is not None:
            finished_modes.append(event.result.mode)

    window.worker.reported.connect(on_event)
    window.activateWindow()
    with (
        wait_event(qtbot, window.worker, EventKind.FINISHED),
        qtbot.waitSignal(window.output.record_read, timeout=JOB_MS),  # read back off the GUI thread
    ):
        QTest.keyClick(window.prompt_panel.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert kinds[:2] == [EventKind.QUEUED, EventKind.STARTED] and kinds[-1] is EventKind.FINISHED
    assert window.prompt_panel.prompt.toPlainText() == "a red circle"  # Ctrl+Enter typed no newline
    assert [tile.mode for tile in window.grid.tiles] == list(DEFAULT_COMPARISON)
    assert sorted(finished_modes) == sorted(DEFAULT_COMPARISON)
    for tile in window.grid.tiles:
        assert steps[tile.mode] == [1, 2]
        assert tile.result is not None and not tile.image.isNull()
        assert tile.image.width() == 64
        assert "denoise" in tile.cost_line.text() and "switch" in tile.cost_line.text()
        assert tile.total.text().endswith(" s")
    pngs = sorted(output_dir.rglob("*.png"))
    assert len(pngs) == len(DEFAULT_COMPARISON)
    assert all(png.with_suffix(".json").is_file() for png in pngs)
    assert len(window.history.records()) == 1
    assert not window.prompt_panel.cancel.isEnabled()


def test_escape_cancels_mid_run_and_the_window_stays_usable(make_window: WindowMaker, qtbot: QtBot) -> None:
    window = make_window()
    window.mode_panel.set_checked(["ddim"])
    window.mode_panel.apply("ddim", steps=200, guidance=None)
    window.prompt_panel.prompt.setPlainText("a long render")
    seen: list[int] = []

    def escape_on_first_step(event: WorkerEvent) -> None:
        if event.progress is None:
            return
        seen.append(event.progress.step)
        if event.progress.step == 1:
            QTest.keyClick(window, Qt.Key.Key_Escape)

    window.worker.reported.connect(escape_on_first_step)
    window.activateWindow()
    with wait_event(qtbot, window.worker, EventKind.CANCELLED):
        window.generate()
    window.worker.reported.disconnect(escape_on_first_step)
    tile = window.grid.tiles[0]
    assert tile.result is None and tile.canvas.placeholder == "cancelled"
    assert len(seen) < 200
    assert not window.prompt_panel.cancel.isEnabled()
    two_step_modes(window, ("lcm",))
    run_comparison(window, qtbot)
    assert window.grid.tiles[0].result is not None


def test_restore_from_a_saved_png_dropped_on_the_window(
    make_window: WindowMaker, qtbot: QtBot, output_dir: Path
) -> None:
    window = make_window()
    two_step_modes(window, ("lcm-lora",))
    panel = window.prompt_panel
    panel.prompt.setPlainText("a lighthouse\nat dusk")
    panel.negative.setPlainText("fog, blur")
    panel.set_seed(4321)
    window.mode_panel.apply("lcm-lora", steps=3, guidance=1.5)
    run_comparison(window, qtbot)
    png = next(output_dir.rglob("*lcm-lora*.png"))
    assert "Fewstep mode: lcm-lora" in read_png_parameters(png)

    panel.prompt.setPlainText("something else")
    panel.negative.setPlainText("")
    panel.set_seed(1)
    window.mode_panel.set_checked(DEFAULT_COMPARISON)
    window.mode_panel.rows["lcm-lora"].reset_to_defaults()
    drop(window, png, qtbot)
    assert panel.prompt_text() == "a lighthouse\nat dusk"
    assert panel.negative_text() == "fog, blur"
    assert panel.seed_value() == 4321
    assert panel.chosen_size() == (64, 64)
    chosen = window.mode_panel.chosen()
    assert [(m.mode, m.steps, m.guidance) for m in chosen] == [("lcm-lora", 3, 1.5)]
    assert "settings restored" in window.banner.text()


def test_bad_drops_give_a_message_and_the_window_stays_usable(
    make_window: WindowMaker, qtbot: QtBot, tmp_path: Path
) -> None:
    window = make_window()
    garbage = tmp_path / "broken.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\xff" * 40)
    drop(window, garbage, qtbot)
    assert window.banner.isVisible() and "Nothing restored from broken.png" in window.banner.text()
    drop(window, tmp_path / "does-not-exist.png", qtbot)
    assert "cannot read" in window.banner.text()
    not_png = tmp_path / "notes.txt"
    not_png.write_text("hello")
    drop(window, not_png, qtbot)
    assert "not a PNG" in window.banner.text()
    two_step_modes(window, ("lcm",))
    run_comparison(window, qtbot)
    assert window.grid.tiles[0].result is not None


def test_an_invalid_model_path_is_reported_and_can_be_fixed(
    make_window: WindowMaker, qtbot: QtBot, gui_settings: Settings, tmp_path: Path
) -> None:
    broken = gui_settings.with_model_path(ModelRole.BASE, tmp_path / "no-such-sdxl")
    window = make_window(settings=broken, factory=load_engine, start=False)
    # Connected before the start: the failure comes within milliseconds, from the worker thread.
    with wait_event(qtbot, window.worker, EventKind.ENGINE_FAILED, timeout=ENGINE_READY_MS) as failed:
        window.start()
    assert "no-such-sdxl" in failed.args[0].message
    assert "could not be loaded" in window.banner.text() and "no-such-sdxl" in window.banner.text()
    two_step_modes(window, ("lcm",))
    with wait_event(qtbot, window.worker, EventKind.FAILED):
        window.generate()
    assert "no-such-sdxl" in window.banner.text()
    with wait_event(qtbot, window.worker, EventKind.ENGINE_READY, timeout=ENGINE_READY_MS):
        window.apply_settings(gui_settings)
    run_comparison(window, qtbot)
    assert window.grid.tiles[0].result is not None


def test_a_failing_generation_is_reported(
    make_window: WindowMaker, qtbot: QtBot, engine_all: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = make_window()
    two_step_modes(window, ("lcm",))

    def out_of_memory(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("not enough memory")

    monkeypatch.setattr(engine_all, "run", out_of_memory)
    with wait_event(qtbot, window.worker, EventKind.FAILED):
        window.generate()
    assert "RuntimeError: not enough memory" in window.banner.text()
    assert window.grid.tiles[0].canvas.placeholder == "failed"
    monkeypatch.undo()
    run_comparison(window, qtbot)
    assert window.grid.tiles[0].result is not None


def test_a_request_the_engine_cannot_take_is_refused_in_the_window(make_window: WindowMaker) -> None:
    window = make_window()
    window.mode_panel.set_checked([])
    assert window.generate() is None
    assert "pick at least one mode" in window.banner.text()
    window.prompt_panel.seed.setText("99999999999999999999")
    window.mode_panel.set_checked(["lcm"])
    assert window.generate() is None
    assert "seed" in window.banner.text()


def test_history_restores_a_run_and_shows_its_images(make_window: WindowMaker, qtbot: QtBot) -> None:
    window = make_window()
    two_step_modes(window, ("lcm", "lightning-lora"))
    window.prompt_panel.prompt.setPlainText("first prompt")
    window.prompt_panel.seed_count.setValue(2)
    run_comparison(window, qtbot)
    panel = window.trilemma_panel
    cells = [(m, k) for m in ("lcm", "lightning-lora") for k in METRIC_KEYS]
    measured = [panel.text_at(mode, key) for mode, key in cells]
    assert panel.trilemma is not None and "…" not in measured
    two_step_modes(window, ("ddim",))
    window.prompt_panel.prompt.setPlainText("second prompt")
    window.prompt_panel.seed_count.setValue(1)
    run_comparison(window, qtbot)
    records = window.history.records()
    assert [r.request.prompt for r in records] == ["second prompt", "first prompt"]
    window.history.list.setCurrentRow(1)
    with qtbot.waitSignal(window.grid.saved_run_shown, timeout=JOB_MS):  # read off the GUI thread
        window.history.run_chosen.emit(records[1])
    assert window.prompt_panel.prompt_text() == "first prompt"
    assert window.prompt_panel.seed_count.value() == 2
    assert [m.mode for m in window.mode_panel.chosen()] == ["lcm", "lightning-lora"]
    assert len(window.grid.tiles) == 4 and all(not t.image.isNull() for t in window.grid.tiles)
    # The run's record holds the trilemma the panel showed: restoring the run shows it again.
    assert records[1].trilemma is not None and panel.modes == ("lcm", "lightning-lora")
    assert [panel.text_at(mode, key) for mode, key in cells] == measured
    # A record without it (older ones) restores with the panel cleared.
    with qtbot.waitSignal(window.grid.saved_run_shown, timeout=JOB_MS):
        window.history.run_chosen.emit(replace(records[1], trilemma=None))
    assert panel.trilemma is None and panel.table.rowCount() == 0
    # A fresh window reads the same history from disk.
    with qtbot.waitSignal(window.output.history_loaded, timeout=JOB_MS):
        window.output.reload_history(window.settings.resolved_output_dir)
    assert [r.request.prompt for r in window.history.records()] == ["second prompt", "first prompt"]


def test_tiles_open_large_and_arrows_move(make_window: WindowMaker, qtbot: QtBot) -> None:
    window = make_window()
    two_step_modes(window, ("ddim", "lcm", "lcm-lora"))
    run_comparison(window, qtbot)
    QTest.mouseClick(window.grid.tiles[1], Qt.MouseButton.LeftButton)
    assert window.viewer.isVisible() and window.viewer.index == 1
    QTest.keyClick(window.viewer, Qt.Key.Key_Right)
    assert window.viewer.index == 2 and window.grid.selected == 2
    QTest.keyClick(window.viewer, Qt.Key.Key_Right)  # clamped at the last tile
    assert window.viewer.index == 2
    QTest.keyClick(window.viewer, Qt.Key.Key_Left)
    assert window.viewer.index == 1
    assert not window.viewer.canvas.image.isNull()
    window.viewer.close()
    window.grid.setFocus()
    QTest.keyClick(window.grid, Qt.Key.Key_Left)
    assert window.grid.selected == 0


def test_export_grid_writes_one_png(make_window: WindowMaker, qtbot: QtBot, output_dir: Path) -> None:
    window = make_window()
    two_step_modes(window, ("lcm", "lightning"))
    run_comparison(window, qtbot)
    with qtbot.waitSignal(window.output.grid_exported, timeout=JOB_MS) as exported:
        assert window.export_current_grid()
    first = exported.args[0]
    with qtbot.waitSignal(window.output.grid_exported, timeout=JOB_MS) as exported:
        assert window.export_current_grid()
    second = exported.args[0]
    assert isinstance(first, Path) and isinstance(second, Path) and first != second
    assert window.banner.text() == f"Grid exported to {second}"
    assert first.is_file() and first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_files_a_mode_shows_disabled_with_a_hint(
    make_window: WindowMaker, gui_settings: Settings
) -> None:
    only_base = Settings(
        model_paths={ModelRole.BASE: gui_settings.model_paths[ModelRole.BASE]},
        output_dir=gui_settings.output_dir,
    )
    window = make_window(settings=only_base, wait_ready=False)
    row = window.mode_panel.rows["lcm"]
    assert not row.available and "LCM UNet" in row.hint.text() and "Settings" in row.hint.text()
    assert window.mode_panel.rows["ddim"].available
    assert not window.model_note.isVisible()
    assert window.prompt_panel.chosen_size() == (1024, 1024)


def test_the_builtin_model_is_said_and_its_size_offered(make_window: WindowMaker, output_dir: Path) -> None:
    window = make_window(settings=Settings(output_dir=output_dir), wait_ready=False)
    assert window.model_note.isVisible() and window.model_note.text() == builtin_hint()
    assert "pocket" in builtin_hint()
    assert window.prompt_panel.chosen_size() == (64, 64)
    # Every mode the built-in model's files allow; the rest of the field waits for the user's files.
    for name, row in window.mode_panel.rows.items():
        assert row.available is (set(MODES[name].required_roles) <= set(BUILTIN_ROLES)), name
    rows = window.mode_panel.rows
    assert rows["lcm"].available and rows["tcd"].available and rows["pcm-lora"].available
    assert not rows["dmd2-lora"].available


def test_contract_warnings_show_in_the_mode_panel(make_window: WindowMaker) -> None:
    window = make_window()
    row = window.mode_panel.rows["lightning-lora"]
    assert not row.warning.isVisible() or not row.warning.text()
    row.steps.setValue(8)
    assert "distilled for 4 steps" in row.warning.text()
    row.reset_to_defaults()
    assert row.steps.value() == 4 and not row.warning.text()
    window.prompt_panel.negative.setPlainText("blurry")
    assert "no effect" in row.warning.text()


def test_settings_change_reloads_the_engine(
    make_window: WindowMaker, gui_settings: Settings, qtbot: QtBot
) -> None:
    window = make_window()
    changed = Settings(
        model_paths=dict(gui_settings.model_paths), output_dir=gui_settings.output_dir, device="cpu"
    )
    with wait_event(qtbot, window.worker, EventKind.ENGINE_READY, timeout=ENGINE_READY_MS):
        window.apply_settings(changed.with_model_path(ModelRole.LCM_UNET, None))
        # Told by the settings at once, before the engine has reloaded.
        assert not window.mode_panel.rows["lcm"].available
        assert window.engine_label.text() == "engine: reloading…"
    assert window.worker._config == EngineConfig(
        paths=ModelPaths(
            base=gui_settings.model_paths[ModelRole.BASE],
            lcm_lora=gui_settings.model_paths[ModelRole.LCM_LORA],
            lightning_unet=gui_settings.model_paths[ModelRole.LIGHTNING_UNET],
            lightning_lora=gui_settings.model_paths[ModelRole.LIGHTNING_LORA],
        ),
        device="cpu",
    )


def test_a_fifo_dropped_as_a_png_is_refused_and_never_blocks_the_window(
    make_window: WindowMaker, qtbot: QtBot, tmp_path: Path
) -> None:
    window = make_window()
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    drop(window, fifo, qtbot)
    assert "Nothing restored from x.png" in window.banner.text() and "FIFO" in window.banner.text()


def test_a_dropped_a1111_png_says_what_was_left_out(
    make_window: WindowMaker, qtbot: QtBot, tmp_path: Path
) -> None:
    from PIL import Image, PngImagePlugin

    text = (
        "a cat in a hat, <lora:nowhere_style:0.7>\r\n"
        "Negative prompt: ugly\r\n"
        "Steps: 25, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 42, Size: 540x960, Clip skip: 2,"
        " Hires upscale: 1.5, Hires steps: 10, Denoising strength: 0.35, Version: v1.6.0"
    )
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    png = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(png, pnginfo=info)
    window = make_window()
    size_before = window.prompt_panel.chosen_size()
    drop(window, png, qtbot)
    panel = window.prompt_panel
    assert (panel.prompt_text(), panel.negative_text(), panel.seed_value()) == ("a cat in a hat,", "ugly", 42)
    assert panel.chosen_size() == size_before  # the bad size alone was dropped
    assert [(m.mode, m.steps, m.guidance) for m in window.mode_panel.chosen()] == [("dpmpp-2m", 25, 6.5)]
    message = window.banner.text()
    assert "written by AUTOMATIC1111" in message
    for said in ("Size: 540x960", "Karras approximated", "Hires fix", "clip skip 2", "nowhere_style"):
        assert said in message, said
