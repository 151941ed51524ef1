"""The Models tab shows the placement plan of the configured files, as `fewstep plan` prints it."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from pytestqt.qtbot import QtBot

from devtools.tiny_model import TinyModelSet
from engine.contract.info import EngineInfo, MemoryReport
from engine.contract.placement import GIB
from gui.state.placement_view import plan_request, plan_text
from gui.state.settings import Settings, SettingsError, settings_from_json
from gui.widgets.settings_dialog import SettingsDialog
from tests.gui.conftest import WindowMaker

PLAN_MS = 30_000


def test_models_tab_shows_the_plan_for_the_set_gpu_memory(
    make_window: WindowMaker, gui_settings: Settings, qtbot: QtBot
) -> None:
    window = make_window(replace(gui_settings, vram=8.0))
    panel = window.model_panel
    # The same text as `fewstep plan` for these files, once the plan made with the engine's facts has
    # replaced the one the window showed before the engine was ready (both plan for 8.00 GiB).
    request = plan_request(window.settings, window.models.engine_info)
    expected = plan_text(request)
    qtbot.waitUntil(lambda: panel.plan.toPlainText() == expected, timeout=PLAN_MS)
    text = panel.plan.toPlainText()
    assert "Plan for 8.00 GiB" in text and "Free memory: the GPU memory set in Settings." in text
    assert "base unet" in text and "lightning-lora" in text
    assert "five-mode comparison: " in text


def test_on_the_cpu_the_tab_plans_the_ram_the_engine_measured(make_window: WindowMaker, qtbot: QtBot) -> None:
    window = make_window()  # the CPU engine plans with the RAM available (64 GiB in the tests)
    panel = window.model_panel
    # Before the engine is ready the tab says there is no GPU memory to plan for; then the RAM plan.
    qtbot.waitUntil(
        lambda: "of available RAM (the CPU: RAM is the device)" in panel.plan.toPlainText(), timeout=PLAN_MS
    )
    text = panel.plan.toPlainText()
    assert "the RAM available when the models loaded on the CPU" in text
    assert "No GPU memory to plan for" not in text


def test_the_engines_measurement_is_used_when_settings_give_none(tiny_models: TinyModelSet) -> None:
    info = EngineInfo(
        builtin=False,
        available_modes=("ddim",),
        file_steps=(),
        native_size=(1024, 1024),
        device="cuda fp16",
        model_label="x",
        memory=MemoryReport(
            residency="all",
            models=(),
            placement={"planned": True, "free_bytes": 12 * GIB, "dtype": "bf16"},
        ),
    )
    request = plan_request(Settings(), info)
    assert request.free_bytes == 12 * GIB and request.dtype == "bf16"
    assert "measured" in request.source
    assert plan_request(Settings(vram=6.5), info).free_bytes == int(6.5 * GIB)  # the setting wins
    cpu = plan_request(Settings(device="cpu"), None)
    assert cpu.free_bytes is None and cpu.dtype == "fp32"


def test_gpu_memory_setting_round_trips_and_refuses_nonsense() -> None:
    settings = Settings(vram=7.5)
    again = settings_from_json(json.loads(json.dumps(settings.to_json())))
    assert again.vram == 7.5 and again.engine_config().vram == 7.5
    assert settings_from_json({"schema_version": 2}).vram is None  # files from before the field
    for bad in (0, -1, "8", True, 10_000):
        with pytest.raises(SettingsError, match="vram"):
            settings_from_json({"schema_version": 2, "vram": bad})


def test_settings_dialog_sets_the_gpu_memory(qtbot: QtBot) -> None:
    dialog = SettingsDialog(Settings(vram=8.0))
    qtbot.addWidget(dialog)
    assert dialog.vram.value() == 8.0 and dialog.chosen_settings().vram == 8.0
    dialog.vram.setValue(0.0)  # shown as "measure"
    assert dialog.chosen_settings().vram is None
    assert dialog.vram.specialValueText() == "measure"
