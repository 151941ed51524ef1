"""Model files, output folder and device; each path is checked the moment it is given.

Checks read only names and safetensors headers (engine.model_files), never weights, so they are instant.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import FewstepError
from engine.model_files import check_role
from engine.modes import DEFAULT_COMPARISON, MODES, ModelRole
from gui.model_setup import ROLE_HINTS, ROLE_TITLES
from gui.settings import DEVICES, Settings, default_output_dir
from gui.theme import ERROR, MUTED

FOLDER_ROLES = (ModelRole.BASE, ModelRole.LCM_UNET)  # diffusers folders; the others are single files
BROWSE_WIDTH = 90


def check_output_dir(text: str) -> str | None:
    """None when the folder can be used (it is created on the first save), else why not."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a folder"
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not os.access(existing, os.W_OK):
        return f"cannot write to {existing or path}"
    return None


class PathRow(QWidget):
    """A path, its browse buttons and what the check found."""

    def __init__(self, role: ModelRole, path: Path | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self.edit = QLineEdit(str(path) if path else "")
        self.edit.setPlaceholderText(ROLE_HINTS[role])
        self.edit.setClearButtonEnabled(True)
        self.browse = QPushButton("Folder…" if role in FOLDER_ROLES else "File…")
        self.browse.setFixedWidth(BROWSE_WIDTH)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.error: str | None = None
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self.edit.textChanged.connect(self.check)
        self.browse.clicked.connect(self._browse)
        self.check()

    def path(self) -> Path | None:
        text = self.edit.text().strip()
        return Path(text).expanduser() if text else None

    def check(self) -> None:
        path = self.path()
        if path is None:
            self.error = None
            self._say("not set", MUTED)
            return
        try:
            info = check_role(self.role, path)
        except FewstepError as exc:
            self.error = str(exc)
            self._say(f"✗ {exc}", ERROR)
            return
        self.error = None
        steps = f", {info.lightning_steps} steps" if info.lightning_steps else ""
        self._say(f"✓ {info.kind}{steps}", "#45b38a")

    def _say(self, text: str, color: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(f"color: {color};")

    def _browse(self) -> None:
        start = str(self.path() or Path.home())
        if self.role in FOLDER_ROLES:
            chosen = QFileDialog.getExistingDirectory(self, f"{ROLE_TITLES[self.role]} folder", start)
        else:
            chosen, _ = QFileDialog.getOpenFileName(
                self, f"{ROLE_TITLES[self.role]} file", start, "safetensors (*.safetensors)"
            )
        if chosen:
            self.edit.setText(chosen)


def needs_table() -> str:
    lines = []
    for name in DEFAULT_COMPARISON:
        spec = MODES[name]
        lines.append(f"{spec.title}: " + " + ".join(ROLE_TITLES[r] for r in spec.required_roles))
    return "\n".join(lines)


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fewstep settings")
        self.setMinimumWidth(640)
        self.original = settings
        self.rows = {role: PathRow(role, settings.model_paths.get(role)) for role in ModelRole}
        models = QGroupBox("Model files")
        grid = QGridLayout(models)
        for index, (role, row) in enumerate(self.rows.items()):
            grid.addWidget(QLabel(ROLE_TITLES[role]), index, 0)
            grid.addWidget(row, index, 1)
        grid.setColumnStretch(1, 1)
        needs = QLabel(
            "Leave the SDXL base empty to use the built-in tiny model (untrained: noise, for trying"
            " the modes).\nWhat each mode needs:\n" + needs_table()
        )
        needs.setObjectName("tileCaption")
        needs.setWordWrap(True)
        grid.addWidget(needs, len(self.rows), 0, 1, 2)

        output = QGroupBox("Output")
        output_layout = QGridLayout(output)
        self.output_dir = QLineEdit(str(settings.output_dir) if settings.output_dir else "")
        self.output_dir.setPlaceholderText(str(default_output_dir()))
        self.output_browse = QPushButton("Folder…")
        self.output_browse.setFixedWidth(BROWSE_WIDTH)
        self.output_status = QLabel()
        self.output_status.setWordWrap(True)
        output_layout.addWidget(QLabel("Images"), 0, 0)
        output_layout.addWidget(self.output_dir, 0, 1)
        output_layout.addWidget(self.output_browse, 0, 2)
        output_layout.addWidget(self.output_status, 1, 1, 1, 2)
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        if self.device.findText(settings.device) < 0:
            self.device.addItem(settings.device)
        self.device.setCurrentText(settings.device)
        output_layout.addWidget(QLabel("Device"), 2, 0)
        output_layout.addWidget(self.device, 2, 1)
        output_layout.setColumnStretch(1, 1)

        self.problem = QLabel()
        self.problem.setStyleSheet(f"color: {ERROR};")
        self.problem.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        layout = QVBoxLayout(self)
        layout.addWidget(models)
        layout.addWidget(output)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.output_dir.textChanged.connect(self._check_output)
        self.output_browse.clicked.connect(self._browse_output)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._check_output()

    def _check_output(self) -> None:
        text = self.output_dir.text().strip()
        problem = check_output_dir(text) if text else None
        shown = text or str(default_output_dir())
        self.output_status.setText(f"✗ {problem}" if problem else f"saved to {shown}")
        self.output_status.setStyleSheet(f"color: {ERROR if problem else MUTED};")

    def _browse_output(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Output folder", self.output_dir.text())
        if chosen:
            self.output_dir.setText(chosen)

    def problems(self) -> list[str]:
        found = [f"{ROLE_TITLES[role]}: {row.error}" for role, row in self.rows.items() if row.error]
        text = self.output_dir.text().strip()
        if text and (problem := check_output_dir(text)):
            found.append(f"Output folder: {problem}")
        return found

    def accept(self) -> None:
        if problems := self.problems():
            self.problem.setText("Fix or clear these first:\n" + "\n".join(problems))
            return
        super().accept()

    def chosen_settings(self) -> Settings:
        paths = {role: path for role, row in self.rows.items() if (path := row.path()) is not None}
        text = self.output_dir.text().strip()
        return replace(
            self.original,
            model_paths=paths,
            output_dir=Path(text).expanduser() if text else None,
            device=self.device.currentText(),
        )
