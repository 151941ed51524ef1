"""One tile large, alone or against another tile: a heat map of their difference, a blink, or a wipe.

The arrow keys move to the neighbouring tiles in every form. The other image is the reference of
the same seed unless another tile is chosen. Keys: I the image, D the difference, W the wipe; B
blinks: a tap toggles to the other image and back, holding it shows the other until released.
"""

from __future__ import annotations

import time
from enum import StrEnum

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QKeyEvent, QLinearGradient, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from engine.contract.modes import MODES
from engine.contract.request import RGBImage
from engine.outputs.trilemma import choose_reference
from gui.state.difference import colormap, difference, same_size, wipe
from gui.widgets.comparison_grid import ARROW_STEPS, ComparisonGrid
from gui.widgets.image_tile import ImageCanvas, ImageTile, cost_text, short_title
from gui.widgets.images import from_qimage, to_qimage
from gui.widgets.theme import MUTED

HOLD_SECONDS = 0.35  # B held longer than this shows the other image only while held
REFERENCE_CHOICE = -1  # the other-image list's first entry: the reference of the tile's seed


class Form(StrEnum):
    IMAGE = "Image"
    DIFFERENCE = "Difference"
    BLINK = "Blink"
    WIPE = "Wipe"


FORM_KEYS = {Qt.Key.Key_I: Form.IMAGE, Qt.Key.Key_D: Form.DIFFERENCE, Qt.Key.Key_W: Form.WIPE}


class ScaleBar(QWidget):
    """The heat map's colours from 0 to the scale's top, labelled in 0-255 levels."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.top = 1.0
        self.setFixedHeight(30)
        self._colors = colormap(16)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(300, 30)

    def set_top(self, top: float) -> None:
        self.top = top
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        bar = QRectF(40, 2, max(10, self.width() - 80), 12)
        gradient = QLinearGradient(bar.topLeft(), bar.topRight())
        for index, (r, g, b) in enumerate(self._colors):
            gradient.setColorAt(index / (len(self._colors) - 1), QColor(int(r), int(g), int(b)))
        painter.fillRect(bar, gradient)
        painter.setPen(QColor(MUTED))
        painter.drawText(QRectF(0, 0, 38, 16), Qt.AlignmentFlag.AlignRight, "0")
        painter.drawText(QRectF(bar.right() + 4, 0, 40, 16), Qt.AlignmentFlag.AlignLeft, f"{self.top:.0f}")
        painter.drawText(
            QRectF(bar.left(), 15, bar.width(), 14),
            Qt.AlignmentFlag.AlignCenter,
            "per-pixel |difference|, mean of R, G, B, in levels of 255",
        )
        painter.end()


class SplitCanvas(ImageCanvas):
    """The image canvas with the wipe's split drawn over it as a thin line with a handle."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.split: float | None = None  # 0 to 1 across the image; None draws no line

    def set_split(self, split: float | None) -> None:
        self.split = split
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        super().paintEvent(event)
        if self.split is None or self.image.isNull():
            return
        box = self.rect()
        scale = min(box.width() / self.image.width(), box.height() / self.image.height())
        width, height = self.image.width() * scale, self.image.height() * scale
        left, top = (box.width() - width) / 2, (box.height() - height) / 2
        x = left + width * self.split
        painter = QPainter(self)
        painter.setPen(QPen(QColor("#ffffff"), 2))
        painter.drawLine(int(x), int(top), int(x), int(top + height))
        painter.setBrush(QColor("#ffffff"))
        painter.drawEllipse(QRectF(x - 6, top + height / 2 - 6, 12, 12))
        painter.end()


class ImageViewer(QDialog):
    def __init__(self, grid: ComparisonGrid, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = grid
        self.index = -1
        self.form = Form.IMAGE
        self.showing_other = False  # the blink's state
        self._b_pressed_at: float | None = None
        self.setWindowTitle("Fewstep: image")
        self.resize(760, 860)
        self.canvas = SplitCanvas()
        self.form_choice = QComboBox()
        self.form_choice.addItems([form.value for form in Form])
        self.form_choice.setToolTip("I image · D difference heat map · B blink (tap or hold) · W wipe")
        self.other_choice = QComboBox()
        self.other_choice.setToolTip("the image to compare with: the reference of this seed, or any tile")
        for widget in (self.form_choice, self.other_choice):
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the arrow keys stay with the tiles
        self.scale = ScaleBar()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 1000)
        self.slider.setValue(500)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.setToolTip("drag to move the split: this tile on the left, the other on the right")
        self.status = QLabel()
        self.status.setObjectName("tileCaption")
        self.caption = QLabel()
        self.caption.setObjectName("tileCaption")
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("View"))
        controls.addWidget(self.form_choice)
        controls.addWidget(QLabel("against"))
        controls.addWidget(self.other_choice, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.slider)
        layout.addWidget(self.scale)
        layout.addWidget(self.status)
        layout.addWidget(self.caption)
        self.form_choice.currentIndexChanged.connect(lambda i: self.set_form(list(Form)[i]))
        self.other_choice.currentIndexChanged.connect(lambda _i: self._refresh())
        self.slider.valueChanged.connect(lambda _v: self._refresh())
        self._refresh_controls()

    # --- which images --------------------------------------------------------------------------

    def show_index(self, index: int) -> None:
        if not 0 <= index < len(self.grid.tiles):
            return
        self.index = index
        self.grid.select(index)
        self._fill_other_choice()
        tile = self.grid.tiles[index]
        lines = [f"{MODES[tile.mode].title}", tile.settings_line.text()]
        if tile.result is not None:
            lines.append(cost_text(tile.result))
        if tile.warning.text():
            lines.append(tile.warning.text())
        lines.append("← → ↑ ↓ other tiles · I image · D difference · B blink · W wipe · Esc close")
        self.caption.setText("\n".join(lines))
        self.setWindowTitle(f"Fewstep: {MODES[tile.mode].title}, seed {tile.seed}")
        self._refresh()

    def _fill_other_choice(self) -> None:
        chosen = self.other_choice.currentData()
        self.other_choice.blockSignals(True)
        self.other_choice.clear()
        self.other_choice.addItem("the reference of this seed", REFERENCE_CHOICE)
        for index, tile in enumerate(self.grid.tiles):
            self.other_choice.addItem(f"{short_title(tile.mode)} · seed {tile.seed}", index)
        position = self.other_choice.findData(chosen if chosen is not None else REFERENCE_CHOICE)
        self.other_choice.setCurrentIndex(max(0, position))
        self.other_choice.blockSignals(False)

    def choose_other(self, index: int) -> None:
        """Compare with this tile (REFERENCE_CHOICE: the reference of the shown tile's seed)."""
        self.other_choice.setCurrentIndex(max(0, self.other_choice.findData(index)))

    def other_index(self) -> int | None:
        """The tile compared with, or None when there is none (e.g. one tile only)."""
        if not 0 <= self.index < len(self.grid.tiles):
            return None
        chosen = self.other_choice.currentData()
        if chosen is None or chosen == REFERENCE_CHOICE:
            tile = self.grid.tiles[self.index]
            modes = list(dict.fromkeys(t.mode for t in self.grid.tiles))
            reference = self.grid.tile(choose_reference(modes), tile.seed)
            return self.grid.tiles.index(reference) if reference is not None else None
        return int(chosen)

    @staticmethod
    def _pixels(tile: ImageTile) -> RGBImage | None:
        if tile.result is not None:
            return tile.result.image
        return None if tile.image.isNull() else from_qimage(tile.image)

    # --- the forms -----------------------------------------------------------------------------

    def set_form(self, form: Form) -> None:
        self.form = form
        self.showing_other = False
        self.form_choice.blockSignals(True)
        self.form_choice.setCurrentIndex(list(Form).index(form))
        self.form_choice.blockSignals(False)
        self._refresh()

    def _refresh_controls(self) -> None:
        self.slider.setVisible(self.form is Form.WIPE)
        self.scale.setVisible(self.form is Form.DIFFERENCE)
        self.other_choice.setEnabled(self.form is not Form.IMAGE)

    def _refresh(self) -> None:
        self._refresh_controls()
        self.canvas.set_split(None)
        if not 0 <= self.index < len(self.grid.tiles):
            return
        tile = self.grid.tiles[self.index]
        if self.form is Form.IMAGE:
            self._show(tile.image, "" if not tile.image.isNull() else "not rendered yet", "")
            return
        other_index = self.other_index()
        mine = self._pixels(tile)
        other_tile = self.grid.tiles[other_index] if other_index is not None else None
        theirs = self._pixels(other_tile) if other_tile is not None else None
        if mine is None or theirs is None or other_tile is None:
            self._show(tile.image, "", "nothing to compare with yet: the other tile is not rendered")
            return
        if not same_size(mine, theirs):
            self._show(
                tile.image, "", "the two images differ in size; they cannot be compared pixel by pixel"
            )
            return
        other_name = f"{short_title(other_tile.mode)} · seed {other_tile.seed}"
        this_name = f"{short_title(tile.mode)} · seed {tile.seed}"
        if self.form is Form.DIFFERENCE:
            result = difference(mine, theirs)
            self.scale.set_top(result.scale_max)
            self._show(
                to_qimage(result.heat),
                "",
                f"|{this_name} − {other_name}|: mean {result.mean:.1f}, largest {result.peak:.0f} of 255",
            )
        elif self.form is Form.BLINK:
            shown, name = (theirs, other_name) if self.showing_other else (mine, this_name)
            self._show(to_qimage(shown), "", f"showing {name} · B: tap to toggle, hold to peek")
        else:
            fraction = self.slider.value() / 1000
            self._show(
                to_qimage(wipe(mine, theirs, fraction)), "", f"left: {this_name} · right: {other_name}"
            )
            self.canvas.set_split(fraction)

    def _show(self, image: QImage, placeholder: str, status: str) -> None:
        self.canvas.set_image(image)
        self.canvas.set_placeholder(placeholder)
        self.status.setText(status)

    # --- keys ----------------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        key = Qt.Key(event.key())
        if key in ARROW_STEPS:
            self.show_index(self.grid.step(*ARROW_STEPS[key]))
            return
        if key in FORM_KEYS:
            self.set_form(FORM_KEYS[key])
            return
        if key == Qt.Key.Key_B:
            if not event.isAutoRepeat():
                if self.form is not Form.BLINK:
                    self.set_form(Form.BLINK)
                self._b_pressed_at = time.monotonic()
                self.showing_other = not self.showing_other
                self._refresh()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        if Qt.Key(event.key()) == Qt.Key.Key_B and not event.isAutoRepeat():
            pressed, self._b_pressed_at = self._b_pressed_at, None
            if pressed is not None and time.monotonic() - pressed >= HOLD_SECONDS:
                self.showing_other = not self.showing_other  # a hold: back to what was shown before
                self._refresh()
            return
        super().keyReleaseEvent(event)
