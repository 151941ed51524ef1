"""The grid's tiles: what each one says of the image it shows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from pytestqt.qtbot import QtBot

from engine.contract.request import ModeResult, Timings
from gui.widgets.comparison_grid import ComparisonGrid
from gui.widgets.image_tile import styles_text

RESULT = ModeResult(
    mode="ddim",
    seed=3,
    steps=2,
    guidance=5.0,
    scheduler="DDIMScheduler",
    timesteps=(999.0, 499.0),
    timings=Timings(text_encoding=0.1, switch=0.0, denoising=0.2, per_step=(0.1, 0.1), decode=0.1),
    image=np.zeros((16, 16, 3), dtype=np.uint8),
)


def test_a_tile_names_the_styles_that_were_on(qtbot: QtBot) -> None:
    grid = ComparisonGrid()
    qtbot.addWidget(grid)
    grid.prepare(["ddim"], [3])
    grid.style_names = {"style-0": "watercolor", "style-1": "ink"}
    tile = grid.tiles[0]
    grid.show_result(replace(RESULT, styles=(("style-0", 0.8), ("style-1", 0.25))))
    assert tile.styles_line.text() == "styles: watercolor 0.8, ink 0.25" and not tile.styles_line.isHidden()
    grid.show_result(RESULT)  # no style on: no line
    assert tile.styles_line.text() == "" and tile.styles_line.isHidden()
    tile.show_result(replace(RESULT, styles=(("style-2", 1.0),)))  # a name the grid was not told
    assert tile.styles_line.text() == "styles: style-2 1"


def test_styles_text() -> None:
    assert styles_text([]) == ""
    assert styles_text([("watercolor", 0.8)]) == "styles: watercolor 0.8"
    assert styles_text([("a", -0.5), ("b", 1.0)]) == "styles: a -0.5, b 1"
