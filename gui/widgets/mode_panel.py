"""The modes to compare: a checkbox, steps and guidance per mode, defaults from the mode's contract.

Leaving the contract is allowed (artists experiment) but said, in the row, as the engine would say it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.contract.limits import MAX_GUIDANCE, MAX_STEPS, MIN_GUIDANCE, MIN_STEPS
from engine.contract.modes import DEFAULT_COMPARISON, MODES, GuidanceKind, ModeSpec, contract_warnings
from engine.contract.request import ModeSettings


def guidance_tooltip(spec: ModeSpec) -> str:
    if spec.guidance_kind is GuidanceKind.EMBEDDING:
        return "LCM takes guidance as an embedding: one UNet pass per step at any value."
    if spec.guidance_kind is GuidanceKind.OFF:
        return "Distilled without CFG: 0 or 1 is one UNet pass; above 1 turns CFG on (two passes)."
    return "Classifier-free guidance: above 1 each step runs the UNet twice."


class ModeRow(QWidget):
    changed = Signal()

    def __init__(self, spec: ModeSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self.file_steps: int | None = None
        self._negative_prompt = ""
        self.check = QCheckBox(spec.title)
        self.check.setChecked(spec.name in DEFAULT_COMPARISON)
        self.steps = QSpinBox()
        self.steps.setRange(MIN_STEPS, MAX_STEPS)
        self.steps.setPrefix("steps ")
        self.steps.setToolTip(f"usual range {spec.recommended_steps[0]} to {spec.recommended_steps[1]}")
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(MIN_GUIDANCE, MAX_GUIDANCE)
        self.guidance.setSingleStep(0.5)
        self.guidance.setDecimals(1)
        self.guidance.setPrefix("CFG " if spec.guidance_kind is not GuidanceKind.EMBEDDING else "w ")
        self.guidance.setToolTip(guidance_tooltip(spec))
        self.reset = QPushButton("Reset")
        self.reset.setToolTip("back to the mode's defaults")
        self.warning = QLabel()
        self.warning.setObjectName("modeWarning")
        self.warning.setWordWrap(True)
        self.hint = QLabel()
        self.hint.setObjectName("modeHint")
        self.hint.setWordWrap(True)
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 2, 0, 2)
        layout.setHorizontalSpacing(6)
        layout.setVerticalSpacing(2)
        layout.addWidget(self.check, 0, 0, 1, 3)
        layout.addWidget(self.steps, 1, 0)
        layout.addWidget(self.guidance, 1, 1)
        layout.addWidget(self.reset, 1, 2)
        layout.addWidget(self.warning, 2, 0, 1, 3)
        layout.addWidget(self.hint, 3, 0, 1, 3)
        layout.setColumnStretch(0, 1)
        layout.setColumnStretch(1, 1)
        self.reset_to_defaults()
        self.check.toggled.connect(self._edited)
        self.steps.valueChanged.connect(self._edited)
        self.guidance.valueChanged.connect(self._edited)
        self.reset.clicked.connect(self.reset_to_defaults)
        self.set_missing(None)

    @property
    def default_steps(self) -> int:
        return self.file_steps or self.spec.default_steps

    def reset_to_defaults(self) -> None:
        self.steps.setValue(self.default_steps)
        self.guidance.setValue(self.spec.default_guidance)
        self._edited()

    def set_file_steps(self, steps: int | None) -> None:
        """A Lightning file's own step count becomes the default; a row left at the old default follows."""
        follows = self.steps.value() == self.default_steps
        self.file_steps = steps
        if follows:
            self.steps.setValue(self.default_steps)
        self._refresh_warning()

    def set_missing(self, hint: str | None) -> None:
        """hint: why the mode cannot run here (None when its files are configured)."""
        available = hint is None
        for widget in (self.check, self.steps, self.guidance, self.reset):
            widget.setEnabled(available)
        self.hint.setText(hint or "")
        self.hint.setVisible(not available)
        self._refresh_warning()

    @property
    def available(self) -> bool:
        return self.check.isEnabled()

    @property
    def chosen(self) -> bool:
        return self.available and self.check.isChecked()

    def settings(self) -> ModeSettings:
        return ModeSettings(mode=self.spec.name, steps=self.steps.value(), guidance=self.guidance.value())

    def apply(self, *, steps: int | None = None, guidance: float | None = None) -> None:
        if steps is not None:
            self.steps.setValue(steps)
        if guidance is not None:
            self.guidance.setValue(guidance)

    def set_negative_prompt(self, text: str) -> None:
        self._negative_prompt = text
        self._refresh_warning()

    def warnings(self) -> tuple[str, ...]:
        return contract_warnings(
            self.spec,
            steps=self.steps.value(),
            guidance=self.guidance.value(),
            negative_prompt=self._negative_prompt,
            file_steps=self.file_steps,
        )

    def _edited(self) -> None:
        self._refresh_warning()
        self.changed.emit()

    def _refresh_warning(self) -> None:
        prefix = f"{self.spec.name}: "
        lines = [w.removeprefix(prefix) for w in self.warnings()] if self.chosen else []
        self.warning.setText("\n".join(f"⚠ {line}" for line in lines))
        self.warning.setVisible(bool(lines))


class ModePanel(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: dict[str, ModeRow] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        for spec in MODES.values():
            row = ModeRow(spec)
            row.changed.connect(self.changed)
            self.rows[spec.name] = row
            layout.addWidget(row)
        layout.addStretch(1)

    def set_missing(self, hints: Mapping[str, str | None]) -> None:
        for mode, row in self.rows.items():
            row.set_missing(hints.get(mode))

    def set_file_steps(self, steps: Mapping[str, int | None]) -> None:
        for mode, row in self.rows.items():
            if row.spec.steps_fixed_by_file:
                row.set_file_steps(steps.get(mode))

    def set_negative_prompt(self, text: str) -> None:
        for row in self.rows.values():
            row.set_negative_prompt(text)

    def chosen(self) -> tuple[ModeSettings, ...]:
        return tuple(row.settings() for row in self.rows.values() if row.chosen)

    def settings_for(self, mode: str) -> ModeSettings:
        return self.rows[mode].settings()

    def set_checked(self, modes: Iterable[str]) -> None:
        wanted = set(modes)
        for mode, row in self.rows.items():
            row.check.setChecked(mode in wanted)

    def apply(self, mode: str, *, steps: int | None, guidance: float | None) -> None:
        self.rows[mode].apply(steps=steps, guidance=guidance)

    def available_modes(self) -> tuple[str, ...]:
        return tuple(mode for mode, row in self.rows.items() if row.available)
