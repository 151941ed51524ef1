"""The main window's columns: the controls on the left, the comparison in the centre, tabs on the right.

Widgets only: the window connects them to the jobs and the model controller.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui.state.model_setup import builtin_hint
from gui.widgets.comparison_grid import ComparisonGrid
from gui.widgets.history import HistoryPanel
from gui.widgets.message_banner import MessageBanner
from gui.widgets.mode_panel import ModePanel
from gui.widgets.model_panel import ModelPanel
from gui.widgets.prompt_panel import PromptPanel
from gui.widgets.style_panel import StylePanel
from gui.widgets.trilemma_panel import TrilemmaPanel

LEFT_WIDTH = 330


class ControlColumn(QScrollArea):
    """The prompt, the modes and the style LoRAs, scrolling when the window is short."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt_panel = PromptPanel()
        self.mode_panel = ModePanel()
        self.style_panel = StylePanel()
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self.prompt_panel)
        modes = QGroupBox("Modes")
        QVBoxLayout(modes).addWidget(self.mode_panel)
        layout.addWidget(modes, 1)
        styles = QGroupBox("Style LoRAs")
        QVBoxLayout(styles).addWidget(self.style_panel)
        layout.addWidget(styles)
        self.setWidget(body)
        self.setWidgetResizable(True)
        self.setMinimumWidth(LEFT_WIDTH)
        self.setMaximumWidth(LEFT_WIDTH + 80)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)


class ComparisonArea(QWidget):
    """The built-in model's note, the message banner, the grid with the trilemma panel under it, and
    the button that exports it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_note = QLabel(builtin_hint())
        self.model_note.setObjectName("modelNote")
        self.model_note.setWordWrap(True)
        self.model_note.setTextFormat(Qt.TextFormat.RichText)
        self.banner = MessageBanner()
        self.grid = ComparisonGrid()
        self.trilemma_panel = TrilemmaPanel()
        self.export_button = QPushButton("Export grid")
        self.export_button.setToolTip("one labelled PNG of the whole grid, in the output folder")
        self.export_button.setEnabled(False)
        self.export_folder_button = QPushButton("Export folder")
        self.export_folder_button.setToolTip(
            "the comparison as a folder, as the CLI writes it: every PNG, report.json with the trilemma"
            " and the model files' SHA-256, and reproduce.py, which rebuilds each image with plain diffusers"
        )
        self.export_folder_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.model_note)
        layout.addWidget(self.banner)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.grid)
        self.splitter.addWidget(self.trilemma_panel)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setSizes([640, 215])
        self.splitter.setChildrenCollapsible(True)
        layout.addWidget(self.splitter, 1)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(self.export_button)
        bottom.addWidget(self.export_folder_button)
        layout.addLayout(bottom)


class SideTabs(QTabWidget):
    """Past runs, and the model files the artist has."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history = HistoryPanel()
        self.model_panel = ModelPanel()
        self.addTab(self.history, "History")
        self.addTab(self.model_panel, "Models")
        self.setMinimumWidth(200)
