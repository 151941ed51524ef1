"""The trilemma panel fills as the tiles finish, measured off the GUI thread, and resets per comparison."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from pytestqt.qtbot import QtBot

from engine.outputs.trilemma import EXPLANATIONS, METRIC_KEYS, Trilemma, TrilemmaAccumulator
from engine.runtime.engine import Engine
from gui.state.jobs import EngineConfig
from gui.state.worker import LoadedEngine
from gui.widgets.trilemma_panel import TrilemmaPanel, bar_fraction
from tests.gui.conftest import JOB_MS, WindowMaker, two_step_modes
from tests.gui.widgets.test_main_window import run_comparison


def small_table(images_per_mode: int) -> Trilemma:
    rng = np.random.default_rng(0)
    accumulator = TrilemmaAccumulator(["ddim", "lcm", "lightning"])
    for seed in range(images_per_mode):
        for index, mode in enumerate(accumulator.modes):
            image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            accumulator.add(mode, seed, image, 3.0 / (1 + index))
    return accumulator.result()


def test_panel_shows_every_number_with_its_explanation(qtbot: QtBot) -> None:
    panel = TrilemmaPanel()
    qtbot.addWidget(panel)
    panel.prepare(["ddim", "lcm", "lightning"])
    assert panel.text_at("lcm", "ssim_to_reference") == "…"
    table = small_table(2)
    panel.show_trilemma(table)
    assert panel.table.rowCount() == 3
    assert panel.text_at("ddim", "speed_up") == "1.0x"
    assert panel.text_at("lightning", "speed_up") == "3.0x"
    assert panel.text_at("ddim", "psnr_to_reference") == "ref"
    lcm = table.row("lcm")
    assert panel.text_at("lcm", "ssim_to_reference") == f"{lcm.ssim_to_reference:.3f}"
    assert panel.text_at("lcm", "diversity_ratio") == f"{lcm.diversity_ratio:.3f}"
    assert "Reference: ddim" in panel.note.text()
    for column, key in enumerate(METRIC_KEYS, start=1):
        header_item = panel.table.horizontalHeaderItem(column)
        assert header_item is not None and header_item.toolTip() == EXPLANATIONS[key]
    assert panel.chart.rows == table.rows
    panel.chart.grab()  # paints without error
    # With one seed, diversity is absent, and the note says why.
    panel.show_trilemma(small_table(1))
    assert panel.text_at("lcm", "diversity_ratio") == "-"
    assert "diversity needs 2 or more seeds" in panel.note.text()


def test_bars_scale_per_leg() -> None:
    rows = small_table(2).rows
    assert bar_fraction("speed_up", 3.0, rows) == 1.0  # the fastest mode fills its leg
    assert bar_fraction("speed_up", 1.0, rows) == 1 / 3
    assert bar_fraction("detail_ratio", 1.0, rows) == 0.5  # the reference sits halfway
    assert bar_fraction("diversity_ratio", 5.0, rows) == 1.0
    assert bar_fraction("diversity_ratio", None, rows) is None


def test_panel_fills_as_tiles_finish_measured_off_the_gui_thread(
    make_window: WindowMaker, qtbot: QtBot
) -> None:
    window = make_window()
    modes = ("ddim", "lcm", "lightning")
    two_step_modes(window, modes)
    window.prompt_panel.seed_count.setValue(2)
    measured_images: list[int] = []
    threads: set[int] = set()
    meter = window.trilemma_meter
    original_add = TrilemmaAccumulator.add

    def spy_add(self: TrilemmaAccumulator, *args: object, **kwargs: object) -> None:
        threads.add(threading.get_ident())
        original_add(self, *args, **kwargs)  # type: ignore[arg-type]

    TrilemmaAccumulator.add = spy_add  # type: ignore[method-assign]
    try:
        meter.measured.connect(lambda table: measured_images.append(sum(r.images for r in table.rows)))
        run_comparison(window, qtbot)
        qtbot.waitUntil(lambda: len(measured_images) == 6, timeout=JOB_MS)
    finally:
        TrilemmaAccumulator.add = original_add  # type: ignore[method-assign]
    assert measured_images == [1, 2, 3, 4, 5, 6]  # one new table per finished tile
    assert threading.get_ident() not in threads and len(threads) == 1
    table = window.trilemma_panel.trilemma
    assert table is not None and table.reference == "ddim" and table.seeds == (0, 1)
    for mode in modes:
        for key in METRIC_KEYS:
            text = window.trilemma_panel.text_at(mode, key)
            assert text not in ("…", ""), (mode, key, text)
    assert window.trilemma_panel.text_at("ddim", "ssim_to_reference") == "1.000"
    assert float(window.trilemma_panel.text_at("lcm", "ssim_to_reference")) < 1.0
    # A new comparison starts the panel afresh.
    two_step_modes(window, ("lcm", "lightning"))
    window.prompt_panel.seed_count.setValue(1)
    run_comparison(window, qtbot)
    qtbot.waitUntil(lambda: window.trilemma_panel.modes == ("lcm", "lightning"), timeout=JOB_MS)
    qtbot.waitUntil(
        lambda: meter.idle() and window.trilemma_panel.text_at("lightning", "speed_up") != "…", timeout=JOB_MS
    )
    table = window.trilemma_panel.trilemma
    assert table is not None and table.reference == "lcm"


def test_export_folder_holds_report_with_trilemma_and_a_working_reproduce(
    make_window: WindowMaker, qtbot: QtBot, engine_all: Engine, output_dir: Path
) -> None:
    def factory(config: EngineConfig, say: Callable[[str], None]) -> LoadedEngine:
        context = engine_all.run_context(say)  # the real record: file hashes and the replay recipe
        return LoadedEngine(engine=engine_all, info=engine_all.info(), context=context)

    window = make_window(factory=factory)
    two_step_modes(window, ("lcm", "lightning-lora"))
    window.prompt_panel.seed_count.setValue(2)
    run_comparison(window, qtbot)

    def measured(count: int) -> bool:
        shown = window.trilemma_panel.trilemma
        return shown is not None and sum(row.images for row in shown.rows) == count

    # Every image measured: the meter works on its own thread, so under load the last image's
    # numbers may arrive after the job has finished.
    qtbot.waitUntil(lambda: window.trilemma_meter.idle() and measured(4), timeout=JOB_MS)
    shown = window.trilemma_panel.trilemma
    assert shown is not None
    assert window.export_folder_button.isEnabled()
    with qtbot.waitSignal(window.trilemma_meter.exported, timeout=JOB_MS) as exported:
        assert window.export_current_folder()
    folder = exported.args[0]
    assert folder.parent == output_dir / "comparisons"
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["trilemma"] == shown.as_json()  # the numbers the panel showed, not measured again
    assert report["trilemma"]["reference"] == "lcm"
    assert {f["role"] for f in report["model_files"]} >= {"base", "lcm-unet", "lightning-lora"}
    done = subprocess.run(
        [sys.executable, str(folder / "reproduce.py"), "--out", str(folder / "again")],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for record in report["results"]:
        ours = np.asarray(Image.open(folder / record["file"]).convert("RGB"))
        again = np.asarray(Image.open(folder / "again" / record["file"]).convert("RGB"))
        np.testing.assert_array_equal(again, ours, err_msg=record["file"])
