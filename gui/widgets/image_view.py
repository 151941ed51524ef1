"""One tile large: the image fills the window; the arrow keys move to the neighbouring tiles."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QDialog, QLabel, QVBoxLayout, QWidget

from engine.contract.modes import MODES
from gui.widgets.comparison_grid import ComparisonGrid
from gui.widgets.image_tile import ImageCanvas, cost_text


class ImageViewer(QDialog):
    def __init__(self, grid: ComparisonGrid, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = grid
        self.index = -1
        self.setWindowTitle("Fewstep: image")
        self.resize(760, 820)
        self.canvas = ImageCanvas()
        self.caption = QLabel()
        self.caption.setObjectName("tileCaption")
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.caption)

    def show_index(self, index: int) -> None:
        if not 0 <= index < len(self.grid.tiles):
            return
        self.index = index
        self.grid.select(index)
        tile = self.grid.tiles[index]
        self.canvas.set_image(tile.image)
        self.canvas.set_placeholder("" if not tile.image.isNull() else "not rendered yet")
        lines = [f"{MODES[tile.mode].title}", tile.settings_line.text()]
        if tile.result is not None:
            lines.append(cost_text(tile.result))
        if tile.warning.text():
            lines.append(tile.warning.text())
        lines.append("← → ↑ ↓ other tiles · Esc close")
        self.caption.setText("\n".join(lines))
        self.setWindowTitle(f"Fewstep: {MODES[tile.mode].title}, seed {tile.seed}")

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        moves = {
            Qt.Key.Key_Left: (-1, 0),
            Qt.Key.Key_Right: (1, 0),
            Qt.Key.Key_Up: (0, -1),
            Qt.Key.Key_Down: (0, 1),
        }
        key = Qt.Key(event.key())
        if key in moves:
            self.show_index(self.grid.step(*moves[key]))
            return
        super().keyPressEvent(event)
