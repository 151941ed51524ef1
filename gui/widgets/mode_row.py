"""One mode of the mode panel: its checkbox, its steps and guidance, its eta where its card passes one,
defaults from the mode's contract.

Leaving the contract is allowed (artists experiment) but said, in the row, as the engine would say it.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QWidget,
)

from engine.contract.limits import MAX_GUIDANCE, MAX_STEPS, MIN_GUIDANCE, MIN_STEPS
from engine.contract.modes import DEFAULT_COMPARISON, GuidanceKind, ModeSpec, contract_warnings
from engine.contract.request import ModeSettings

# The engine takes any eta from 0 to 1 (GenerationRequest.validate); the card's own range may be narrower,
# and leaving it is warned of, like steps and guidance.
ETA_RANGE = (0.0, 1.0)


def guidance_tooltip(spec: ModeSpec) -> str:
    if spec.guidance_kind is GuidanceKind.EMBEDDING:
        return "LCM takes guidance as an embedding: one UNet pass per step at any value."
    if spec.guidance_kind is GuidanceKind.OFF:
        return "Distilled without CFG: 0 or 1 is one UNet pass; above 1 turns CFG on (two passes)."
    return "Classifier-free guidance: above 1 each step runs the UNet twice."


def eta_tooltip(spec: ModeSpec) -> str:
    text = "eta, passed to the sampler (TCD's gamma): 0 is deterministic, higher adds noise back each step."
    if spec.eta is not None:
        text += f" The card's default is {spec.eta:g}"
        if spec.eta_range is not None:
            text += f", its range {spec.eta_range[0]:g} to {spec.eta_range[1]:g}"
        text += "."
    return text


# A zero-width space after each of these lets Qt wrap a long file name (its word wrap breaks only at
# spaces), so that a hint naming pcm_sdxl_normalcfg_<N>step_converted.safetensors stays within its
# column instead of widening the whole mode panel past the window's left column.
_BREAK_AFTER = ("_", "/", ".", "-")


_LONG_WORD = 24  # characters: about a third of the mode column at the window's narrowest


def breakable(text: str) -> str:
    """text with break points inside its long words only (file names); short words stay as they are."""

    def split(word: str) -> str:
        if len(word) <= _LONG_WORD:
            return word
        for mark in _BREAK_AFTER:
            word = word.replace(mark, mark + "\u200b")
        return word

    return " ".join(split(word) for word in text.split(" "))


class ModeRow(QWidget):
    changed = Signal()

    def __init__(self, spec: ModeSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self.file_steps: int | None = None
        self._negative_prompt = ""
        self.check = QCheckBox(spec.title)
        self.check.setChecked(spec.name in DEFAULT_COMPARISON)
        # Whether the artist wants the mode: shown as the tick while its files are present; kept while
        # they are absent (the box then unticked and disabled) so that the tick comes back with them.
        self.wanted = self.check.isChecked()
        self.check.setToolTip(spec.name)
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
        # Laid out for the modes whose card passes an eta (ModeSpec.eta); a hidden child for the rest.
        self.eta = QDoubleSpinBox(self)
        self.eta.setRange(*ETA_RANGE)
        self.eta.setSingleStep(0.05)
        self.eta.setDecimals(2)
        self.eta.setPrefix("eta ")
        self.eta.setToolTip(eta_tooltip(spec))
        if not self.takes_eta:
            self.eta.hide()
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
        if self.takes_eta:
            layout.addWidget(self.eta, 2, 0)
        layout.addWidget(self.warning, 3, 0, 1, 3)
        layout.addWidget(self.hint, 4, 0, 1, 3)
        layout.setColumnStretch(0, 1)
        layout.setColumnStretch(1, 1)
        self.reset_to_defaults()
        self.check.toggled.connect(self._edited)
        self.steps.valueChanged.connect(self._edited)
        self.guidance.valueChanged.connect(self._edited)
        self.eta.valueChanged.connect(self._edited)
        self.reset.clicked.connect(self.reset_to_defaults)
        self.set_missing(None)

    @property
    def takes_eta(self) -> bool:
        return self.spec.eta is not None

    @property
    def default_steps(self) -> int:
        return self.file_steps or self.spec.default_steps

    def reset_to_defaults(self) -> None:
        self.steps.setValue(self.default_steps)
        self.guidance.setValue(self.spec.default_guidance)
        if self.spec.eta is not None:
            self.eta.setValue(self.spec.eta)
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
        available, was = hint is None, self.available
        if was and not available:
            self.wanted = self.check.isChecked()
        for widget in (self.check, self.steps, self.guidance, self.eta, self.reset):
            widget.setEnabled(available)
        if available is not was:
            self.check.setChecked(available and self.wanted)
        self.hint.setText(breakable(hint or ""))
        self.hint.setVisible(not available)
        self._refresh_warning()

    @property
    def available(self) -> bool:
        return self.check.isEnabled()

    @property
    def chosen(self) -> bool:
        return self.available and self.check.isChecked()

    def set_ticked(self, ticked: bool) -> None:
        """Tick or untick it; a mode whose files are absent stays unticked until they come."""
        self.wanted = ticked
        if self.available:
            self.check.setChecked(ticked)

    def settings(self) -> ModeSettings:
        return ModeSettings(
            mode=self.spec.name,
            steps=self.steps.value(),
            guidance=self.guidance.value(),
            eta=self.eta.value() if self.takes_eta else None,
        )

    def apply(
        self, *, steps: int | None = None, guidance: float | None = None, eta: float | None = None
    ) -> None:
        if steps is not None:
            self.steps.setValue(steps)
        if guidance is not None:
            self.guidance.setValue(guidance)
        if eta is not None and self.takes_eta:
            self.eta.setValue(eta)

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
            eta=self.eta.value() if self.takes_eta else None,
        )

    def _edited(self) -> None:
        self._refresh_warning()
        self.changed.emit()

    def _refresh_warning(self) -> None:
        prefix = f"{self.spec.name}: "
        lines = [w.removeprefix(prefix) for w in self.warnings()] if self.chosen else []
        self.warning.setText("\n".join(f"⚠ {line}" for line in lines))
        self.warning.setVisible(bool(lines))
