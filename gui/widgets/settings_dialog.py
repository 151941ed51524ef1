"""Model files, VAE, folders, device and residency; each path is checked the moment it is given.

Checks read only names and safetensors headers (engine.files.model_files), never weights, so they take
milliseconds on a local disk. They still run on a pool thread: a file on a slow or hung network share
blocks its reader for as long as the share does, and the dialog must stay usable meanwhile.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from engine.contract.modes import MODES, ModeFile, ModelRole
from engine.contract.placement import LoraRoute
from engine.contract.residency import Residency
from engine.files.model_files import ModelFile
from engine.files.safe_paths import output_problem, special_file_problem
from gui.state.background import Background
from gui.state.model_setup import Use, assignable_roles, checked_use, role_hint, role_title
from gui.state.settings import DEVICES, Settings, default_models_dir, default_output_dir
from gui.widgets.theme import ERROR, MUTED, OK

# What the browse buttons offer: (folders, files). The base and the VAE come either way.
BROWSE: dict[Use, tuple[bool, bool]] = {
    Use.BASE: (True, True),
    Use.LCM_UNET: (True, False),
    Use.VAE: (True, True),
}
BROWSE_WIDTH = 80
# Roles of the field and of a user's modes: by the kind of file their mode declares.
BROWSE_BY_FILE: dict[ModeFile, tuple[bool, bool]] = {
    ModeFile.UNET: (True, True),
    ModeFile.PIPELINE: (True, True),
    ModeFile.LORA: (False, True),
}
# More rows than this scroll inside the dialog's "Model files" box (the field has a dozen roles).
VISIBLE_MODEL_ROWS = 7
VAE_HINT = "optional, e.g. the sdxl-vae-fp16-fix folder"
# Typing waits this long before its path is checked: one header read per pause, not one per key, since
# the reads of a dialog queue on its one pool thread (behind a hung one, if a share hangs).
CHECK_DELAY_MS = 150
RESIDENCY_NOTES = {
    Residency.AUTO: "every part on the device if they fit in its free memory; else what does not fit waits in CPU RAM, or on the CPU on disk (the Models tab shows the plan)",
    Residency.ALL: "the full distilled UNets stay on the device (on the CPU: in RAM): switching modes costs nothing",
    Residency.ONE: "one full distilled UNet on the device at a time: less memory, each switch copies one (on the CPU: reads it from its file)",
}


def check_models_dir(text: str) -> str | None:
    """None when the folder can be scanned (a missing one is created), else why not."""
    path = Path(text).expanduser()
    if problem := special_file_problem(path):
        return problem
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a folder"
    return None


def check_output_dir(text: str) -> str | None:
    """None when the folder can be used (it is created on the first save), else why not: the CLI's
    own check of --out (not under a file, /proc or /sys, names of 255 bytes at most, writable)."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a folder"
    return output_problem(path, what="the output folder")


class PathRow(QWidget):
    """A path, its browse buttons and what the check found (the check runs on `checks`' pool thread)."""

    checked = Signal()  # the newest check's answer is shown (or the path was cleared)

    def __init__(
        self, use: Use, path: Path | None, checks: Background, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.use = use
        self._checks = checks
        self._asked = 0  # the newest check; an older one's answer is dropped
        self.pending = False  # a check whose answer is not shown yet: `error` is not known
        self._delay = QTimer(self)
        self._delay.setSingleShot(True)
        self._delay.setInterval(CHECK_DELAY_MS)
        self._delay.timeout.connect(self._submit)
        self.edit = QLineEdit(str(path) if path else "")
        self.edit.setPlaceholderText(role_hint(use.role) if use.role is not None else VAE_HINT)
        self.edit.setClearButtonEnabled(True)
        by_file = BROWSE_BY_FILE.get(MODES.role_files().get(use.role or "", ModeFile.NONE), (False, True))
        folders, files = BROWSE.get(use, by_file)
        self.browse_folder = QPushButton("Folder…") if folders else None
        self.browse_file = QPushButton("File…") if files else None
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.error: str | None = None
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        buttons = QWidget()
        buttons.setFixedWidth(2 * BROWSE_WIDTH + 6)  # the edits line up whatever the buttons
        button_row = QHBoxLayout(buttons)
        button_row.setContentsMargins(0, 0, 0, 0)
        button_row.setSpacing(6)
        button_row.addStretch(1)
        for button in (self.browse_folder, self.browse_file):
            if button is not None:
                button.setFixedWidth(BROWSE_WIDTH)
                button_row.addWidget(button)
        row.addWidget(buttons)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self.edit.textChanged.connect(lambda: self.check(delay=True))
        if self.browse_folder is not None:
            self.browse_folder.clicked.connect(lambda: self._browse(folder=True))
        if self.browse_file is not None:
            self.browse_file.clicked.connect(lambda: self._browse(folder=False))
        self.check()

    def path(self) -> Path | None:
        text = self.edit.text().strip()
        return Path(text).expanduser() if text else None

    def check(self, *, delay: bool = False) -> None:
        """Check the path (after a pause in typing with delay); returns at once, the answer follows."""
        self._asked += 1
        self._delay.stop()
        self.error = None
        if self.path() is None:
            self.pending = False
            self._say("not set", MUTED)
            self.checked.emit()
            return
        self.pending = True
        self._say("checking…", MUTED)
        if delay:
            self._delay.start()
        else:
            self._submit()

    def _submit(self) -> None:
        path = self.path()
        if path is None:  # cannot be: clearing the text stops the delay
            return
        use = self.use
        asked = self._asked
        self._checks.submit(
            lambda: checked_use(use, path),
            lambda answer: self._answer(asked, answer),
            lambda exc: self._answer(asked, exc),
        )

    def _answer(self, asked: int, answer: ModelFile | Exception) -> None:
        if asked != self._asked:
            return  # the path changed since (or was cleared): a newer check answers
        self.pending = False
        if isinstance(answer, Exception):
            self.error = str(answer)
            self._say(f"✗ {answer}", ERROR)
        else:
            steps = answer.lightning_steps or answer.steps
            self._say(f"✓ {answer.label or answer.kind}" + (f", {steps} steps" if steps else ""), OK)
        self.checked.emit()

    def _say(self, text: str, color: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(f"color: {color};")

    def _browse(self, *, folder: bool) -> None:
        start = str(self.path() or Path.home())
        if folder:
            chosen = QFileDialog.getExistingDirectory(self, f"{self.use.label} folder", start)
        else:
            chosen, _ = QFileDialog.getOpenFileName(
                self, f"{self.use.label} file", start, "safetensors (*.safetensors)"
            )
        if chosen:
            self.edit.setText(chosen)


def needs_table() -> str:
    """What the loaded modes (the field's and a user's too) need beyond the SDXL base, which all need.
    Most need one file whose row's title is inside the mode's ("SDXL + TCD LoRA" needs "TCD LoRA");
    only the modes for which that does not hold are spelt out, so that twenty modes take three lines."""
    bare: list[str] = []
    named: list[str] = []  # examples: modes whose title says more than their file's
    one_file = False
    unlike: list[str] = []
    for name in MODES:
        spec = MODES[name]
        extra = [role_title(r) for r in spec.required_roles if r != ModelRole.BASE]
        if not extra:
            bare.append(spec.title)
        elif len(extra) == 1 and extra[0] in spec.title:
            one_file = True
            if spec.title != extra[0]:
                named.append(f"{spec.title}: the {extra[0]} row")
        else:
            unlike.append(f"{spec.title} needs {' + '.join(extra)}.")
    lines = ["Every mode needs the SDXL base."]
    if bare:
        lines.append(f"{_listed(bare)} {'needs' if len(bare) == 1 else 'need'} nothing more.")
    if one_file:
        example = f" (e.g. {named[0]})" if named else ""
        lines.append(f"Each other mode needs the one file its title names{example}.")
    return "\n".join(lines + unlike)


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fewstep settings")
        self.setMinimumWidth(640)
        self.original = settings
        # One pool thread for the dialog's header reads; shut down when the dialog closes (done()).
        self.checks = Background(self)
        self._save_when_checked = False
        # A row for every role of the loaded modes: the five first ones, the field's, a user's.
        self.rows = {
            role: PathRow(Use(role), settings.model_paths.get(role), self.checks)
            for role in assignable_roles()
        }
        self.vae_row = PathRow(Use.VAE, settings.vae, self.checks)
        models = QGroupBox("Model files")
        files = QWidget()
        grid = QGridLayout(files)
        grid.setContentsMargins(0, 0, 0, 0)
        for index, (role, row) in enumerate(self.rows.items()):
            label = QLabel(role_title(role))
            label.setToolTip(f"--model {role}=PATH on the command line")
            grid.addWidget(label, index, 0)
            grid.addWidget(row, index, 1)
        grid.addWidget(QLabel("VAE"), len(self.rows), 0)
        grid.addWidget(self.vae_row, len(self.rows), 1)
        grid.setColumnStretch(1, 1)
        self.files_area = QScrollArea()
        self.files_area.setWidget(files)
        self.files_area.setWidgetResizable(True)
        self.files_area.setFrameShape(QFrame.Shape.NoFrame)
        row_height = self.vae_row.sizeHint().height() + grid.verticalSpacing()
        self.files_area.setMinimumHeight(min(len(self.rows) + 1, VISIBLE_MODEL_ROWS) * row_height)
        outer = QVBoxLayout(models)
        outer.addWidget(self.files_area)
        needs = QLabel(
            "Leave the SDXL base empty to use the built-in pocket model (64×64 drawings of one shape,"
            " for trying the modes). The Models tab lists what the models folder and the Hugging Face"
            " cache hold."
            "\n" + needs_table()
        )
        needs.setObjectName("tileCaption")
        needs.setWordWrap(True)
        outer.addWidget(needs)

        folders = QGroupBox("Folders")
        folder_layout = QGridLayout(folders)
        self.models_dir = QLineEdit(str(settings.models_dir) if settings.models_dir else "")
        self.models_dir.setPlaceholderText(str(default_models_dir()))
        self.models_browse = QPushButton("Folder…")
        self.models_browse.setFixedWidth(BROWSE_WIDTH)
        self.models_status = QLabel()
        self.models_status.setWordWrap(True)
        folder_layout.addWidget(QLabel("Models"), 0, 0)
        folder_layout.addWidget(self.models_dir, 0, 1)
        folder_layout.addWidget(self.models_browse, 0, 2)
        folder_layout.addWidget(self.models_status, 1, 1, 1, 2)
        self.output_dir = QLineEdit(str(settings.output_dir) if settings.output_dir else "")
        self.output_dir.setPlaceholderText(str(default_output_dir()))
        self.output_browse = QPushButton("Folder…")
        self.output_browse.setFixedWidth(BROWSE_WIDTH)
        self.output_status = QLabel()
        self.output_status.setWordWrap(True)
        folder_layout.addWidget(QLabel("Images"), 2, 0)
        folder_layout.addWidget(self.output_dir, 2, 1)
        folder_layout.addWidget(self.output_browse, 2, 2)
        folder_layout.addWidget(self.output_status, 3, 1, 1, 2)
        folder_layout.setColumnStretch(1, 1)

        engine = QGroupBox("Engine")
        engine_layout = QGridLayout(engine)
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        if self.device.findText(settings.device) < 0:
            self.device.addItem(settings.device)
        self.device.setCurrentText(settings.device)
        engine_layout.addWidget(QLabel("Device"), 0, 0)
        engine_layout.addWidget(self.device, 0, 1)
        self.residency = QComboBox()
        for policy in Residency:
            self.residency.addItem(str(policy))
        self.residency.setCurrentText(str(settings.residency))
        self.residency.setToolTip(
            "which UNets stay on the GPU and which wait in CPU RAM (on the CPU: on disk)"
        )
        self.residency_note = QLabel()
        self.residency_note.setObjectName("tileCaption")
        self.residency_note.setWordWrap(True)
        engine_layout.addWidget(QLabel("Residency"), 1, 0)
        engine_layout.addWidget(self.residency, 1, 1)
        engine_layout.addWidget(self.residency_note, 1, 2)
        self.vram = QDoubleSpinBox()
        self.vram.setRange(0.0, 4096.0)
        self.vram.setDecimals(1)
        self.vram.setSingleStep(0.5)
        self.vram.setSuffix(" GiB")
        self.vram.setSpecialValueText("measure")  # 0 shows as "measure"
        self.vram.setValue(settings.vram or 0.0)
        self.vram.setToolTip("free GPU memory to plan the placement for; 'measure' asks the GPU")
        vram_note = QLabel("plan for this much free GPU memory (e.g. when another program shares the card)")
        vram_note.setObjectName("tileCaption")
        vram_note.setWordWrap(True)
        engine_layout.addWidget(QLabel("GPU memory"), 2, 0)
        engine_layout.addWidget(self.vram, 2, 1)
        engine_layout.addWidget(vram_note, 2, 2)
        self.lora_route = QComboBox()
        for route in LoraRoute:
            self.lora_route.addItem(str(route))
        self.lora_route.setCurrentText(str(settings.lora_route))
        self.lora_route.setToolTip(
            "fused: as the LoRAs' model cards run them; auto: fused where the slot fits"
        )
        route_note = QLabel("LoRA modes fused into one shared slot (their cards' speed), unfused, or auto")
        route_note.setObjectName("tileCaption")
        route_note.setWordWrap(True)
        engine_layout.addWidget(QLabel("LoRA route"), 3, 0)
        engine_layout.addWidget(self.lora_route, 3, 1)
        engine_layout.addWidget(route_note, 3, 2)
        engine_layout.setColumnStretch(2, 1)

        self.problem = QLabel()
        self.problem.setStyleSheet(f"color: {ERROR};")
        self.problem.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        layout = QVBoxLayout(self)
        layout.addWidget(models)
        layout.addWidget(folders)
        layout.addWidget(engine)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.output_dir.textChanged.connect(self._check_output)
        self.output_browse.clicked.connect(self._browse_output)
        self.models_dir.textChanged.connect(self._check_models)
        self.models_browse.clicked.connect(self._browse_models)
        self.residency.currentIndexChanged.connect(self._residency_changed)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        for _title, path_row in self.path_rows():
            path_row.edit.textChanged.connect(self._path_edited)
            path_row.checked.connect(self._path_checked)
        self._check_output()
        self._check_models()
        self._residency_changed()

    def chosen_residency(self) -> Residency:
        return Residency(self.residency.currentText())

    def _residency_changed(self) -> None:
        self.residency_note.setText(RESIDENCY_NOTES[self.chosen_residency()])

    def _check_models(self) -> None:
        text = self.models_dir.text().strip()
        problem = check_models_dir(text) if text else None
        shown = text or str(default_models_dir())
        self.models_status.setText(f"✗ {problem}" if problem else f"scanned at start: {shown}")
        self.models_status.setStyleSheet(f"color: {ERROR if problem else MUTED};")

    def _browse_models(self) -> None:
        start = self.models_dir.text() or str(default_models_dir())
        chosen = QFileDialog.getExistingDirectory(self, "Models folder", start)
        if chosen:
            self.models_dir.setText(chosen)

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

    def path_rows(self) -> list[tuple[str, PathRow]]:
        """Each model path row with its title, the VAE last."""
        return [(role_title(role), row) for role, row in self.rows.items()] + [("VAE", self.vae_row)]

    def checking(self) -> list[str]:
        """The titles of the rows whose check has not answered yet."""
        return [title for title, row in self.path_rows() if row.pending]

    def problems(self) -> list[str]:
        found = [f"{title}: still being checked" for title in self.checking()]
        found += [f"{title}: {row.error}" for title, row in self.path_rows() if row.error]
        text = self.output_dir.text().strip()
        if text and (problem := check_output_dir(text)):
            found.append(f"Output folder: {problem}")
        models = self.models_dir.text().strip()
        if models and (problem := check_models_dir(models)):
            found.append(f"Models folder: {problem}")
        return found

    def accept(self) -> None:
        # Save right after pasting a path is the usual case, and its check takes milliseconds: Save then
        # waits for the check and saves (or says what to fix) when it answers, rather than refusing or
        # greying out for that moment. A check that hangs leaves the dialog open saying so; Cancel
        # or an edit still work.
        if checking := self.checking():
            self._save_when_checked = True
            self.problem.setText("Saving once these are checked: " + ", ".join(checking) + "…")
            self.problem.setStyleSheet(f"color: {MUTED};")
            return
        self._save_when_checked = False
        if problems := self.problems():
            self.problem.setText("Fix or clear these first:\n" + "\n".join(problems))
            self.problem.setStyleSheet(f"color: {ERROR};")
            return
        super().accept()

    def done(self, result: int) -> None:
        # Every close (Save, Cancel, Esc, the title bar) ends here. Answers still to come are dropped, and
        # there is no wait for a check that hangs: it writes nothing, and the window must not freeze.
        self.checks.shutdown()
        super().done(result)

    def _path_edited(self) -> None:
        """An edit after Save was pressed: the artist is still choosing, so the wait for Save ends."""
        if self._save_when_checked:
            self._save_when_checked = False
            self.problem.clear()

    def _path_checked(self) -> None:
        if self._save_when_checked and not self.checking():
            self.accept()

    def chosen_settings(self) -> Settings:
        # A role without a row (its mode file is gone this session) keeps its file.
        kept = {role: path for role, path in self.original.model_paths.items() if role not in self.rows}
        paths = kept | {role: path for role, row in self.rows.items() if (path := row.path()) is not None}
        text = self.output_dir.text().strip()
        models = self.models_dir.text().strip()
        return replace(
            self.original,
            model_paths=paths,
            output_dir=Path(text).expanduser() if text else None,
            device=self.device.currentText(),
            models_dir=Path(models).expanduser() if models else None,
            vae=self.vae_row.path(),
            residency=self.chosen_residency(),
            lora_route=LoraRoute(self.lora_route.currentText()),
            vram=self.vram.value() or None,
        )
