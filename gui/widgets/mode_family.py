"""One family of the mode panel: a heading that ticks the family's present modes at once (checked,
partly checked or not), an arrow that folds it, and its modes' rows.

A family none of whose files are present is folded and says so in its heading ("files absent");
unfolding it shows what each of its modes needs.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from gui.state.mode_groups import ModeGroup
from gui.widgets.mode_row import ModeRow

NONE_PRESENT = "files absent"


class FamilyCheck(QCheckBox):
    """A tristate box the artist clicks between all and none; the partial state is shown, never chosen."""

    def nextCheckState(self) -> None:  # noqa: N802 - Qt's name
        on = self.checkState() is not Qt.CheckState.Checked
        self.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)


class FamilySection(QWidget):
    def __init__(self, group: ModeGroup, rows: Sequence[ModeRow], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.group = group
        self.rows = tuple(rows)
        self.arrow = QToolButton()
        self.arrow.setAutoRaise(True)
        self.arrow.setCheckable(True)
        self.arrow.setToolTip(f"show or hide the {group.label} modes")
        self.check = FamilyCheck(group.label)
        self.check.setObjectName("familyCheck")
        self.check.setTristate(True)
        self.check.setToolTip(f"tick or untick every {group.label} mode whose files are here")
        self.count = QLabel()
        self.count.setObjectName("modeHint")
        self.body = QWidget()
        body_layout = QVBoxLayout(self.body)
        body_layout.setContentsMargins(22, 0, 0, 0)
        body_layout.setSpacing(6)
        for row in self.rows:
            body_layout.addWidget(row)
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.setSpacing(2)
        header.addWidget(self.arrow)
        header.addWidget(self.check, 1)
        header.addWidget(self.count)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(self.body)
        self._any_present: bool | None = None
        self.arrow.toggled.connect(self.set_expanded)
        self.check.clicked.connect(self._family_clicked)
        for row in self.rows:
            row.check.toggled.connect(self.refresh)
        self.refresh()

    @property
    def expanded(self) -> bool:
        return self.arrow.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        self.arrow.setChecked(expanded)
        self.arrow.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.body.setVisible(expanded)

    def present(self) -> tuple[ModeRow, ...]:
        return tuple(row for row in self.rows if row.available)

    def refresh(self) -> None:
        """The heading after a row is ticked or its files come or go."""
        present = self.present()
        chosen = sum(row.chosen for row in present)
        if not present or chosen == 0:
            state = Qt.CheckState.Unchecked
        elif chosen == len(present):
            state = Qt.CheckState.Checked
        else:
            state = Qt.CheckState.PartiallyChecked
        self.check.setCheckState(state)
        self.check.setEnabled(bool(present))
        if present:
            self.count.setText(f"{chosen} of {len(present)}")
            self.count.setToolTip(
                f"{chosen} ticked; {len(present)} of its {len(self.rows)} modes have their files"
            )
        else:
            self.count.setText(NONE_PRESENT)
            self.count.setToolTip("none of its modes has its files here; unfold to see what each needs")
        # Folded when its last file goes, unfolded when its first comes; the artist's own folding stays.
        if self._any_present is not bool(present):
            self._any_present = bool(present)
            self.set_expanded(bool(present))

    def _family_clicked(self) -> None:
        on = self.check.checkState() is Qt.CheckState.Checked
        for row in self.present():
            row.check.setChecked(on)
        self.refresh()
