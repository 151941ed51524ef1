"""Past runs, newest first; choosing one restores its prompt and settings and shows its images.

Thumbnails are read from disk one per event-loop turn, so a long history never freezes the window.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QImage, QImageReader, QPixmap
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from engine.files.safe_paths import special_file_problem
from gui.state.image_store import RunRecord, load_history, read_run_record
from gui.widgets.images import scaled_pixmap

THUMBNAIL = QSize(56, 56)
ROLE_RECORD = Qt.ItemDataRole.UserRole


def thumbnail_of(path: Path) -> QImage:
    if special_file_problem(path):  # a FIFO would block the GUI thread in the read
        return QImage()
    reader = QImageReader(str(path))
    reader.setAutoTransform(False)
    size = reader.size()
    if size.isValid() and size.width() > THUMBNAIL.width() * 4:
        reader.setScaledSize(size.scaled(THUMBNAIL * 2, Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()


class HistoryPanel(QWidget):
    run_chosen = Signal(object)  # RunRecord

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setIconSize(THUMBNAIL)
        self.list.setUniformItemSizes(True)
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.note = QLabel()
        self.note.setObjectName("tileCaption")
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.note)
        self._thumbnails: deque[tuple[QListWidgetItem, Path]] = deque()
        self._thumbnail_timer = QTimer(self)
        self._thumbnail_timer.setInterval(0)
        self._thumbnail_timer.timeout.connect(self._load_one_thumbnail)
        self.list.itemActivated.connect(self._chosen)
        self.list.itemClicked.connect(self._chosen)

    def reload(self, root: Path) -> None:
        self.list.clear()
        self._thumbnails.clear()
        records, damaged = load_history(root)
        for record in records:
            item = self._append(record)
            if record.images:
                self._thumbnails.append((item, record.images[0].png))
        self.note.setText(f"{damaged} unreadable history entries skipped" if damaged else "")
        self.note.setVisible(bool(damaged))
        if self._thumbnails:
            self._thumbnail_timer.start()

    def add_run(self, record: RunRecord, thumbnail: QImage | None) -> None:
        item = self._make_item(record)
        self.list.insertItem(0, item)
        if thumbnail is not None:
            item.setIcon(QIcon(scaled_pixmap(thumbnail, THUMBNAIL)))

    def add_saved_run(self, path: Path, root: Path, thumbnail: QImage | None) -> None:
        """The run a finished job just wrote; RecordError when it cannot be read back."""
        self.add_run(read_run_record(path, root), thumbnail)

    def records(self) -> list[RunRecord]:
        return [self.list.item(i).data(ROLE_RECORD) for i in range(self.list.count())]

    def _make_item(self, record: RunRecord) -> QListWidgetItem:
        modes = ", ".join(dict.fromkeys(image.mode for image in record.images)) or "no image"
        when = record.created.replace("T", " ")
        stopped = " · cancelled" if record.status == "cancelled" else ""
        item = QListWidgetItem(f"{record.title}\n{when} · {modes}{stopped}")
        item.setData(ROLE_RECORD, record)
        item.setToolTip(record.request.prompt[:500])
        placeholder = QPixmap(THUMBNAIL)
        placeholder.fill(Qt.GlobalColor.black)
        item.setIcon(QIcon(placeholder))
        return item

    def _append(self, record: RunRecord) -> QListWidgetItem:
        item = self._make_item(record)
        self.list.addItem(item)
        return item

    def _load_one_thumbnail(self) -> None:
        if not self._thumbnails:
            self._thumbnail_timer.stop()
            return
        item, path = self._thumbnails.popleft()
        image = thumbnail_of(path)
        if not image.isNull() and self.list.row(item) >= 0:
            item.setIcon(QIcon(scaled_pixmap(image, THUMBNAIL)))

    def _chosen(self, item: QListWidgetItem) -> None:
        record = item.data(ROLE_RECORD)
        if isinstance(record, RunRecord):
            self.run_chosen.emit(record)
