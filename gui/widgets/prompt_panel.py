"""Prompt, negative prompt, seed, size and the buttons that start and stop work."""

from __future__ import annotations

import random

from PySide6.QtCore import QRegularExpression, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.contract.errors import RequestError
from engine.contract.limits import MAX_SEED
from engine.contract.modes import MODES
from engine.pocket.grammar import COLORS, POSITIONS, SHAPES, SIZES, Prompt

# SDXL's trained resolutions (about one megapixel each), from Stability's SDXL report.
SDXL_SIZES: tuple[tuple[int, int], ...] = (
    (1024, 1024),
    (1152, 896),
    (896, 1152),
    (1216, 832),
    (832, 1216),
    (1344, 768),
    (768, 1344),
    (1536, 640),
    (640, 1536),
)
MAX_SEEDS = 8


def pocket_prompt(rng: random.Random) -> str:
    """A sentence of the pocket model's grammar: two different colours, a position half the time."""
    color, background = rng.sample(COLORS, 2)
    position = rng.choice(POSITIONS) if rng.random() < 0.5 else None
    return Prompt(
        size=rng.choice(SIZES),
        color=color,
        shape=rng.choice(SHAPES),
        background=background,
        position=position,
    ).text


def _size_label(width: int, height: int) -> str:
    shape = "square" if width == height else ("landscape" if width > height else "portrait")
    return f"{width} × {height}  ({shape})"


class PromptPanel(QWidget):
    generate_requested = Signal()
    cancel_requested = Signal()
    prompt_edited = Signal()
    negative_changed = Signal(str)
    live_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("What to draw, e.g. a lighthouse on a cliff at dusk, oil painting")
        self.prompt.setTabChangesFocus(True)
        # The pocket model knows one grammar; the button offers sentences of it (hidden otherwise).
        # A word, not an emoji: systems without an emoji font (Xvfb, many Linux desktops) draw a box.
        self.suggest = QPushButton("Suggest")
        self.suggest.setToolTip("a prompt the built-in pocket model understands")
        self.suggest.setVisible(False)
        self.suggest.clicked.connect(self.suggest_prompt)
        self._suggestions = random.Random()
        self.negative = QPlainTextEdit()
        self.negative.setPlaceholderText("What to avoid (used only where CFG is above 1)")
        self.negative.setTabChangesFocus(True)
        self.negative.setMaximumHeight(60)
        self.seed = QLineEdit("0")
        self.seed.setValidator(QRegularExpressionValidator(QRegularExpression(r"\d{1,19}")))
        self.seed.setToolTip("the seed of the initial noise; every mode starts from the same noise")
        self.dice = QPushButton("⚄")
        self.dice.setToolTip("a new random seed")
        self.dice.setFixedWidth(36)
        self.new_seed_each_run = QCheckBox("new each run")
        self.seed_count = QSpinBox()
        self.seed_count.setRange(1, MAX_SEEDS)
        self.seed_count.setSuffix(" seed(s): seed, seed+1, …")
        self.seed_count.setToolTip("several seeds show each mode's diversity: one row per seed")
        self.size_box = QComboBox()
        self.generate = QPushButton("Generate")
        self.generate.setObjectName("generate")
        self.generate.setToolTip("Ctrl+Enter")
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Esc: stops the running job at its next step and drops queued ones")
        self.live = QCheckBox("Live")
        self.live.setToolTip("render while you type, with one fast mode")
        self.live_mode = QComboBox()
        for spec in MODES.values():
            if spec.is_distilled:
                self.live_mode.addItem(spec.title, spec.name)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        prompt_row = QHBoxLayout()
        prompt_row.addWidget(QLabel("Prompt"), 1)
        prompt_row.addWidget(self.suggest)
        layout.addLayout(prompt_row)
        layout.addWidget(self.prompt, 2)
        layout.addWidget(QLabel("Negative prompt"))
        layout.addWidget(self.negative)
        grid = QGridLayout()
        grid.addWidget(QLabel("Seed"), 0, 0)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.dice)
        grid.addLayout(seed_row, 0, 1)
        grid.addWidget(self.new_seed_each_run, 1, 1)
        grid.addWidget(QLabel("Rows"), 2, 0)
        grid.addWidget(self.seed_count, 2, 1)
        grid.addWidget(QLabel("Size"), 3, 0)
        grid.addWidget(self.size_box, 3, 1)
        grid.setColumnStretch(1, 1)
        layout.addLayout(grid)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate, 2)
        buttons.addWidget(self.cancel, 1)
        layout.addLayout(buttons)
        live_row = QHBoxLayout()
        live_row.addWidget(self.live)
        live_row.addWidget(self.live_mode, 1)
        layout.addLayout(live_row)

        self.size_chosen_by_artist = False
        self.set_model_size(None)
        self.size_box.activated.connect(self._size_chosen)
        self.dice.clicked.connect(self.roll_seed)
        self.generate.clicked.connect(self.generate_requested)
        self.cancel.clicked.connect(self.cancel_requested)
        self.prompt.textChanged.connect(self.prompt_edited)
        self.negative.textChanged.connect(lambda: self.negative_changed.emit(self.negative_text()))
        self.live.toggled.connect(self.live_toggled)

    # --- values ---------------------------------------------------------------------------------

    def prompt_text(self) -> str:
        return self.prompt.toPlainText()

    def negative_text(self) -> str:
        return self.negative.toPlainText()

    def seed_value(self) -> int:
        text = self.seed.text()
        if not text.isdigit() or int(text) > MAX_SEED:
            raise RequestError(f"the seed must be a whole number from 0 to {MAX_SEED}")
        return int(text)

    def seeds(self) -> tuple[int, ...]:
        """The seed and the next ones, one per row of the grid (A1111's convention for batches)."""
        if self.new_seed_each_run.isChecked():
            self.roll_seed()
        first = self.seed_value()
        return tuple(min(first + i, MAX_SEED) for i in range(self.seed_count.value()))

    def roll_seed(self) -> None:
        self.seed.setText(str(random.randrange(2**32)))

    def chosen_size(self) -> tuple[int, int]:
        size: tuple[int, int] = self.size_box.currentData()
        return size

    def live_mode_name(self) -> str:
        name: str = self.live_mode.currentData()
        return name

    # --- restoring ------------------------------------------------------------------------------

    def set_pocket_grammar(self, active: bool) -> None:
        """Suggest prompts of the pocket model's grammar while it is the model in use."""
        self.suggest.setVisible(active)
        self.prompt.setPlaceholderText(
            "What to draw, e.g. a large red circle on a blue background, top left"
            if active
            else "What to draw, e.g. a lighthouse on a cliff at dusk, oil painting"
        )

    def suggest_prompt(self) -> None:
        self.prompt.setPlainText(pocket_prompt(self._suggestions))

    def set_model_size(self, own: tuple[int, int] | None, label: str = "this model's own") -> None:
        """SDXL's sizes, and the loaded model's own size first when it is not one of them (the
        built-in model draws 64 x 64). The model's size is selected unless the artist chose another."""
        current: tuple[int, int] | None = self.size_box.currentData() if self.size_box.count() else None
        self.size_box.blockSignals(True)
        self.size_box.clear()
        if own is not None and own not in SDXL_SIZES:
            self.size_box.addItem(f"{own[0]} × {own[1]}  ({label})", own)
        for width, height in SDXL_SIZES:
            self.size_box.addItem(_size_label(width, height), (width, height))
        self.size_box.blockSignals(False)
        chosen = current if self.size_chosen_by_artist and current is not None else own or SDXL_SIZES[0]
        self.select_size(*chosen)

    def select_size(self, width: int, height: int) -> None:
        for index in range(self.size_box.count()):
            if self.size_box.itemData(index) == (width, height):
                self.size_box.setCurrentIndex(index)
                return
        # A restored size that is no preset (e.g. an A1111 image) gets an entry of its own.
        self.size_box.addItem(f"{width} × {height}  (restored)", (width, height))
        self.size_box.setCurrentIndex(self.size_box.count() - 1)

    def _size_chosen(self) -> None:
        self.size_chosen_by_artist = True

    def set_live_mode(self, mode: str) -> None:
        index = self.live_mode.findData(mode)
        if index >= 0:
            self.live_mode.setCurrentIndex(index)

    def set_seed(self, seed: int) -> None:
        self.seed.setText(str(seed))

    def set_running(self, running: bool) -> None:
        self.cancel.setEnabled(running)
