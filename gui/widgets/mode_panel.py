"""The modes to compare, grouped by family (gui.widgets.mode_family), each row a checkbox with its steps,
guidance and eta (gui.widgets.mode_row); presets tick a set of modes at once.

Only modes whose files are present can be ticked: a preset ticks those and says which it skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QToolButton, QVBoxLayout, QWidget

from engine.contract.modes import MODES
from engine.contract.request import ModeSettings
from gui.state.mode_groups import (
    PRESET_LABELS,
    PRESET_TIPS,
    Preset,
    PresetChoice,
    choose_preset,
    mode_groups,
    preset_note,
)
from gui.widgets.mode_family import FamilySection
from gui.widgets.mode_row import ModeRow


class ModePanel(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: dict[str, ModeRow] = {}
        self.sections: dict[str, FamilySection] = {}
        self.presets = QToolButton()
        self.presets.setText("Presets")
        self.presets.setToolTip("tick a set of modes at once; modes whose files are absent are skipped")
        self.presets.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.presets)
        self.preset_actions: dict[Preset, QAction] = {}
        for preset in Preset:
            action = menu.addAction(PRESET_LABELS[preset])
            action.setToolTip(PRESET_TIPS[preset])
            action.triggered.connect(lambda _checked=False, preset=preset: self.apply_preset(preset))
            self.preset_actions[preset] = action
        menu.setToolTipsVisible(True)
        self.presets.setMenu(menu)
        self.preset_note = QLabel()
        self.preset_note.setObjectName("modeHint")
        self.preset_note.setWordWrap(True)
        self.preset_note.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        top = QHBoxLayout()
        top.addWidget(self.presets)
        top.addStretch(1)
        layout.addLayout(top)
        layout.addWidget(self.preset_note)
        for group in mode_groups(MODES.values()):
            rows = []
            for name in group.modes:
                row = ModeRow(MODES[name])
                row.changed.connect(self.changed)
                self.rows[name] = row
                rows.append(row)
            section = FamilySection(group, rows)
            self.sections[group.key] = section
            layout.addWidget(section)
        layout.addStretch(1)

    def set_missing(self, hints: Mapping[str, str | None]) -> None:
        for mode, row in self.rows.items():
            row.set_missing(hints.get(mode))
        for section in self.sections.values():
            section.refresh()

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
            row.set_ticked(mode in wanted)

    def apply(
        self, mode: str, *, steps: int | None, guidance: float | None, eta: float | None = None
    ) -> None:
        self.rows[mode].apply(steps=steps, guidance=guidance, eta=eta)

    def available_modes(self) -> tuple[str, ...]:
        return tuple(mode for mode, row in self.rows.items() if row.available)

    def apply_preset(self, preset: Preset) -> PresetChoice:
        """Tick the preset's modes whose files are present, and only them; the note says what was skipped.

        A preset none of whose own modes is present leaves the choice as it was."""
        specs = {name: row.spec for name, row in self.rows.items()}
        choice = choose_preset(
            preset, specs, lambda mode: self.rows[mode].default_steps, self.available_modes()
        )
        if not choice.empty:
            self.set_checked(choice.ticked)
        self.preset_note.setText(preset_note(choice, {name: spec.title for name, spec in specs.items()}))
        self.preset_note.show()
        return choice
