"""One tile of the comparison grid: a mode's live preview and progress while it runs, then its image
with what it cost (a bar split into text encoding, switch, denoising and decode, and the same in numbers).

Its title is never cut: it wraps where Qt may break a line (spaces, after hyphens), a piece too wide for
the tile shrinks the font a little, and the grid never makes a tile narrower than its widest piece.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping

from PySide6.QtCore import QRectF, QSize, Qt, QTextBoundaryFinder, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from engine.contract.modes import MODES, GuidanceKind
from engine.contract.request import ModeResult, Progress
from gui.widgets.images import to_qimage
from gui.widgets.theme import MUTED

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


# The title's font shrinks in these steps, no further, before the grid widens the tiles instead.
TITLE_SCALES = (1.0, 0.92, 0.85, 0.8)
# A tile's width besides its title's and its picture's: the frame's 1 px border and the layout's 8 px
# margins on each side (QFrame#tile in gui.widgets.theme, ImageTile's layout).
TILE_SIDE_CHROME = 18


def line_pieces(text: str) -> list[str]:
    """The text cut where Qt may break a line (UAX #14: spaces, after a hyphen), trailing spaces dropped:
    a word-wrapped label fits its width when every piece does."""
    finder = QTextBoundaryFinder(QTextBoundaryFinder.BoundaryType.Line, text)
    starts = [0]
    while (position := finder.toNextBoundary()) != -1:
        starts.append(position)
    pieces = (text[a:b].rstrip() for a, b in itertools.pairwise(starts))
    return [piece for piece in pieces if piece]


def widest_piece(text: str, font: QFont) -> int:
    metrics = QFontMetricsF(font)
    return math.ceil(max((metrics.horizontalAdvance(piece) for piece in line_pieces(text)), default=0.0))


class TileTitle(QLabel):
    """A tile's mode title, wrapped; its font shrinks (within TITLE_SCALES) where a piece is too wide.

    The size goes through the label's own style sheet: the theme's style sheet sets the titles' font,
    and a style sheet's font wins over QWidget.setFont at the next polish."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setObjectName("tileTitle")
        self.setWordWrap(True)
        self.setMinimumWidth(1)
        self.scale = 1.0

    def base_font(self) -> QFont:
        self.ensurePolished()
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() / self.scale)
        return font

    def scaled_font(self, scale: float) -> QFont:
        font = self.base_font()
        font.setPointSizeF(font.pointSizeF() * scale)
        return font

    def min_width(self) -> int:
        """The least width at which the title fits at its smallest font."""
        return widest_piece(self.text(), self.scaled_font(TITLE_SCALES[-1]))

    def fit(self, width: int) -> None:
        """The largest of TITLE_SCALES at which every piece of the title fits this width."""
        scale = next(
            (s for s in TITLE_SCALES if widest_piece(self.text(), self.scaled_font(s)) <= width),
            TITLE_SCALES[-1],
        )
        if scale != self.scale:
            size = self.base_font().pointSizeF() * scale
            self.scale = scale
            self.setStyleSheet("" if scale == 1.0 else f"font-size: {size:.2f}pt;")

    def needed_height(self, width: int) -> int:
        """The wrapped title's height at this width, in the font fit(width) chooses."""
        self.fit(width)
        return self.heightForWidth(width) if width > 0 else self.sizeHint().height()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        if self.width() > 1:
            self.fit(self.contentsRect().width())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.fit(self.contentsRect().width())


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
        self.title = TileTitle(short_title(mode))
        self.title.setToolTip(f"{MODES[mode].title} ({mode})")
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
        # The total ends the cost bar's row, not the title's, so that the title has the tile's whole width.
        bars = QHBoxLayout()
        bars.setSpacing(6)
        bars.addWidget(self.progress, 1, Qt.AlignmentFlag.AlignVCenter)
        bars.addWidget(self.cost_bar, 1, Qt.AlignmentFlag.AlignVCenter)
        bars.addWidget(self.total, 0, Qt.AlignmentFlag.AlignVCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addWidget(self.canvas)
        layout.addLayout(bars)
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
        eta = f" · eta {result.eta:g}" if result.eta is not None else ""
        self.settings_line.setText(
            f"{result.steps} steps · {guidance_text(result.mode, result.guidance)}{eta} · seed {result.seed}"
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
