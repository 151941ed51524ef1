"""The grid's tile titles are never cut: at every window width from 1024 px, with few modes or many, each
title's whole text fits its label, measured with the label's own font."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QFontMetrics
from pytestqt.qtbot import QtBot

from engine.contract.modes import MODES
from engine.contract.request import ModeResult, Timings
from gui.widgets.image_tile import TITLE_SCALES, ImageTile
from gui.widgets.main_window import MainWindow
from tests.gui.widgets.window_without_engine import bare_window

__all__ = ["bare_window"]  # the fixture, imported for pytest to find


def finished(mode: str) -> ModeResult:
    """A finished image, so that the tile shows its total time as a comparison leaves it."""
    return ModeResult(
        mode=mode,
        seed=1,
        steps=4,
        guidance=0.0,
        scheduler="LCMScheduler",
        timesteps=(999.0,),
        eta=MODES[mode].eta,
        timings=Timings(text_encoding=0.12, switch=0.01, denoising=10.4, per_step=(2.6,) * 4, decode=0.05),
        image=np.zeros((64, 64, 3), dtype=np.uint8),
    )


def cut_titles(tiles: list[ImageTile]) -> list[str]:
    """Each title whose word-wrapped text needs more room than its label has, with the sizes."""
    cut = []
    for tile in tiles:
        label = tile.title
        room = label.contentsRect()
        needed = QFontMetrics(label.font()).boundingRect(
            QRect(0, 0, room.width(), 10_000), int(Qt.TextFlag.TextWordWrap), label.text()
        )
        if not label.isVisible() or needed.width() > room.width() or needed.height() > room.height():
            cut.append(
                f"{label.text()!r}: needs {needed.width()}x{needed.height()}, has {room.width()}x{room.height()}"
            )
    return cut


def show_comparison(qtbot: QtBot, window: MainWindow, width: int, modes: list[str]) -> list[ImageTile]:
    window.resize(width, 900)
    window.grid.prepare(modes, [1, 2])
    for mode in modes:
        for seed in (1, 2):
            window.grid.show_result(replace(finished(mode), seed=seed))
    qtbot.waitUntil(lambda: window.width() == width and not cut_titles(window.grid.tiles), timeout=2_000)
    return window.grid.tiles


@pytest.mark.parametrize("width", [1024, 1280, 1600])
@pytest.mark.parametrize("count", [5, 12])
def test_no_tile_title_is_cut(bare_window: MainWindow, qtbot: QtBot, width: int, count: int) -> None:
    modes = list(MODES)[:count]
    try:
        tiles = show_comparison(qtbot, bare_window, width, modes)
    except AssertionError:  # waitUntil's timeout: say which titles
        pytest.fail(f"cut at {width} px: {cut_titles(bare_window.grid.tiles)}")
    assert [t.mode for t in tiles[:count]] == modes
    assert all(t.total.isVisible() for t in tiles)
    # The pictures of a row line up: its titles take the same height.
    assert len({t.title.height() for t in tiles[:count]}) == 1


def test_a_title_with_a_long_word_shrinks_then_widens_its_tiles(
    bare_window: MainWindow, qtbot: QtBot
) -> None:
    long_word = replace(MODES["tcd"], name="long", title="SDXL + ConsistencyTrajectoryDistillationAnything")
    with MODES.added([long_word]):
        tiles = show_comparison(qtbot, bare_window, 1024, ["ddim", *list(MODES)[1:11], "long"])
        long_tile = tiles[11]
        assert TITLE_SCALES[-1] <= long_tile.title.scale < 1.0  # shrunk, within reason
        assert tiles[0].title.scale == 1.0  # the others keep theirs
        assert long_tile.width() > 140  # the grid's least tile width, widened for this title
        assert not cut_titles(tiles)
        bare_window.grid.clear()
