"""The trilemma panel under the grid: one row per mode (speed, fidelity, detail, diversity) and a small
chart that puts the legs side by side, filled as tiles finish.

The numbers come from gui.state.trilemma_meter, measured off the GUI thread; this module only shows them.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.contract.modes import MODES
from engine.outputs.trilemma import EXPLANATIONS, METRIC_KEYS, Trilemma, TrilemmaRow, format_value
from gui.widgets.image_tile import short_title
from gui.widgets.theme import MUTED

MODE_COLORS = {
    "ddim": "#c9ccd1",
    "lcm": "#e07b39",
    "lcm-lora": "#f0b43c",
    "lightning": "#4c8dff",
    "lightning-lora": "#8e7cc3",
    "euler": "#45b38a",
    "dpmpp-2m": "#d66ba0",
}
HEADERS = {
    "seconds_per_image": "s / image",
    "speed_up": "speed-up",
    "ssim_to_reference": "SSIM",
    "psnr_to_reference": "PSNR dB",
    "detail_ratio": "detail",
    "diversity_ratio": "diversity",
}
# The chart's legs: (title, metric, the value the reference reads, or None where the scale is relative).
LEGS: tuple[tuple[str, str, float | None], ...] = (
    ("Speed", "speed_up", None),
    ("Fidelity", "ssim_to_reference", 1.0),
    ("Detail", "detail_ratio", 1.0),
    ("Diversity", "diversity_ratio", 1.0),
)
RATIO_CEILING = 2.0  # detail and diversity bars reach the top at twice the reference


def mode_color(mode: str) -> QColor:
    return QColor(MODE_COLORS.get(mode, "#9aa0a8"))


def bar_fraction(key: str, value: float | None, rows: Sequence[TrilemmaRow]) -> float | None:
    """How much of a leg's height one mode's bar fills: speed-up against the fastest mode, SSIM as it
    is (0 to 1), detail and diversity against twice the reference's (so the reference sits halfway)."""
    if value is None:
        return None
    if key == "speed_up":
        fastest = max((r.speed_up for r in rows if r.speed_up is not None), default=None)
        return value / fastest if fastest else None
    if key == "ssim_to_reference":
        return max(0.0, min(1.0, value))
    return max(0.0, min(1.0, value / RATIO_CEILING))


class TrilemmaChart(QWidget):
    """Four legs, one bar per mode in each; a dashed line marks where the reference sits."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: tuple[TrilemmaRow, ...] = ()
        self.reference = ""
        self.setMinimumSize(260, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip(
            "Bars per leg, one per mode. Speed: against the fastest mode. Fidelity: SSIM, 1 at the top."
            " Detail and diversity: the dashed line is the reference, the top twice it."
        )

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(340, 150)

    def set_rows(self, rows: tuple[TrilemmaRow, ...], reference: str) -> None:
        self.rows, self.reference = rows, reference
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#1a1b1e"))
        label_height = 18
        plot = QRectF(6, 6, self.width() - 12, self.height() - 12 - label_height)
        leg_width = plot.width() / len(LEGS)
        count = max(1, len(self.rows))
        for index, (title, key, reference_at) in enumerate(LEGS):
            left = plot.left() + index * leg_width
            inner = QRectF(left + 6, plot.top(), leg_width - 12, plot.height())
            painter.fillRect(inner, QColor("#222428"))
            bar_width = inner.width() / count
            for position, row in enumerate(self.rows):
                fraction = bar_fraction(key, row.value(key), self.rows)
                if fraction is None:
                    continue
                height = inner.height() * fraction
                bar = QRectF(
                    inner.left() + position * bar_width + 1, inner.bottom() - height, bar_width - 2, height
                )
                painter.fillRect(bar, mode_color(row.mode))
            if reference_at is not None and self.rows:
                level = reference_at if key == "ssim_to_reference" else reference_at / RATIO_CEILING
                y = inner.bottom() - inner.height() * level
                painter.setPen(QPen(QColor("#e6e6e6"), 1, Qt.PenStyle.DashLine))
                painter.drawLine(int(inner.left()), int(y), int(inner.right()), int(y))
            painter.setPen(QColor(MUTED))
            painter.drawText(
                QRectF(left, plot.bottom() + 2, leg_width, label_height),
                Qt.AlignmentFlag.AlignCenter,
                title,
            )
        painter.end()


class TrilemmaPanel(QWidget):
    """The table and the chart; empty until a comparison runs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trilemmaPanel")
        self.title = QLabel("Trilemma: speed · fidelity · detail · diversity")
        self.title.setObjectName("tileTitle")
        self.note = QLabel("Generate a comparison to measure each mode against the reference.")
        self.note.setObjectName("tileCaption")
        self.note.setWordWrap(True)
        self.table = QTableWidget(0, 1 + len(METRIC_KEYS))
        self.table.setHorizontalHeaderLabels(["mode", *(HEADERS[k] for k in METRIC_KEYS)])
        tips = [
            "Proxies measured from the pixels, not perceptual scores: they tell where modes differ,"
            " not which picture an artist would prefer.",
            *(EXPLANATIONS[key] for key in METRIC_KEYS),
        ]
        for column, tip in enumerate(tips):
            if (header_item := self.table.horizontalHeaderItem(column)) is not None:
                header_item.setToolTip(tip)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)  # five modes fit without scrolling
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, 1 + len(METRIC_KEYS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.chart = TrilemmaChart()
        self.modes: tuple[str, ...] = ()
        self.trilemma: Trilemma | None = None
        body = QHBoxLayout()
        body.addWidget(self.table, 3)
        body.addWidget(self.chart, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.note)
        layout.addLayout(body, 1)

    def prepare(self, modes: Sequence[str]) -> None:
        """Rows for a new comparison, before any image."""
        self.modes = tuple(modes)
        self.trilemma = None
        self.table.setRowCount(len(self.modes))
        for row, mode in enumerate(self.modes):
            self._set(row, 0, short_title(mode), mode=mode)
            for column in range(1, 1 + len(METRIC_KEYS)):
                self._set(row, column, "…")
        self.chart.set_rows((), "")
        self.note.setText("Measuring as the tiles finish…")

    def clear(self, text: str) -> None:
        self.modes, self.trilemma = (), None
        self.table.setRowCount(0)
        self.chart.set_rows((), "")
        self.note.setText(text)

    def show_trilemma(self, trilemma: Trilemma) -> None:
        if tuple(r.mode for r in trilemma.rows) != self.modes:
            self.prepare([r.mode for r in trilemma.rows])
        self.trilemma = trilemma
        for row, values in enumerate(trilemma.rows):
            for column, key in enumerate(METRIC_KEYS, start=1):
                value = values.value(key)
                waiting = values.images == 0 or (value is None and key != "diversity_ratio")
                text = format_value(key, value)
                if key == "psnr_to_reference" and values.mode == trilemma.reference and values.images:
                    text = "ref"
                self._set(row, column, "…" if waiting and text == "-" else text)
            title = short_title(values.mode) + (" (ref)" if values.mode == trilemma.reference else "")
            # A LoRA mode says how it ran: unfused, its speed is that route's, not the method's.
            title += f" ({values.lora_route})" if values.lora_route else ""
            self._set(row, 0, title, mode=values.mode)
            if values.lora_route == "unfused":
                self._speed_note(row)
        self.chart.set_rows(trilemma.rows, trilemma.reference)
        seeds = len(trilemma.seeds)
        spread = "" if seeds > 1 else "; diversity needs 2 or more seeds"
        self.note.setText(
            f"Reference: {trilemma.reference_reason}. {seeds} seed{'s' * (seeds != 1)}{spread}."
        )

    def _speed_note(self, row: int) -> None:
        for key in ("seconds_per_image", "speed_up"):
            item = self.table.item(row, 1 + METRIC_KEYS.index(key))
            if item is not None:
                item.setToolTip(
                    "This LoRA ran unfused (it did not fit beside the base UNet, or the LoRA route in"
                    " Settings says unfused): its speed is that route's, not the method's."
                )

    def title_at(self, mode: str) -> str:
        """The mode's title as the table shows it (for tests and screenshots)."""
        item = self.table.item(self.modes.index(mode), 0)
        return item.text() if item is not None else ""

    def text_at(self, mode: str, key: str) -> str:
        """What the table shows for a mode and a metric (for tests and screenshots)."""
        item = self.table.item(self.modes.index(mode), 1 + METRIC_KEYS.index(key))
        return item.text() if item is not None else ""

    def _set(self, row: int, column: int, text: str, *, mode: str | None = None) -> None:
        item = QTableWidgetItem(text)
        if column:
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setToolTip(EXPLANATIONS[METRIC_KEYS[column - 1]])
        if mode is not None:
            item.setForeground(mode_color(mode))
            item.setToolTip(MODES[mode].title)
        self.table.setItem(row, column, item)
