"""The mode panel: modes by family, only present ones tickable, presets that skip absent files, and eta
from the row to the engine's request and back from a run's record and its PNG text."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QCheckBox
from pytestqt.qtbot import QtBot

from engine.contract.modes import DEFAULT_COMPARISON, MODES, ModeFile
from engine.contract.request import ModeResult, ModeSettings, Timings
from engine.outputs.comparison_files import RunContext
from engine.outputs.png_info import read_settings
from engine.outputs.run_writer import RunWriter
from gui.state.image_store import read_run_record
from gui.state.mode_groups import USER_GROUP, Preset, mode_groups
from gui.widgets.main_window import MainWindow
from gui.widgets.mode_family import NONE_PRESENT
from gui.widgets.mode_panel import ModePanel
from gui.widgets.request_form import apply_png_settings, comparison_request
from tests.gui.widgets.window_without_engine import bare_window

__all__ = ["bare_window"]  # the fixture, imported for pytest to find

# The files of the tiny test model set: the base and the four of LCM and Lightning.
FIVE_FILES = {n for n, s in MODES.items() if s.family in ("sdxl", "lcm", "lightning")}


def panel_with(qtbot: QtBot, present: Iterable[str]) -> ModePanel:
    """A panel on which only these modes have their files."""
    panel = ModePanel()
    qtbot.addWidget(panel)
    panel.show()
    have = set(present)
    panel.set_missing({mode: None if mode in have else f"Needs the {mode} file." for mode in MODES})
    return panel


def click(box: QCheckBox) -> None:
    """A click on the box itself (a checkbox takes clicks on its box and its text only)."""
    QTest.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(6, box.height() // 2))


def chosen(panel: ModePanel) -> list[str]:
    return [m.mode for m in panel.chosen()]


def test_the_modes_are_grouped_by_family_in_the_panel(qtbot: QtBot) -> None:
    panel = panel_with(qtbot, MODES)
    groups = mode_groups(MODES.values())
    assert list(panel.sections) == [g.key for g in groups]
    for group in groups:
        section = panel.sections[group.key]
        assert section.check.text() == group.label
        assert [row.spec.name for row in section.rows] == list(group.modes)
        assert all(row.parentWidget() is section.body for row in section.rows)
    assert set(panel.rows) == set(MODES)


def test_a_family_box_ticks_its_present_modes_and_shows_a_partial_choice(qtbot: QtBot) -> None:
    panel = panel_with(qtbot, {"ddim", "euler", "lcm", "lcm-lora"})
    panel.set_checked([])
    lcm = panel.sections["lcm"]
    assert lcm.check.checkState() is Qt.CheckState.Unchecked and lcm.count.text() == "0 of 2"
    click(lcm.check)
    assert chosen(panel) == ["lcm", "lcm-lora"] and lcm.check.checkState() is Qt.CheckState.Checked
    panel.rows["lcm"].check.setChecked(False)
    assert lcm.check.checkState() is Qt.CheckState.PartiallyChecked and lcm.count.text() == "1 of 2"
    click(lcm.check)  # from partial: all
    assert chosen(panel) == ["lcm", "lcm-lora"]
    click(lcm.check)  # from all: none
    assert chosen(panel) == []
    # The reference samplers' box ticks only its two present modes of four.
    sdxl = panel.sections["sdxl"]
    click(sdxl.check)
    assert chosen(panel) == ["ddim", "euler"] and sdxl.check.checkState() is Qt.CheckState.Checked


def test_a_mode_without_its_files_cannot_be_ticked_and_its_family_folds(qtbot: QtBot) -> None:
    panel = panel_with(qtbot, FIVE_FILES)
    tcd = panel.sections["tcd"]
    assert not tcd.expanded and not tcd.body.isVisible()
    assert not tcd.check.isEnabled() and tcd.count.text() == NONE_PRESENT
    assert panel.sections["lcm"].expanded and panel.sections["lcm"].body.isVisible()
    tcd.set_expanded(True)  # unfolded, it says what each of its modes needs
    row = panel.rows["tcd"]
    assert row.hint.isVisible() and row.hint.text() == "Needs the tcd file."
    click(row.check)
    click(tcd.check)
    assert "tcd" not in chosen(panel)
    # Its file comes: the family unfolds and the mode can be ticked.
    tcd.set_expanded(False)
    panel.set_missing({mode: None if mode in FIVE_FILES | {"tcd"} else "absent" for mode in MODES})
    assert tcd.expanded and tcd.check.isEnabled() and tcd.count.text() == "0 of 1"
    click(row.check)
    assert "tcd" in chosen(panel) and tcd.check.checkState() is Qt.CheckState.Checked


def test_a_preset_ticks_only_present_modes_and_says_what_it_skipped(qtbot: QtBot) -> None:
    panel = panel_with(qtbot, {"ddim", "euler", "lcm", "lcm-lora", "tcd"})
    panel.set_checked(["euler"])
    panel.preset_actions[Preset.REFINERS].trigger()  # as the Presets menu does
    assert chosen(panel) == ["ddim", "lcm", "lcm-lora"]
    note = panel.preset_note.text()
    assert panel.preset_note.isVisible() and "ticked 3" in note
    assert MODES["lightning"].title in note and MODES["lightning-lora"].title in note

    panel.preset_actions[Preset.LORAS].trigger()
    assert chosen(panel) == ["ddim", "lcm-lora", "tcd"]  # mode-file order
    skipped = [n for n, s in MODES.items() if s.file is ModeFile.LORA and n not in ("lcm-lora", "tcd")]
    assert all(MODES[n].title in panel.preset_note.text() for n in skipped)

    panel.preset_actions[Preset.FOUR_STEP].trigger()
    assert chosen(panel) == ["lcm", "lcm-lora", "tcd"]

    panel.preset_actions[Preset.ONE_STEP].trigger()  # no 1-step mode here: ddim alone compares nothing
    assert chosen(panel) == ["lcm", "lcm-lora", "tcd"]
    assert "unchanged" in panel.preset_note.text()


def test_the_step_presets_take_a_files_own_step_count(qtbot: QtBot) -> None:
    panel = panel_with(qtbot, FIVE_FILES)
    panel.set_file_steps({"lightning": 4, "lightning-lora": 8})
    panel.apply_preset(Preset.FOUR_STEP)
    assert chosen(panel) == ["lcm", "lcm-lora", "lightning"]
    panel.set_file_steps({"lightning": 1, "lightning-lora": 8})
    panel.apply_preset(Preset.ONE_STEP)
    assert chosen(panel) == ["ddim", "lightning"]


def test_eta_shows_for_the_modes_that_take_one_with_the_cards_default(qtbot: QtBot) -> None:
    panel = panel_with(qtbot, MODES)
    with_eta = [n for n, s in MODES.items() if s.eta is not None]
    assert {"tcd", "hyper-lora-1step"} <= set(with_eta)
    for name, row in panel.rows.items():
        spec = row.spec
        assert row.eta.isVisible() is (spec.eta is not None), name
        if spec.eta is not None:
            assert row.eta.value() == spec.eta and (row.eta.minimum(), row.eta.maximum()) == (0.0, 1.0)
            assert panel.settings_for(name).eta == spec.eta
        else:
            assert panel.settings_for(name).eta is None
    row = panel.rows["tcd"]
    row.eta.setValue(0.65)
    assert panel.settings_for("tcd").eta == 0.65
    row.reset_to_defaults()
    assert row.eta.value() == MODES["tcd"].eta
    panel.set_missing(dict.fromkeys(MODES, "absent"))
    assert not row.eta.isEnabled()


def test_eta_reaches_the_request_and_comes_back_from_the_runs_record(
    bare_window: MainWindow, tmp_path: Path
) -> None:
    window = bare_window
    present = FIVE_FILES | {"tcd"}
    window.mode_panel.set_missing({mode: None if mode in present else "absent" for mode in MODES})
    window.mode_panel.set_checked(["ddim", "tcd"])
    window.mode_panel.apply("tcd", steps=3, guidance=None, eta=0.7)
    window.prompt_panel.prompt.setPlainText("a red circle")
    request = comparison_request(window.prompt_panel, window.mode_panel, None)
    assert [(m.mode, m.steps, m.eta) for m in request.modes] == [("ddim", 30, None), ("tcd", 3, 0.7)]

    # The run's record keeps it; restoring the run from the history sets the row back.
    writer = RunWriter(
        tmp_path / "out", "20260101-000000-j1", request, RunContext(model_label="tiny", device="cpu")
    )
    writer.save(
        ModeResult(
            mode="tcd",
            seed=request.seeds[0],
            steps=3,
            guidance=0.0,
            scheduler="TCDScheduler",
            timesteps=(999.0, 666.0, 333.0),
            eta=0.7,
            timings=Timings(text_encoding=0.1, switch=0.0, denoising=0.2, per_step=(0.1,) * 3, decode=0.1),
            image=np.zeros((16, 16, 3), dtype=np.uint8),
        )
    )
    path = writer.finish("finished")
    assert path is not None
    record = read_run_record(path, tmp_path / "out")
    assert record.request.modes[1] == ModeSettings(mode="tcd", steps=3, guidance=0.0, eta=0.7)
    window.mode_panel.rows["tcd"].reset_to_defaults()
    window.mode_panel.set_checked(DEFAULT_COMPARISON)
    window.restore_run(record)
    assert window.mode_panel.rows["tcd"].eta.value() == 0.7
    assert [(m.mode, m.eta) for m in window.mode_panel.chosen()] == [("ddim", None), ("tcd", 0.7)]

    # The image's PNG text carries it too: a PNG dropped on the window sets the row back.
    (png,) = (tmp_path / "out").rglob("*.png")
    window.mode_panel.rows["tcd"].reset_to_defaults()
    apply_png_settings(window.prompt_panel, window.mode_panel, read_settings(png))
    assert window.mode_panel.rows["tcd"].eta.value() == 0.7


def test_a_users_modes_have_a_family_of_their_own(qtbot: QtBot) -> None:
    mine = replace(MODES["lcm-lora"], name="my-lcm", title="my LCM", source="/config/modes.toml")
    with MODES.added([mine]):
        panel = panel_with(qtbot, {"ddim", "my-lcm"})
    user = panel.sections[USER_GROUP]
    assert user.check.text() == "User modes" and [r.spec.name for r in user.rows] == ["my-lcm"]
    assert "my-lcm" not in [r.spec.name for r in panel.sections["lcm"].rows]
    assert user.expanded and list(panel.sections)[-1] == USER_GROUP


def test_a_mode_whose_files_go_shows_unticked_and_its_tick_comes_back_with_them(qtbot: QtBot) -> None:
    panel = panel_with(qtbot, FIVE_FILES)
    panel.set_checked(["ddim", "lcm"])
    without_lcm = {mode: None if mode in FIVE_FILES - {"lcm"} else "absent" for mode in MODES}
    panel.set_missing(without_lcm)
    assert not panel.rows["lcm"].check.isChecked() and chosen(panel) == ["ddim"]
    panel.set_checked(["ddim", "lcm", "lightning"])  # as a restored run asks: lcm waits for its file
    assert not panel.rows["lcm"].check.isChecked() and chosen(panel) == ["ddim", "lightning"]
    panel.set_missing({mode: None if mode in FIVE_FILES else "absent" for mode in MODES})
    assert chosen(panel) == ["ddim", "lcm", "lightning"]
    assert panel.sections["lcm"].check.checkState() is Qt.CheckState.PartiallyChecked


def test_a_hint_naming_a_long_file_wraps_inside_the_panel(qtbot: QtBot) -> None:
    """Qt wraps words only at spaces: a hint naming a published file name must still fit its column,
    or it widens the whole panel past the window's left column and cuts its buttons off."""
    panel = ModePanel()
    qtbot.addWidget(panel)
    panel.resize(330, 800)
    panel.show()
    long_name = "pcm_sdxl_normalcfg_<N>step_converted.safetensors"
    panel.set_missing(dict.fromkeys(MODES, f"Needs PCM LoRA (normal CFG) ({long_name}). Add it."))
    panel.sections["pcm"].set_expanded(True)
    row = panel.rows["pcm-normalcfg"]
    assert row.hint.text().replace("\u200b", "") == f"Needs PCM LoRA (normal CFG) ({long_name}). Add it."
    assert row.hint.minimumSizeHint().width() < 300
