"""A window onto a `fewstep bench` folder: the trilemma table with intervals on top; below, the prompts,
and the chosen prompt's grid (modes down, seeds across)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QGridLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.state.bench_reader import BenchView

THUMB = 128  # pixels a side of each image in the grid


class BenchBrowser(QDialog):
    def __init__(self, view: BenchView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.setWindowTitle(f"Bench: {view.folder.name}")
        self.resize(1000, 760)
        self.table = QTableWidget(len(view.modes), len(view.columns))
        self.table.setHorizontalHeaderLabels([label for _, label in view.columns])
        self.table.setVerticalHeaderLabels(list(view.modes))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        for row, texts in enumerate(view.table):
            for column, text in enumerate(texts):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        note = QLabel(
            f"Means over {len(view.prompts)} prompts, 95% intervals in brackets. {view.adherence_note}"
        )
        note.setWordWrap(True)
        self.prompts = QListWidget()
        self.prompts.addItems([f"{i + 1}. {p}" for i, p in enumerate(view.prompts)])
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid_host)
        lower = QSplitter()
        lower.addWidget(self.prompts)
        lower.addWidget(scroll)
        lower.setSizes([300, 700])
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(note)
        layout.addWidget(lower, 1)
        self.prompts.currentRowChanged.connect(self.show_prompt)
        if view.prompts:
            self.prompts.setCurrentRow(0)

    def show_prompt(self, index: int) -> None:
        """The prompt's grid: a row per mode, a column per seed; '–' where a cell is missing."""
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item is not None and (widget := item.widget()) is not None:
                widget.deleteLater()
        if index < 0:
            return
        for column, seed in enumerate(self.view.seeds, 1):
            self.grid.addWidget(QLabel(f"seed {seed}"), 0, column, Qt.AlignmentFlag.AlignCenter)
        for row, mode in enumerate(self.view.modes, 1):
            self.grid.addWidget(QLabel(mode), row, 0)
            for column, seed in enumerate(self.view.seeds, 1):
                pixmap = QPixmap(str(self.view.image(index, mode, seed)))
                label = QLabel()
                label.setObjectName(f"{mode}/{seed}")
                if pixmap.isNull():
                    label.setText("–")
                else:
                    label.setPixmap(
                        pixmap.scaled(
                            THUMB,
                            THUMB,
                            Qt.AspectRatioMode.KeepAspectRatio,
                            Qt.TransformationMode.FastTransformation,
                        )
                    )
                self.grid.addWidget(label, row, column, Qt.AlignmentFlag.AlignCenter)
