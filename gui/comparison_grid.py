"""The comparison grid: one tile per mode and seed, filled as each image finishes.

A tile shows a live preview and a progress bar while its mode runs, then the image with what it cost:
a bar split into text encoding, denoising, decode and switch, and the same in numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from engine.modes import MODES, GuidanceKind
from engine.request import ModeResult, Progress
from gui.image_store import RunRecord
from gui.images import to_qimage
from gui.theme import MUTED

# The cost bar's colours, in the order of a generation: text, switch, denoise, decode.
COST_COLORS = {"text": "#8e7cc3", "switch": "#e07b39", "denoise": "#4c8dff", "decode": "#45b38a"}


def guidance_text(mode: str, guidance: float) -> str:
    if MODES[mode].guidance_kind is GuidanceKind.EMBEDDING:
        return f"w {guidance:g}"
    return f"CFG {guidance:g}" if guidance > 1.0 else "CFG off"


def cost_parts(result: ModeResult) -> tuple[tuple[str, float], ...]:
    t = result.timings
    text = 0.0 if result.text_encoding_shared else t.text_encoding
    return (("text", text), ("switch", t.switch), ("denoise", t.denoising), ("decode", t.decode))


def cost_text(result: ModeResult) -> str:
    t = result.timings
    text = "shared" if result.text_encoding_shared else f"{t.text_encoding:.2f}"
    return f"text {text} · denoise {t.denoising:.2f} · decode {t.decode:.2f} · switch {t.switch:.3f} s"


def cost_html(result: ModeResult) -> str:
    """The breakdown as a small table, each part marked with its colour in the cost bar."""
    t = result.timings
    values = {
        "text": "shared" if result.text_encoding_shared else f"{t.text_encoding:.2f} s",
        "switch": f"{t.switch:.3f} s",
        "denoise": f"{t.denoising:.2f} s",
        "decode": f"{t.decode:.2f} s",
    }
    rows = "".join(
        f"<tr><td><span style='color:{COST_COLORS[name]}'>■</span> {name}</td>"
        f"<td align='right'>{value}</td></tr>"
        for name, value in values.items()
    )
    return f"<table width='100%' cellspacing='0' cellpadding='0'>{rows}</table>"


def styles_text(styles: Iterable[tuple[str, float]]) -> str:
    """The style LoRAs that were on, by file name: "styles: watercolor 0.8"; empty when none were."""
    parts = [f"{name} {weight:g}" for name, weight in styles]
    return "styles: " + ", ".join(parts) if parts else ""


SHORT_TITLES = {
    "ddim": "DDIM reference",
    "lcm": "LCM UNet",
    "lcm-lora": "LCM-LoRA",
    "lightning": "Lightning UNet",
    "lightning-lora": "Lightning LoRA",
}


def short_title(mode: str) -> str:
    """A title that fits a narrow tile: every mode runs on SDXL, so the prefix says nothing."""
    return SHORT_TITLES.get(mode) or MODES[mode].title.removeprefix("SDXL + ").removeprefix("SDXL-")


class ImageCanvas(QWidget):
    """Paints one image fitted into its box; small images are enlarged with hard pixel edges."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image = QImage()
        self.placeholder = ""
        self.setMinimumSize(128, 128)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, image: QImage) -> None:
        self.image = image
        self.update()

    def set_placeholder(self, text: str) -> None:
        self.placeholder = text
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(220, 220)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#141517"))
        if not self.image.isNull():
            box = self.rect()
            scale = min(box.width() / self.image.width(), box.height() / self.image.height())
            width, height = self.image.width() * scale, self.image.height() * scale
            target = QRectF((box.width() - width) / 2, (box.height() - height) / 2, width, height)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 2)
            painter.drawImage(target, self.image)
        if self.placeholder:
            painter.setPen(QColor(MUTED))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
        painter.end()


class CostBar(QWidget):
    """Where one image's seconds went, as proportions of its total."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.parts: tuple[tuple[str, float], ...] = ()
        self.setFixedHeight(6)

    def set_parts(self, parts: tuple[tuple[str, float], ...]) -> None:
        self.parts = parts
        self.setToolTip("  ".join(f"■ {name} {seconds:.3f} s" for name, seconds in parts))
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#33363b"))
        total = sum(seconds for _, seconds in self.parts)
        x = 0.0
        for name, seconds in self.parts if total > 0 else ():
            width = self.width() * seconds / total
            painter.fillRect(QRectF(x, 0, width, self.height()), QColor(COST_COLORS[name]))
            x += width
        painter.end()


class ImageTile(QFrame):
    clicked = Signal()

    def __init__(self, mode: str, seed: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode = mode
        self.seed = seed
        self.result: ModeResult | None = None
        self.setObjectName("tile")
        self.setProperty("selected", False)
        self.title = QLabel(short_title(mode))
        self.title.setToolTip(MODES[mode].title)
        self.title.setObjectName("tileTitle")
        self.title.setMinimumWidth(10)
        self.total = QLabel()
        self.total.setObjectName("tileTotal")
        self.total.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.total.hide()
        self.canvas = ImageCanvas()
        self.canvas.set_placeholder("queued")
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.cost_bar = CostBar()
        self.cost_bar.hide()
        self.settings_line = QLabel(f"seed {seed}")
        self.settings_line.setObjectName("tileCaption")
        self.settings_line.setWordWrap(True)
        self.cost_line = QLabel()
        self.cost_line.setObjectName("tileCaption")
        self.cost_line.setTextFormat(Qt.TextFormat.RichText)
        self.styles_line = QLabel()
        self.styles_line.setObjectName("tileCaption")
        self.styles_line.setWordWrap(True)
        self.styles_line.hide()
        self.warning = QLabel()
        self.warning.setObjectName("tileWarning")
        self.warning.setWordWrap(True)
        self.warning.hide()
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.total, 0, Qt.AlignmentFlag.AlignVCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(4)
        layout.addLayout(header)
        layout.addWidget(self.canvas)
        layout.addWidget(self.progress)
        layout.addWidget(self.cost_bar)
        layout.addWidget(self.settings_line)
        layout.addWidget(self.cost_line)
        layout.addWidget(self.styles_line)
        layout.addWidget(self.warning)
        layout.addStretch(1)

    @property
    def image(self) -> QImage:
        return self.canvas.image

    def set_selected(self, selected: bool) -> None:
        self.setProperty("selected", selected)
        # A dynamic property changes the style only after the style is re-applied.
        self.style().unpolish(self)
        self.style().polish(self)

    def show_progress(self, progress: Progress) -> None:
        self.progress.setRange(0, progress.total)
        self.progress.setValue(progress.step)
        self.canvas.set_placeholder(
            "" if progress.preview is not None else f"step {progress.step}/{progress.total}"
        )
        if progress.preview is not None:
            self.canvas.set_image(to_qimage(progress.preview))
        self.settings_line.setText(f"step {progress.step} of {progress.total} · seed {self.seed}")

    def show_result(
        self, result: ModeResult, image: QImage | None = None, style_names: Mapping[str, str] | None = None
    ) -> None:
        """style_names: each style adapter's file name (EngineInfo.style_names); else the adapter's."""
        self.result = result
        self.canvas.set_placeholder("")
        self.canvas.set_image(image if image is not None else to_qimage(result.image))
        self.progress.hide()
        self.total.setText(f"{result.timings.total:.2f} s")
        self.total.show()
        self.settings_line.setText(
            f"{result.steps} steps · {guidance_text(result.mode, result.guidance)} · seed {result.seed}"
        )
        self.cost_line.setText(cost_html(result))
        self.cost_line.setToolTip(cost_text(result))
        self.cost_bar.set_parts(cost_parts(result))
        self.cost_bar.show()
        names = style_names or {}
        self._show_styles((names.get(adapter, adapter), weight) for adapter, weight in result.styles)
        prefix = f"{result.mode}: "
        warnings = [w.removeprefix(prefix) for w in result.warnings]
        self.warning.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.warning.setVisible(bool(warnings))

    def show_saved_image(
        self, image: QImage, steps: int, guidance: float, styles: Iterable[tuple[str, float]] = ()
    ) -> None:
        """An image from history: its picture, settings and styles (by name), without timings."""
        self.canvas.set_placeholder("" if not image.isNull() else "image file missing")
        self.canvas.set_image(image)
        self.progress.hide()
        self.settings_line.setText(f"{steps} steps · {guidance_text(self.mode, guidance)} · seed {self.seed}")
        self._show_styles(styles)

    def _show_styles(self, styles: Iterable[tuple[str, float]]) -> None:
        text = styles_text(styles)
        self.styles_line.setText(text)
        self.styles_line.setVisible(bool(text))

    def mark_stopped(self, text: str) -> None:
        if self.result is None:
            self.progress.hide()
            self.canvas.set_placeholder(text)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mousePressEvent(event)


MIN_TILE_WIDTH = 140
MIN_CANVAS = 120
TILE_CHROME = 190  # a tile's height besides its picture: title, bars, captions, a warning


class ComparisonGrid(QScrollArea):
    """Tiles in rows of seeds and columns of modes; arrows move the selection, Enter opens it large.

    Tiles share the width equally and their pictures keep the image's aspect ratio; the rows fit the
    height when they can, and the grid scrolls when they cannot.
    """

    tile_activated = Signal(int)

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
        if not self.tiles:
            return
        spacing = self._layout.horizontalSpacing()
        viewport = self.viewport().size()
        width = max(MIN_TILE_WIDTH, (viewport.width() - spacing * (self.columns - 1)) // self.columns)
        rows = -(-len(self.tiles) // self.columns)
        row_budget = (viewport.height() - spacing * (rows - 1)) // rows - TILE_CHROME
        canvas_height = round((width - 18) * self.aspect)
        if row_budget >= MIN_CANVAS:
            canvas_height = min(canvas_height, row_budget)
        canvas_height = max(MIN_CANVAS, canvas_height)
        for tile in self.tiles:
            tile.setFixedWidth(width)
            tile.canvas.setFixedHeight(canvas_height)

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
        self.tiles[0].setToolTip(prompt)

    def show_saved_run(self, record: RunRecord) -> None:
        """A past run's images from disk; tiles of modes and seeds it did not finish say so."""
        modes = list(dict.fromkeys(image.mode for image in record.images))
        seeds = list(dict.fromkeys(image.seed for image in record.images))
        width, height = record.request.width, record.request.height
        self.prepare(modes, seeds, aspect=height / width if width and height else 1.0)
        for image in record.images:
            if (tile := self.tile(image.mode, image.seed)) is not None:
                styles = ((style.path.stem, style.weight) for style in image.styles)
                tile.show_saved_image(QImage(str(image.png)), image.steps, image.guidance, styles)
        self.mark_unfinished("not in this run")

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
        moves = {
            Qt.Key.Key_Left: (-1, 0),
            Qt.Key.Key_Right: (1, 0),
            Qt.Key.Key_Up: (0, -1),
            Qt.Key.Key_Down: (0, 1),
        }
        key = Qt.Key(event.key())
        if key in moves and self.tiles:
            self.select(self.step(*moves[key]))
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space) and self.selected >= 0:
            self.tile_activated.emit(self.selected)
            return
        super().keyPressEvent(event)
