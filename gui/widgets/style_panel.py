"""The artist's style LoRAs: a checkbox and a weight each.

The engine loads every listed style once; a toggle or a weight only changes the next request's
style weights, so it reloads nothing. Adding or removing a style changes what the engine loads.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.contract.limits import STYLE_WEIGHT_RANGE
from gui.state.settings import StyleSetting


class StyleRow(QWidget):
    changed = Signal()
    remove_requested = Signal()

    def __init__(self, style: StyleSetting, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = style.path
        self.check = QCheckBox(style.path.stem)
        self.check.setChecked(style.enabled)
        self.check.setToolTip(str(style.path))
        self.weight = QDoubleSpinBox()
        self.weight.setRange(*STYLE_WEIGHT_RANGE)
        self.weight.setSingleStep(0.05)
        self.weight.setDecimals(2)
        self.weight.setValue(style.weight)
        self.weight.setToolTip("the LoRA's strength; 0 is as if it were off")
        self.remove = QToolButton()
        self.remove.setText("✕")
        self.remove.setToolTip("remove from the list (the engine reloads without it)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.check, 1)
        layout.addWidget(self.weight)
        layout.addWidget(self.remove)
        self.check.toggled.connect(self._toggled)
        self.weight.valueChanged.connect(self.changed)
        self.remove.clicked.connect(self.remove_requested)
        self._toggled(style.enabled)

    def _toggled(self, on: bool) -> None:
        self.weight.setEnabled(on)
        self.changed.emit()

    def setting(self) -> StyleSetting:
        return StyleSetting(path=self.path, weight=self.weight.value(), enabled=self.check.isChecked())


class StylePanel(QWidget):
    changed = Signal()  # a toggle or a weight: only the request changes
    remove_requested = Signal(int)  # the style's index
    add_requested = Signal(object)  # Path of a file the artist picked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[StyleRow] = []
        self._inactive: str | None = None
        self._rows_layout = QVBoxLayout()
        self._rows_layout.setContentsMargins(0, 0, 0, 0)
        self._rows_layout.setSpacing(4)
        self.note = QLabel()
        self.note.setObjectName("modeHint")
        self.note.setWordWrap(True)
        self.add_button = QPushButton("Add…")
        self.add_button.setToolTip("add an SDXL LoRA file (or right-click one in the Models tab)")
        bottom = QHBoxLayout()
        bottom.addWidget(self.note, 1)
        bottom.addWidget(self.add_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._rows_layout)
        layout.addLayout(bottom)
        self.add_button.clicked.connect(self._browse)
        self.set_styles(())

    def set_styles(self, styles: tuple[StyleSetting, ...]) -> None:
        """Show this list (when it differs from the one shown), without emitting changed."""
        if tuple(row.setting() for row in self.rows) == styles:
            return
        for row in self.rows:
            self._rows_layout.removeWidget(row)
            row.deleteLater()
        self.rows = []
        for index, style in enumerate(styles):
            row = StyleRow(style)
            row.changed.connect(self.changed)
            row.remove_requested.connect(lambda i=index: self.remove_requested.emit(i))
            self._rows_layout.addWidget(row)
            self.rows.append(row)
        self._refresh_note()

    def styles(self) -> tuple[StyleSetting, ...]:
        return tuple(row.setting() for row in self.rows)

    def set_inactive_reason(self, reason: str | None) -> None:
        """Why the styles are not applied now (the built-in model), or None."""
        self._inactive = reason
        self._refresh_note()

    def _refresh_note(self) -> None:
        if self._inactive:
            self.note.setText(self._inactive)
        elif not self.rows:
            self.note.setText("No style LoRAs.")
        else:
            self.note.setText("Toggles and weights apply at once, without reloading.")

    def _browse(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(
            self, "Style LoRA", str(Path.home()), "safetensors (*.safetensors)"
        )
        if chosen:
            self.add_requested.emit(Path(chosen))
