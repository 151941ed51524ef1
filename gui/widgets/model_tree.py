"""The models panel's tree: each entry drawn as its name over a line that says what it is and what it enables."""

from __future__ import annotations

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QPainter,
    QPalette,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
)

from gui.state.model_scan import ModelEntry
from gui.widgets.theme import ACCENT, ERROR, MUTED

ROLE_ENTRY = Qt.ItemDataRole.UserRole  # each item's ModelEntry
PAD = 4  # above and below each entry


class EntryDelegate(QStyledItemDelegate):
    """An entry as a small card: its name in bold, then what it is, what it enables and its use,
    each wrapped to the panel's width (a plain item elides the reason a file is refused)."""

    def __init__(self, tree: QTreeWidget) -> None:
        super().__init__(tree)
        self.tree = tree

    def _lines(self, index: QModelIndex | QPersistentModelIndex) -> list[str] | None:
        if not isinstance(index.data(ROLE_ENTRY), ModelEntry):
            return None
        return str(index.data(Qt.ItemDataRole.DisplayRole)).split("\n")

    def _width(self, option: QStyleOptionViewItem) -> int:
        # The tree's own indentation of a child row, and a scroll bar's room.
        return max(80, self.tree.viewport().width() - 2 * self.tree.indentation() - 6)

    def sizeHint(  # noqa: N802 - Qt's name
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        lines = self._lines(index)
        if lines is None:
            return super().sizeHint(option, index)
        width = self._width(option)
        bold = QFont(option.font)
        bold.setBold(True)
        height = QFontMetrics(bold).height() + 2 * PAD
        metrics = QFontMetrics(option.font)
        for line in lines[1:]:
            height += metrics.boundingRect(
                QRect(0, 0, width, 10_000), Qt.TextFlag.TextWordWrap, line
            ).height()
        return QSize(width, height)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        lines = self._lines(index)
        if lines is None:
            super().paint(painter, option, index)
            return
        entry = index.data(ROLE_ENTRY)
        assert isinstance(entry, ModelEntry)
        view_option = QStyleOptionViewItem(option)
        self.initStyleOption(view_option, index)
        view_option.text = ""
        style = self.tree.style() or QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, view_option, painter, self.tree)
        painter.save()
        rect = option.rect.adjusted(2, PAD, -2, -PAD)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        text_color = option.palette.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        )
        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(text_color)
        name = QFontMetrics(bold).elidedText(lines[0], Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, name)
        top = rect.top() + QFontMetrics(bold).height()
        painter.setFont(option.font)
        metrics = QFontMetrics(option.font)
        for number, line in enumerate(lines[1:]):
            if selected:
                color = text_color
            elif number == 0 and not entry.usable:
                color = QColor(ERROR)
            elif line.startswith("✓"):
                color = QColor(ACCENT)
            elif number == 0:
                color = text_color
            else:
                color = QColor(MUTED)
            painter.setPen(color)
            box = QRect(rect.left(), top, rect.width(), 10_000)
            used = metrics.boundingRect(box, Qt.TextFlag.TextWordWrap, line)
            painter.drawText(box, int(Qt.TextFlag.TextWordWrap), line)
            top += used.height()
        painter.setPen(QColor("#2b2d31"))
        painter.drawLine(option.rect.bottomLeft(), option.rect.bottomRight())
        painter.restore()


class ModelTree(QTreeWidget):
    """Rows are as tall as their wrapped text at the current width, so a resize lays them out again."""

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.doItemsLayout()
