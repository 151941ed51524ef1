"""The window opens a `fewstep bench` folder: the table with intervals, then a prompt's grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from engine.outputs.bench_cells import cell_order
from engine.outputs.bench_folder import BenchFolder
from engine.outputs.bench_report import write_bench_report
from tests.gui.conftest import WindowMaker

MODES = ("ddim", "lightning")
PROMPTS = [{"prompt": f"prompt {i}", "negative_prompt": "", "category": ""} for i in range(3)]


def bench_folder(root: Path) -> Path:
    """A finished bench of random pictures, its report written by the bench's own report writer."""
    settings = {"prompts": PROMPTS, "modes": [{"mode": m} for m in MODES], "seeds": [0, 1]}
    folder = BenchFolder.open(root, settings, overwrite=False)
    folder.cells.mkdir()
    rng = np.random.default_rng(0)
    for cell in cell_order(len(PROMPTS), MODES, (0, 1)):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder.image_path(cell))
        record = {
            "cell": cell.id,
            "prompt_index": cell.prompt_index,
            "category": "",
            "mode": cell.mode,
            "seed": cell.seed,
            "steps": 4,
            "guidance": 1.0,
            "file": f"{cell.id}.png",
            "seconds": {"denoising": 0.5 if cell.mode == "ddim" else 0.1, "decode": 0.01},
        }
        folder.record_path(cell).write_text(json.dumps(record))
    write_bench_report(folder, settings, None, not_measured="not measured: no CLIP model")
    return root


def test_the_window_shows_a_bench_table_then_a_prompts_grid(
    qtbot: QtBot, make_window: WindowMaker, tmp_path: Path
) -> None:
    window = make_window(wait_ready=False)
    browser = window.open_bench(bench_folder(tmp_path / "bench"))
    assert browser is not None
    qtbot.addWidget(browser)

    def text(row: int, column: int) -> str:
        item = browser.table.item(row, column)
        assert item is not None
        return item.text()

    headers = [
        browser.table.model().headerData(c, Qt.Orientation.Horizontal)
        for c in range(browser.table.columnCount())
    ]
    assert headers[:3] == ["s / image", "speed-up", "SSIM"] and "adherence" in headers
    speed = text(1, headers.index("speed-up"))
    assert speed == "4.6x (4.6x – 4.6x)"  # 0.51 s over 0.11 s on every prompt: a point interval
    assert text(1, headers.index("adherence")) == "–"  # not measured, never 0
    browser.prompts.setCurrentRow(2)

    def shown() -> dict[str, QLabel]:
        return {
            label.objectName(): label
            for label in browser.grid_host.findChildren(QLabel)
            if label.objectName() and not label.pixmap().isNull()
        }

    qtbot.waitUntil(lambda: len(shown()) == 4)  # the previous prompt's labels go at the next event loop
    labels = shown()
    assert set(labels) == {"ddim/0", "ddim/1", "lightning/0", "lightning/1"}


def test_a_folder_that_is_no_bench_is_said_in_one_line(make_window: WindowMaker, tmp_path: Path) -> None:
    window = make_window(wait_ready=False)
    assert window.open_bench(tmp_path) is None
    assert "not a finished fewstep bench" in window.banner.text()
