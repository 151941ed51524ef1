"""The large view's difference forms: a heat map with its scale, a blink (tap and hold), a wipe; the
arrow keys still move between tiles."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

import gui.widgets.image_view as image_view
from engine.contract.request import ModeResult, RGBImage, Timings
from gui.state.difference import colormap, difference, per_pixel_difference, wipe
from gui.widgets.comparison_grid import ComparisonGrid
from gui.widgets.image_view import Form, ImageViewer
from gui.widgets.images import from_qimage, to_qimage

MODES = ("ddim", "lcm", "lightning")
SEEDS = (0, 1)


def picture(mode: str, seed: int) -> RGBImage:
    rng = np.random.default_rng(MODES.index(mode) * 10 + seed)
    return rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)


def result(mode: str, seed: int) -> ModeResult:
    timings = Timings(text_encoding=0.1, switch=0.0, denoising=1.0, per_step=(0.5, 0.5), decode=0.1)
    return ModeResult(
        mode=mode,
        seed=seed,
        steps=2,
        guidance=1.0,
        scheduler="LCMScheduler",
        timesteps=(999.0, 499.0),
        timings=timings,
        image=picture(mode, seed),
    )


@pytest.fixture
def viewer(qtbot: QtBot) -> ImageViewer:
    grid = ComparisonGrid()
    qtbot.addWidget(grid)
    grid.prepare(MODES, SEEDS)
    for seed in SEEDS:
        for mode in MODES:
            grid.show_result(result(mode, seed))
    view = ImageViewer(grid)
    qtbot.addWidget(view)
    view.show()
    view.show_index(1)  # lcm, seed 0
    return view


def shown(view: ImageViewer) -> RGBImage:
    return from_qimage(view.canvas.image)


def test_difference_maths() -> None:
    a = picture("ddim", 0)
    assert difference(a, a.copy()).mean == 0.0
    assert not difference(a, a.copy()).heat.any()  # no difference is black
    brighter = np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)
    expected = np.abs(brighter.astype(int) - a.astype(int)).mean(axis=2)
    np.testing.assert_allclose(per_pixel_difference(brighter, a), expected)
    heat = difference(brighter, a)
    assert heat.peak == pytest.approx(expected.max()) and heat.scale_max == heat.peak
    top = colormap()[-1]
    assert (heat.heat[expected == expected.max()] == top).all()  # the largest difference is the top colour
    half = wipe(a, brighter, 0.5)
    np.testing.assert_array_equal(half[:, :15], a[:, :15])
    np.testing.assert_array_equal(half[:, 15:], brighter[:, 15:])
    with pytest.raises(ValueError, match="different sizes"):
        difference(a, a[:10])


def test_qimage_round_trip_with_padded_rows() -> None:
    odd = picture("lcm", 1)[:, :29]  # 29 * 3 bytes: Qt pads each row to 4 bytes
    np.testing.assert_array_equal(from_qimage(to_qimage(odd)), odd)


def test_heat_map_against_the_reference_of_the_same_seed(viewer: ImageViewer) -> None:
    QTest.keyClick(viewer, Qt.Key.Key_D)
    assert viewer.form is Form.DIFFERENCE and viewer.scale.isVisible()
    expected = difference(picture("lcm", 0), picture("ddim", 0))
    np.testing.assert_array_equal(shown(viewer), expected.heat)
    assert viewer.scale.top == expected.scale_max
    assert f"mean {expected.mean:.1f}" in viewer.status.text()
    # Down: lcm of seed 1, now against ddim of seed 1; the arrows still move in this form.
    QTest.keyClick(viewer, Qt.Key.Key_Down)
    assert viewer.index == 4 and viewer.form is Form.DIFFERENCE
    np.testing.assert_array_equal(shown(viewer), difference(picture("lcm", 1), picture("ddim", 1)).heat)
    # Any other tile: lightning of seed 0.
    viewer.choose_other(2)
    np.testing.assert_array_equal(shown(viewer), difference(picture("lcm", 1), picture("lightning", 0)).heat)


def test_blink_toggles_on_a_tap_and_peeks_while_held(
    viewer: ImageViewer, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, reference = picture("lcm", 0), picture("ddim", 0)
    monkeypatch.setattr(image_view, "HOLD_SECONDS", 3600.0)  # every press is a tap
    QTest.keyClick(viewer, Qt.Key.Key_B)
    assert viewer.form is Form.BLINK
    np.testing.assert_array_equal(shown(viewer), reference)
    QTest.keyClick(viewer, Qt.Key.Key_B)
    np.testing.assert_array_equal(shown(viewer), mine)
    monkeypatch.setattr(image_view, "HOLD_SECONDS", 0.0)  # every press is a hold
    QTest.keyPress(viewer, Qt.Key.Key_B)
    np.testing.assert_array_equal(shown(viewer), reference)  # shown while held
    QTest.keyRelease(viewer, Qt.Key.Key_B)
    np.testing.assert_array_equal(shown(viewer), mine)  # and gone on release
    QTest.keyClick(viewer, Qt.Key.Key_Right)  # arrows move, blink stays
    assert viewer.index == 2 and viewer.form is Form.BLINK
    np.testing.assert_array_equal(shown(viewer), picture("lightning", 0))


def test_wipe_splits_at_the_slider(viewer: ImageViewer) -> None:
    QTest.keyClick(viewer, Qt.Key.Key_W)
    assert viewer.form is Form.WIPE and viewer.slider.isVisible()
    mine, reference = picture("lcm", 0), picture("ddim", 0)
    np.testing.assert_array_equal(shown(viewer), wipe(mine, reference, 0.5))
    assert viewer.canvas.split == 0.5
    viewer.canvas.grab()  # paints the split line
    viewer.slider.setValue(200)
    np.testing.assert_array_equal(shown(viewer), wipe(mine, reference, 0.2))
    viewer.slider.setValue(1000)
    np.testing.assert_array_equal(shown(viewer), mine)
    QTest.keyClick(viewer, Qt.Key.Key_Left)  # the slider never takes the arrows
    assert viewer.index == 0 and viewer.slider.value() == 1000
    QTest.keyClick(viewer, Qt.Key.Key_I)
    assert viewer.form.value == "Image" and not viewer.slider.isVisible()
    np.testing.assert_array_equal(shown(viewer), picture("ddim", 0))


def test_a_tile_not_rendered_yet_says_so(qtbot: QtBot) -> None:
    grid = ComparisonGrid()
    qtbot.addWidget(grid)
    grid.prepare(["ddim", "lcm"], [0])
    grid.show_result(result("lcm", 0))
    view = ImageViewer(grid)
    qtbot.addWidget(view)
    view.show_index(1)
    view.set_form(Form.DIFFERENCE)
    assert "not rendered" in view.status.text()
