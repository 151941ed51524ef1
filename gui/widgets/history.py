"""Past runs, newest first; choosing one restores its prompt and settings and shows its images.

The records are read by gui.state.output_folder and the thumbnails on this panel's own pool thread,
each shown as it arrives: the window never waits for the disk, however long the history or slow the
folder.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from gui.state.background import Background
from gui.state.image_store import RunRecord
from gui.state.output_folder import History, OutputFolder
from gui.widgets.images import read_image, scaled_pixmap

THUMBNAIL = QSize(56, 56)
ROLE_RECORD = Qt.ItemDataRole.UserRole


class HistoryPanel(QWidget):
    run_chosen = Signal(object)  # RunRecord
    thumbnails_done = Signal()  # every thumbnail of the list shown is read (or found unreadable)

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
        self._thumbnails = Background(self)  # forgotten whenever the list is replaced
        self._thumbnails.idle.connect(self.thumbnails_done)
        self._root: Path | None = None  # the folder whose history the list shows
        self._expected: dict[Path, QImage | None] = {}  # runs being read back, with their thumbnails
        self.list.itemActivated.connect(self._chosen)
        self.list.itemClicked.connect(self._chosen)

    def follow(self, output: OutputFolder) -> None:
        """Show what `output` reads: a folder's history, and each saved run it reads back."""
        output.history_loading.connect(self.show_loading)
        output.history_loaded.connect(self.show_history)
        output.history_failed.connect(self.show_failed)
        output.record_read.connect(self._run_read)
        output.record_failed.connect(lambda path, _message: self._expected.pop(path, None))

    def expect_run(self, record: Path, thumbnail: QImage | None) -> None:
        """A run's record is being read back: its entry gets this thumbnail, taken when it was saved."""
        self._expected[record] = thumbnail

    def show_loading(self, root: Path) -> None:
        self._clear()
        self._root = root
        self._say(f"reading the history of {root}…")

    def show_failed(self, message: str) -> None:
        self._say(message)

    def show_history(self, history: History) -> None:
        self._clear()
        for record in history.records:
            item = self._append(record)
            if record.images:
                self._read_thumbnail(item, record.images[0].png)
        damaged = history.damaged
        self._say(f"{damaged} unreadable history entries skipped" if damaged else "")
        if not self._thumbnails.busy:
            self.thumbnails_done.emit()  # no thumbnail to read

    def _run_read(self, record: RunRecord) -> None:
        thumbnail = self._expected.pop(record.path, None)
        if self._root is not None and record.path.is_relative_to(self._root):  # not a folder left since
            self.add_run(record, thumbnail)

    def add_run(self, record: RunRecord, thumbnail: QImage | None) -> None:
        item = self._make_item(record)
        self.list.insertItem(0, item)
        if thumbnail is not None:
            item.setIcon(QIcon(scaled_pixmap(thumbnail, THUMBNAIL)))

    def shutdown(self) -> None:
        self._thumbnails.shutdown()

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

    def _clear(self) -> None:
        self.list.clear()
        self._thumbnails.forget()

    def _say(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def _read_thumbnail(self, item: QListWidgetItem, path: Path) -> None:
        def shown(image: QImage) -> None:
            if not image.isNull():
                item.setIcon(QIcon(scaled_pixmap(image, THUMBNAIL)))

        self._thumbnails.submit(lambda: read_image(path, THUMBNAIL), shown, lambda exc: None)

    def _chosen(self, item: QListWidgetItem) -> None:
        record = item.data(ROLE_RECORD)
        if isinstance(record, RunRecord):
            self.run_chosen.emit(record)
