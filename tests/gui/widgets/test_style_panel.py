"""Style LoRAs in the window: loaded once by the real engine; a toggle or a weight changes only the
request's style weights and reloads nothing."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pytestqt.qtbot import QtBot

from devtools.tiny_model import TinyModelSet
from engine.outputs.png_text import read_png_parameters
from gui.state.image_store import RunStyle
from gui.state.jobs import EngineConfig, EventKind, FinishedRun
from gui.state.settings import Settings, StyleSetting, load_settings
from gui.state.worker import LoadedEngine, load_engine
from gui.widgets.main_window import MainWindow
from tests.gui.conftest import ENGINE_READY_MS, JOB_MS, WindowMaker, two_step_modes, wait_event


def style_copies(tiny_models: TinyModelSet, folder: Path) -> tuple[Path, Path]:
    """Two style LoRAs that fit the tiny model (any SDXL LoRA not named for LCM or Lightning is a style)."""
    folder.mkdir()
    first, second = folder / "watercolor_style.safetensors", folder / "ink_style.safetensors"
    shutil.copy(tiny_models.lightning_lora, first)
    shutil.copy(tiny_models.lcm_lora, second)
    return first, second


def run(window: MainWindow, qtbot: QtBot) -> FinishedRun:
    with wait_event(qtbot, window.worker, EventKind.FINISHED) as finished:
        assert window.generate() is not None
    event = finished.args[0].finished
    assert isinstance(event, FinishedRun)
    return event


def styles_by_mode(event: FinishedRun) -> dict[str, tuple[tuple[str, float], ...]]:
    return {result.mode: result.styles for result in event.comparison.results}


def test_toggling_a_style_or_its_weight_reloads_nothing(
    make_window: WindowMaker, qtbot: QtBot, gui_settings: Settings, tiny_models: TinyModelSet, tmp_path: Path
) -> None:
    first, second = style_copies(tiny_models, tmp_path / "styles")
    settings = replace(
        gui_settings,
        styles=(StyleSetting(path=first, weight=0.8), StyleSetting(path=second, enabled=False)),
    )
    loads: list[EngineConfig] = []

    def counting_loader(config: EngineConfig, say: Callable[[str], None]) -> LoadedEngine:
        loads.append(config)
        return load_engine(config, say)

    window = make_window(settings=settings, factory=counting_loader)
    assert window.engine_info is not None and window.engine_info.style_adapters == ("style-0", "style-1")
    assert loads[0].paths is not None and [s.path for s in loads[0].paths.styles] == [first, second]
    panel = window.style_panel
    assert [row.check.text() for row in panel.rows] == ["watercolor_style", "ink_style"]
    assert not panel.rows[1].weight.isEnabled()  # off: its weight waits
    two_step_modes(window, ("ddim", "lcm", "lightning-lora"))

    before = run(window, qtbot)
    # On every mode that denoises with the base UNet; the full LCM UNet has its own weights.
    assert styles_by_mode(before) == {
        "ddim": (("style-0", 0.8),),
        "lcm": (),
        "lightning-lora": (("style-0", 0.8),),
    }

    config = window.worker._config
    panel.rows[0].check.setChecked(False)
    panel.rows[1].check.setChecked(True)
    panel.rows[1].weight.setValue(0.5)
    assert window.settings.style_weights() == (("style-0", 0.0), ("style-1", 0.5))
    assert window.engine_label.text().startswith("ready")  # no "reloading…"
    after = run(window, qtbot)
    assert styles_by_mode(after)["ddim"] == (("style-1", 0.5),)
    assert len(loads) == 1 and window.worker._config is config  # nothing reloaded
    png = next(p for p in window.settings.resolved_output_dir.rglob("*ddim*.png") if "j2" in p.name)
    assert 'Fewstep styles: "ink_style: 0.5"' in read_png_parameters(
        png
    )  # the file's name, not the adapter's
    assert load_settings().settings.styles == (
        StyleSetting(path=first, weight=0.8, enabled=False),
        StyleSetting(path=second, weight=0.5, enabled=True),
    )

    # Removing a style changes what the engine holds: that one reloads.
    with wait_event(qtbot, window.worker, EventKind.ENGINE_READY, timeout=ENGINE_READY_MS):
        panel.rows[0].remove.click()
    assert len(loads) == 2 and [s.path for s in window.settings.styles] == [second]
    info = window.engine_info
    assert info is not None and list(info.style_adapters) == ["style-0"]
    assert [row.check.text() for row in panel.rows] == ["ink_style"]
    assert styles_by_mode(run(window, qtbot))["ddim"] == (("style-0", 0.5),)


def test_the_builtin_model_ignores_styles_and_says_so(
    make_window: WindowMaker, tiny_models: TinyModelSet, tmp_path: Path, output_dir: Path
) -> None:
    first, _ = style_copies(tiny_models, tmp_path / "styles")
    settings = Settings(output_dir=output_dir, styles=(StyleSetting(path=first),))
    window = make_window(settings=settings, wait_ready=False, start=False)
    assert settings.style_weights() is None
    assert settings.model_paths_for_engine() is None
    assert "built-in model ignores them" in window.style_panel.note.text()


def test_history_restores_the_style_weights_of_a_run(
    make_window: WindowMaker, qtbot: QtBot, gui_settings: Settings, tiny_models: TinyModelSet, tmp_path: Path
) -> None:
    first, second = style_copies(tiny_models, tmp_path / "styles")
    settings = replace(
        gui_settings,
        styles=(StyleSetting(path=first, weight=0.8), StyleSetting(path=second, weight=0.6, enabled=False)),
    )
    window = make_window(settings=settings, factory=load_engine)
    two_step_modes(window, ("ddim", "lcm"))
    run(window, qtbot)
    # The grid names the styles by file, on the modes that applied them.
    ddim, lcm = window.grid.tiles
    assert ddim.styles_line.text() == "styles: watercolor_style 0.8" and not ddim.styles_line.isHidden()
    assert lcm.styles_line.isHidden()

    # Read back from the record on disk: every style of the run, and those each image had.
    with qtbot.waitSignal(window.output.history_loaded, timeout=JOB_MS):
        window.output.reload_history(window.settings.resolved_output_dir)
    record = window.history.records()[0]
    assert record.styles == (RunStyle(path=first, weight=0.8), RunStyle(path=second, weight=0.0))
    assert {image.mode: image.styles for image in record.images} == {
        "ddim": (RunStyle(path=first, weight=0.8),),
        "lcm": (),
    }

    panel = window.style_panel
    panel.rows[0].weight.setValue(0.3)
    panel.rows[1].check.setChecked(True)
    # The saved images are read off the GUI thread.
    with qtbot.waitSignal(window.grid.saved_run_shown, timeout=JOB_MS):
        window.history.run_chosen.emit(record)
    restored = (StyleSetting(path=first, weight=0.8), StyleSetting(path=second, weight=0.6, enabled=False))
    assert panel.styles() == restored and window.settings.styles == restored
    assert load_settings().settings.styles == restored
    assert window.statusBar().currentMessage().startswith("Restored the run of")
    assert "not configured" not in window.statusBar().currentMessage()
    assert window.grid.tiles[0].styles_line.text() == "styles: watercolor_style 0.8"  # the saved images

    # A style of the run that is no longer configured: the others are restored, and it is said.
    with wait_event(qtbot, window.worker, EventKind.ENGINE_READY, timeout=ENGINE_READY_MS):
        panel.rows[0].remove.click()
    panel.rows[0].check.setChecked(True)
    window.history.run_chosen.emit(record)
    assert panel.styles() == (StyleSetting(path=second, weight=0.6, enabled=False),)
    message = window.statusBar().currentMessage()
    assert "not configured" in message and "watercolor_style" in message and "ink_style" not in message


def test_a_dropped_png_keeps_its_style_loras(
    make_window: WindowMaker, qtbot: QtBot, gui_settings: Settings, tiny_models: TinyModelSet, tmp_path: Path
) -> None:
    from PIL import Image, PngImagePlugin

    from tests.gui.widgets.test_main_window import drop

    folder = tmp_path / "models"
    first, second = style_copies(tiny_models, folder)
    settings = replace(gui_settings, models_dir=folder, styles=(StyleSetting(path=first, weight=0.8),))
    window = make_window(settings=settings, factory=load_engine)
    two_step_modes(window, ("ddim",))
    run(window, qtbot)
    png = next(window.settings.resolved_output_dir.rglob("*ddim*.png"))

    # A Fewstep PNG: its styles come back, as restoring the run from the history does.
    window.style_panel.rows[0].weight.setValue(0.3)
    drop(window, png, qtbot)
    assert window.settings.styles == (StyleSetting(path=first, weight=0.8),)
    assert "watercolor_style" not in window.banner.text()  # nothing missing, nothing said

    # An A1111 PNG: its <lora:> tags leave the prompt and become style weights; a file of the models
    # folder that is not in the list yet is added (the engine reloads), a name found nowhere is said.
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        "a harbour, <lora:INK_STYLE:0.6>, <lora:nowhere:1>\n"
        "Steps: 20, Sampler: Euler, CFG scale: 5, Seed: 3, Size: 64x64, Version: v1.10.1",
    )
    foreign = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(foreign, pnginfo=info)
    with wait_event(qtbot, window.worker, EventKind.ENGINE_READY, timeout=ENGINE_READY_MS):
        drop(window, foreign, qtbot)
    assert window.prompt_panel.prompt_text() == "a harbour, ,"  # as A1111 encodes it
    assert list(window.settings.styles) == [
        StyleSetting(path=first, weight=0.8, enabled=False),
        StyleSetting(path=second, weight=0.6),
    ]
    assert "Style LoRA nowhere was not found" in window.banner.text()
    assert [row.check.text() for row in window.style_panel.rows] == ["watercolor_style", "ink_style"]
