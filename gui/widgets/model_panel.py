"""The models the artist has: a models folder and the Hugging Face cache, each entry said for what it is.

Scanning reads names and safetensors headers only (engine.files.model_files), but a folder of many
checkpoints on a slow disk still takes a while, so it runs on the panel's own thread pool and the
tree is filled when it is done. A double-click gives an entry its natural use (a base becomes the
base, a style LoRA joins the styles); the context menu offers every use, and the window checks the
choice before it changes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from PySide6.QtCore import (
    QPoint,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QBrush,
    QColor,
    QFont,
    QFontDatabase,
    QTextOption,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.contract.info import MemoryReport
from gui.state.background import Background
from gui.state.model_scan import ModelEntry, ScanResult, scan_all
from gui.state.placement_view import PlanRequest, plan_text
from gui.widgets.model_tree import ROLE_ENTRY, EntryDelegate, ModelTree
from gui.widgets.theme import ERROR, MUTED

SCAN_KEY, PLAN_KEY = "scan", "plan"


class ModelPanel(QWidget):
    assign_requested = Signal(object, object)  # Use, Path: the window checks it and updates settings
    folder_chosen = Signal(object)  # Path
    scanned = Signal(object)  # ScanResult, once the tree shows it
    refused = Signal(str)  # a double-click on what Fewstep cannot use, and why
    plan_shown = Signal(str)  # the placement plan's text, once the panel shows it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._background = Background(self)  # the scans and the plans, the newest of each shown
        self._scanning = False
        self._folder: Path | None = None
        self._marks: dict[str, str] = {}
        self.result: ScanResult | None = None

        self.tree = ModelTree()
        self.tree.setHeaderHidden(True)
        self.tree.setItemDelegate(EntryDelegate(self.tree))
        self.tree.setIndentation(12)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.folder_label = QLabel()
        self.folder_label.setObjectName("tileCaption")
        self.folder_label.setWordWrap(True)
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.rescan_button = QPushButton("Rescan")
        self.rescan_button.setToolTip("look again at the models folder and the Hugging Face cache")
        self.folder_button = QPushButton("Folder…")
        self.folder_button.setToolTip("choose the models folder")
        self.help = QLabel("Double-click to use a file for what it is; right-click for every use.")
        self.help.setObjectName("tileCaption")
        self.help.setWordWrap(True)
        self.memory = QLabel()
        self.memory.setObjectName("tileCaption")
        self.memory.setWordWrap(True)
        self.memory.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.memory.hide()
        # The same text as `fewstep plan`, in its fixed-width font, wrapped to the side panel's width:
        # at the window's default width a plan line is wider than the panel, and a sideways scroll hid
        # the end of every sentence. A long path breaks anywhere rather than widen the text.
        self.plan = QPlainTextEdit()
        self.plan.setReadOnly(True)
        self.plan.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.plan.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.plan.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.plan.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.plan.setMinimumHeight(60)
        self.plan.setPlaceholderText("planning where each model part lives on the GPU…")
        self.plan.setToolTip("where each model part lives on the GPU for each mode (fewstep plan)")
        buttons = QHBoxLayout()
        buttons.addWidget(self.rescan_button)
        buttons.addWidget(self.folder_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.folder_label)
        layout.addLayout(buttons)
        # The plan below the tree, in a splitter: the tree keeps most of the height, the artist can
        # drag the plan taller.
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(self.plan)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([480, 240])
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.help)
        layout.addWidget(self.memory)
        self.rescan_button.clicked.connect(self.rescan)
        self.folder_button.clicked.connect(self._choose_folder)
        self.tree.itemDoubleClicked.connect(lambda item, _column: self.activate(item))
        self.tree.customContextMenuRequested.connect(self._context_menu)

    # --- scanning -------------------------------------------------------------------------------

    def scan(self, folder: Path) -> None:
        """Start a scan in the background; a newer scan makes an older one's result be ignored."""
        self._folder = folder
        self._scanning = True
        self.rescan_button.setEnabled(False)
        self.folder_label.setText(f"Models folder: {folder}\nscanning…")

        def failed(exc: Exception) -> None:  # scan_all catches what it expects: this is a bug, said here
            self._scan_done(ScanResult(folder=folder, folder_problem=f"{type(exc).__name__}: {exc}"))

        self._background.submit(lambda: scan_all(folder), self._scan_done, failed, key=SCAN_KEY)

    def rescan(self) -> None:
        if self._folder is not None:
            self.scan(self._folder)

    def is_scanning(self) -> bool:
        return self._scanning

    def shutdown(self) -> None:
        """Drop the result of a scan still running (the window calls this as it closes)."""
        self._background.shutdown()

    def _scan_done(self, result: ScanResult) -> None:
        self._scanning = False
        self.rescan_button.setEnabled(True)
        self.result = result
        self._fill(result)
        self.scanned.emit(result)

    # --- the tree -------------------------------------------------------------------------------

    def _fill(self, result: ScanResult) -> None:
        self.tree.clear()
        usable = sum(e.usable for e in result.entries)
        self.folder_label.setText(
            f"Models folder: {result.folder}\n{len(result.entries)} found, {usable} usable"
        )
        folder_item = QTreeWidgetItem([f"Models folder ({len(result.entries)})"])
        folder_item.setToolTip(0, str(result.folder))
        self._bold(folder_item)
        self.tree.addTopLevelItem(folder_item)
        if result.folder_problem:
            self._note(folder_item, f"✗ {result.folder_problem}", ERROR)
        elif not result.entries:
            self._note(folder_item, "empty: put .safetensors files or diffusers folders here", MUTED)
        for entry in result.entries:
            folder_item.addChild(self._item(entry))
        hub_item = QTreeWidgetItem([f"Hugging Face cache ({len(result.hub_entries)})"])
        hub_item.setToolTip(0, result.hub_dir)
        self._bold(hub_item)
        self.tree.addTopLevelItem(hub_item)
        if result.hub_problem:
            self._note(hub_item, f"✗ {result.hub_problem}", ERROR)
        elif not result.hub_entries:
            self._note(hub_item, "no SDXL models in the cache", MUTED)
        if result.hub_skipped:
            self._note(
                hub_item, f"{result.hub_skipped} other repositories (not image models) not shown", MUTED
            )
        for entry in result.hub_entries:
            hub_item.addChild(self._item(entry))
        folder_item.setExpanded(True)
        hub_item.setExpanded(True)
        self._apply_marks()

    @staticmethod
    def _bold(item: QTreeWidgetItem) -> None:
        font = QFont(item.font(0))
        font.setBold(True)
        item.setFont(0, font)
        item.setFlags(Qt.ItemFlag.ItemIsEnabled)

    @staticmethod
    def _note(parent: QTreeWidgetItem, text: str, color: str) -> None:
        note = QTreeWidgetItem([text])
        note.setForeground(0, QBrush(QColor(color)))
        note.setFlags(Qt.ItemFlag.ItemIsEnabled)
        parent.addChild(note)

    def _item(self, entry: ModelEntry) -> QTreeWidgetItem:
        item = QTreeWidgetItem()
        item.setData(0, ROLE_ENTRY, entry)
        tooltip = [str(entry.reference), entry.what()]
        if entry.info is not None and entry.info.path != entry.reference:
            tooltip.append(f"in the cache at {entry.info.path}")
        item.setToolTip(0, "\n".join(tooltip))
        return item

    def _text(self, entry: ModelEntry) -> str:
        lines = [entry.name, entry.what() if entry.usable else f"✗ {entry.what()}"]
        if enables := entry.enables():
            lines.append(f"enables {enables}")
        if mark := self._marks.get(str(entry.reference)):
            lines.append(f"✓ in use: {mark}")
        return "\n".join(lines)

    def set_in_use(self, marks: Mapping[Path, str]) -> None:
        """Mark the entries the settings use (path -> what as)."""
        self._marks = {str(path): text for path, text in marks.items()}
        self._apply_marks()

    def _apply_marks(self) -> None:
        for item, entry in self._items():
            item.setText(0, self._text(entry))

    def _items(self) -> Iterable[tuple[QTreeWidgetItem, ModelEntry]]:
        for top in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(top)
            for index in range(group.childCount() if group is not None else 0):
                item = group.child(index) if group is not None else None
                entry = item.data(0, ROLE_ENTRY) if item is not None else None
                if item is not None and isinstance(entry, ModelEntry):
                    yield item, entry

    def entries(self) -> list[ModelEntry]:
        return [entry for _item, entry in self._items()]

    def item_named(self, name: str) -> QTreeWidgetItem | None:
        return next((item for item, entry in self._items() if entry.name == name), None)

    # --- assigning ------------------------------------------------------------------------------

    def activate(self, item: QTreeWidgetItem) -> None:
        """A double-click: the entry's natural use, or why it has none."""
        entry = item.data(0, ROLE_ENTRY)
        if not isinstance(entry, ModelEntry):
            return
        use = entry.natural_use
        if use is None:
            self.refused.emit(entry.why_no_natural_use())
            return
        self.assign_requested.emit(use, entry.reference)

    def menu_for(self, item: QTreeWidgetItem) -> QMenu | None:
        entry = item.data(0, ROLE_ENTRY)
        if not isinstance(entry, ModelEntry):
            return None
        menu = QMenu(self)
        natural = entry.natural_use
        for use in entry.uses():
            action = QAction(use.action, menu)
            if use == natural:
                font = action.font()
                font.setBold(True)
                action.setFont(font)
            action.triggered.connect(
                lambda _checked=False, chosen=use: self.assign_requested.emit(chosen, entry.reference)
            )
            menu.addAction(action)
        return menu

    def _context_menu(self, position: QPoint) -> None:
        item = self.tree.itemAt(position)
        if item is None or (menu := self.menu_for(item)) is None:
            return
        menu.exec(self.tree.viewport().mapToGlobal(position))
        menu.deleteLater()

    def _choose_folder(self) -> None:
        start = str(self._folder or Path.home())
        chosen = QFileDialog.getExistingDirectory(self, "Models folder", start)
        if chosen:
            self.folder_chosen.emit(Path(chosen))

    # --- memory ---------------------------------------------------------------------------------

    def set_memory(self, report: MemoryReport | None) -> None:
        if report is None:
            self.memory.hide()
            return
        self.memory.setText("Memory: " + report.details())
        self.memory.show()

    # --- placement plan ---------------------------------------------------------------------------

    def show_plan(self, request: PlanRequest) -> None:
        """Plan on the pool thread (headers, a hundred candidate plans); a newer request wins."""

        def failed(exc: Exception) -> None:  # plan_text says what it expects: this is a bug, said here
            self._plan_done(f"No placement plan: {type(exc).__name__}: {exc}")

        self._background.submit(lambda: plan_text(request), self._plan_done, failed, key=PLAN_KEY)

    def _plan_done(self, text: str) -> None:
        self.plan.setPlainText(text)
        self.plan_shown.emit(text)
