"""The comparison grid: one tile (gui.widgets.image_tile) per mode and seed, filled as each image finishes,
sized so that a whole comparison fits the window whenever it can. A past run's images are read from
disk on the grid's own pool thread (gui.state.background), each tile filled as its file arrives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QKeyEvent, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QScrollArea,
    QWidget,
)

from engine.contract.modes import MODES
from engine.contract.request import ModeResult, Progress
from gui.state.background import Background
from gui.state.image_store import HistoryImage, RunRecord
from gui.widgets.image_tile import TILE_SIDE_CHROME, ImageTile
from gui.widgets.images import read_image

MIN_TILE_WIDTH = 140
MIN_CANVAS = 120
TILE_CHROME = 190  # a tile's height besides its picture: a one-line title, bars, captions, a warning


# The arrow keys as (column, row) steps through the grid; the large view moves the same way.
ARROW_STEPS = {
    Qt.Key.Key_Left: (-1, 0),
    Qt.Key.Key_Right: (1, 0),
    Qt.Key.Key_Up: (0, -1),
    Qt.Key.Key_Down: (0, 1),
}


class ComparisonGrid(QScrollArea):
    """Tiles in rows of seeds and columns of modes; arrows move the selection, Enter opens it large.

    Tiles share the width equally and their pictures keep the image's aspect ratio; the rows fit the
    height when they can, and the grid scrolls when they cannot.
    """

    tile_activated = Signal(int)
    saved_run_shown = Signal()  # every image of a past run is read (or found unreadable) and shown

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.tiles: list[ImageTile] = []
        self.style_names: Mapping[str, str] = {}  # style adapter -> its file's name, for the captions
        self.columns = 1
        self.aspect = 1.0
        self.selected = -1
        self._reads = Background(self)  # a past run's images; forgotten whenever the tiles are replaced
        self._reads.idle.connect(self.saved_run_shown)
        self._body = QWidget()
        self._layout = QGridLayout(self._body)
        self._layout.setSpacing(10)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setWidget(self._body)
        self.empty_label = QLabel("Write a prompt and press Generate (Ctrl+Enter) to compare the modes.")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setObjectName("tileCaption")
        self._layout.addWidget(self.empty_label, 0, 0)

    def prepare(self, modes: Sequence[str], seeds: Sequence[int], aspect: float = 1.0) -> None:
        """Empty tiles for every mode (columns) and seed (rows), before the job starts.

        aspect: the images' height over width, so that the tiles have their shape before any image.
        """
        self.clear()
        self.empty_label.hide()
        self.aspect = aspect
        self.columns = max(1, len(modes))
        for row, seed in enumerate(seeds):
            for column, mode in enumerate(modes):
                tile = ImageTile(mode, seed)
                index = len(self.tiles)
                tile.clicked.connect(lambda index=index: self._clicked(index))
                self._layout.addWidget(tile, row, column)
                self.tiles.append(tile)
        self._layout.setRowStretch(len(seeds), 1)
        self._fit_tiles()

    def _fit_tiles(self) -> None:
        """Equal widths that fill the viewport, never narrower than the widest title needs; titles of a row
        take as many lines as its longest, so that the pictures of a row line up."""
        if not self.tiles:
            return
        spacing = self._layout.horizontalSpacing()
        viewport = self.viewport().size()
        least = max(MIN_TILE_WIDTH, *(tile.title.min_width() + TILE_SIDE_CHROME for tile in self.tiles))
        width = max(least, (viewport.width() - spacing * (self.columns - 1)) // self.columns)
        title_width = width - TILE_SIDE_CHROME
        heights = [tile.title.needed_height(title_width) for tile in self.tiles]
        one_line = self.tiles[0].title.fontMetrics().height()
        rows = -(-len(self.tiles) // self.columns)
        row_titles = [max(heights[r * self.columns : (r + 1) * self.columns]) for r in range(rows)]
        chrome = TILE_CHROME + max(0, max(row_titles) - one_line)
        row_budget = (viewport.height() - spacing * (rows - 1)) // rows - chrome
        canvas_height = round((width - TILE_SIDE_CHROME) * self.aspect)
        if row_budget >= MIN_CANVAS:
            canvas_height = min(canvas_height, row_budget)
        canvas_height = max(MIN_CANVAS, canvas_height)
        for index, tile in enumerate(self.tiles):
            tile.setFixedWidth(width)
            tile.canvas.setFixedHeight(canvas_height)
            tile.title.setMinimumHeight(row_titles[index // self.columns])

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit_tiles()

    def clear(self) -> None:
        for tile in self.tiles:
            self._layout.removeWidget(tile)
            tile.deleteLater()
        for row in range(self._layout.rowCount()):
            self._layout.setRowStretch(row, 0)
        self.tiles = []
        self.selected = -1
        self._reads.forget()

    def tile(self, mode: str, seed: int) -> ImageTile | None:
        return next((t for t in self.tiles if t.mode == mode and t.seed == seed), None)

    def show_progress(self, progress: Progress) -> None:
        if (tile := self.tile(progress.mode, progress.seed)) is not None:
            tile.show_progress(progress)

    def show_result(self, result: ModeResult) -> None:
        if (tile := self.tile(result.mode, result.seed)) is not None:
            tile.show_result(result, style_names=self.style_names)

    def show_live_result(self, prompt: str, result: ModeResult, aspect: float) -> None:
        """The live render in one tile, made anew only when the live mode or the seed changes."""
        tiles = self.tiles
        if len(tiles) != 1 or tiles[0].mode != result.mode or tiles[0].seed != result.seed:
            self.prepare([result.mode], [result.seed], aspect=aspect)
        self.show_result(result)
        self.tiles[0].title.setText(f"Live · {MODES[result.mode].title}")
        self._fit_tiles()
        self.tiles[0].setToolTip(prompt)

    def show_saved_run(self, record: RunRecord) -> None:
        """A past run's images from disk; tiles of modes and seeds it did not finish say so."""
        modes = list(dict.fromkeys(image.mode for image in record.images))
        seeds = list(dict.fromkeys(image.seed for image in record.images))
        width, height = record.request.width, record.request.height
        self.prepare(modes, seeds, aspect=height / width if width and height else 1.0)
        reading: set[ImageTile] = set()
        for image in record.images:
            if (tile := self.tile(image.mode, image.seed)) is not None and tile not in reading:
                reading.add(tile)
                tile.canvas.set_placeholder("reading…")
                self._read_saved(tile, image)
        for tile in self.tiles:
            if tile not in reading:
                tile.mark_stopped("not in this run")
        if not reading:
            self.saved_run_shown.emit()  # no image to read

    def _read_saved(self, tile: ImageTile, image: HistoryImage) -> None:
        def shown(picture: QImage) -> None:
            styles = ((style.path.stem, style.weight) for style in image.styles)
            tile.show_saved_image(picture, image.steps, image.guidance, styles)

        self._reads.submit(lambda: read_image(image.png), shown, lambda exc: shown(QImage()))

    def shutdown(self) -> None:
        self._reads.shutdown()

    def mark_unfinished(self, text: str) -> None:
        for tile in self.tiles:
            tile.mark_stopped(text)

    def finished_tiles(self) -> list[ImageTile]:
        return [t for t in self.tiles if t.result is not None]

    def select(self, index: int) -> None:
        if not self.tiles:
            return
        index = max(0, min(index, len(self.tiles) - 1))
        if 0 <= self.selected < len(self.tiles):
            self.tiles[self.selected].set_selected(False)
        self.selected = index
        self.tiles[index].set_selected(True)
        self.ensureWidgetVisible(self.tiles[index])

    def step(self, dx: int, dy: int) -> int:
        """The tile index one step away (clamped to the grid), for the grid and the large view."""
        if not self.tiles:
            return -1
        current = max(self.selected, 0)
        row, column = divmod(current, self.columns)
        rows = -(-len(self.tiles) // self.columns)
        column = max(0, min(column + dx, self.columns - 1))
        row = max(0, min(row + dy, rows - 1))
        return min(row * self.columns + column, len(self.tiles) - 1)

    def _clicked(self, index: int) -> None:
        self.setFocus()
        self.select(index)
        self.tile_activated.emit(index)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        key = Qt.Key(event.key())
        if key in ARROW_STEPS and self.tiles:
            self.select(self.step(*ARROW_STEPS[key]))
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space) and self.selected >= 0:
            self.tile_activated.emit(self.selected)
            return
        super().keyPressEvent(event)
