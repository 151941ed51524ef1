"""One tile of the comparison grid: a mode's live preview and progress while it runs, then its image
with what it cost (a bar split into text encoding, switch, denoising and decode, and the same in numbers).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent
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
