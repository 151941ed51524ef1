"""The status bar's account of the engine: whether it is loading, ready or failed, and its memory."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from engine.contract.info import EngineInfo


class EngineStatus(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine_label = QLabel("starting")
        self.memory_label = QLabel()
        self.memory_label.setObjectName("tileCaption")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.memory_label)
        layout.addWidget(self.engine_label)

    def show_step(self, text: str) -> None:
        """What the loading engine is doing now."""
        self.engine_label.setText(f"engine: {text}…")

    def show_reloading(self) -> None:
        self.engine_label.setText("engine: reloading…")
        self.memory_label.setText("")

    def show_ready(self, info: EngineInfo) -> None:
        self.engine_label.setText(f"ready · {info.model_label} · {info.device}")
        if info.memory is not None:
            self.memory_label.setText(info.memory.summary())
            self.memory_label.setToolTip(info.memory.details())
        else:
            self.memory_label.setText("")

    def show_failed(self) -> None:
        self.engine_label.setText("engine: not loaded")
        self.memory_label.setText("")
