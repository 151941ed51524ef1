"""The main window: it wires the panels to the worker and keeps no engine state of its own."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.errors import FewstepError, RequestError
from engine.modes import MODES
from engine.request import GenerationRequest, ModeResult
from gui.comparison_grid import ComparisonGrid
from gui.export import export_grid
from gui.history import HistoryPanel
from gui.image_store import RecordError, RunRecord, read_run_record
from gui.image_view import ImageViewer
from gui.jobs import EngineInfo, FailedEvent, FinishedEvent, ImageEvent, Job, ProgressEvent
from gui.live_mode import LiveRenderer
from gui.mode_panel import ModePanel
from gui.model_panel import ModelPanel
from gui.model_setup import (
    BUILTIN_HINT,
    BUILTIN_SIZE,
    Use,
    check_use,
    file_steps,
    in_use,
    memory_details,
    memory_summary,
    missing_hint,
    missing_roles,
)
from gui.parameters import ParametersError, RestoredSettings, restore_from_png
from gui.prompt_panel import PromptPanel
from gui.settings import MAX_STYLES, Settings, save_settings
from gui.settings_dialog import SettingsDialog
from gui.style_panel import StylePanel
from gui.worker import EngineWorker

LEFT_WIDTH = 330
RIGHT_WIDTH = 230
STYLES_OFF_FOR_BUILTIN = "Styles apply once an SDXL base is set; the built-in model ignores them."


class MainWindow(QMainWindow):
    def __init__(
        self, settings: Settings, worker: EngineWorker, *, settings_problem: str | None = None
    ) -> None:
        super().__init__()
        self.settings = settings
        self.worker = worker
        self.engine_info: EngineInfo | None = None
        self.current_job: int | None = None
        self.last_finished: FinishedEvent | None = None
        self._job_ids = itertools.count(1)
        self.setWindowTitle("Fewstep")
        self.setAcceptDrops(True)
        self.resize(1480, 900)

        self.prompt_panel = PromptPanel()
        self.mode_panel = ModePanel()
        self.style_panel = StylePanel()
        self.grid = ComparisonGrid()
        self.history = HistoryPanel()
        self.model_panel = ModelPanel()
        self.side_tabs = QTabWidget()
        self.viewer = ImageViewer(self.grid, self)
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.hide()
        self.model_note = QLabel(BUILTIN_HINT)
        self.model_note.setObjectName("modelNote")
        self.model_note.setWordWrap(True)
        self.model_note.setTextFormat(Qt.TextFormat.RichText)
        self.engine_label = QLabel("starting")
        self.memory_label = QLabel()
        self.memory_label.setObjectName("tileCaption")
        self.export_button = QPushButton("Export grid")
        self.export_button.setToolTip("one labelled PNG of the whole grid, in the output folder")
        self.export_button.setEnabled(False)
        self.live = LiveRenderer(
            worker,
            self._live_request,
            self._next_job_id,
            save_to=lambda: self.settings.resolved_output_dir,
            parent=self,
        )
        self._build_layout()
        self._connect()
        self._apply_model_setup()
        self.style_panel.set_styles(settings.styles)
        self.model_panel.set_in_use(in_use(settings))
        self.prompt_panel.set_live_mode(settings.live_mode)
        self.prompt_panel.set_running(False)
        if settings_problem:
            self.show_message(settings_problem, "warning")

    # --- layout ---------------------------------------------------------------------------------

    def _build_layout(self) -> None:
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(self.prompt_panel)
        modes = QGroupBox("Modes")
        QVBoxLayout(modes).addWidget(self.mode_panel)
        left_layout.addWidget(modes, 1)
        styles = QGroupBox("Style LoRAs")
        QVBoxLayout(styles).addWidget(self.style_panel)
        left_layout.addWidget(styles)
        left_scroll = QScrollArea()
        left_scroll.setWidget(left)
        left_scroll.setWidgetResizable(True)
        left_scroll.setMinimumWidth(LEFT_WIDTH)
        left_scroll.setMaximumWidth(LEFT_WIDTH + 80)
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        center = QWidget()
        center_layout = QVBoxLayout(center)
        center_layout.addWidget(self.model_note)
        center_layout.addWidget(self.banner)
        center_layout.addWidget(self.grid, 1)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(self.export_button)
        center_layout.addLayout(bottom)

        self.side_tabs.addTab(self.history, "History")
        self.side_tabs.addTab(self.model_panel, "Models")
        self.side_tabs.setMinimumWidth(200)
        splitter = QSplitter()
        splitter.addWidget(left_scroll)
        splitter.addWidget(center)
        splitter.addWidget(self.side_tabs)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([LEFT_WIDTH + 20, 900, RIGHT_WIDTH])
        self.setCentralWidget(splitter)
        self.statusBar().addPermanentWidget(self.memory_label)
        self.statusBar().addPermanentWidget(self.engine_label)
        settings_action = QAction("Settings…", self)
        settings_action.setShortcut(QKeySequence("Ctrl+,"))
        settings_action.triggered.connect(self.open_settings)
        toolbar = self.addToolBar("Main")
        toolbar.setMovable(False)
        toolbar.addAction(settings_action)

    def _connect(self) -> None:
        panel = self.prompt_panel
        panel.generate_requested.connect(self.generate)
        panel.cancel_requested.connect(self.cancel)
        panel.prompt_edited.connect(self.live.edited)
        panel.negative_changed.connect(self.mode_panel.set_negative_prompt)
        panel.live_toggled.connect(self._live_toggled)
        panel.live_mode.currentIndexChanged.connect(self._live_mode_changed)
        self.mode_panel.changed.connect(self.live.edited)
        self.style_panel.changed.connect(self._styles_changed)
        self.style_panel.remove_requested.connect(self.remove_style)
        self.style_panel.add_requested.connect(lambda path: self.assign_model(Use.STYLE, path))
        self.model_panel.assign_requested.connect(self.assign_model)
        self.model_panel.folder_chosen.connect(self._models_folder_chosen)
        self.model_panel.refused.connect(lambda message: self.show_message(message, "error"))
        for sequence in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(sequence), self, self.generate)
        QShortcut(QKeySequence("Escape"), self, self.cancel)
        self.grid.tile_activated.connect(self.open_tile)
        self.history.run_chosen.connect(self.restore_run)
        self.export_button.clicked.connect(self.export_current_grid)
        self.live.rendered.connect(self._live_rendered)
        self.live.failed.connect(lambda message: self.show_message(message, "error"))
        worker = self.worker
        worker.status.connect(self._engine_status)
        worker.engine_ready.connect(self._engine_ready)
        worker.engine_failed.connect(self._engine_failed)
        worker.job_started.connect(self._job_started)
        worker.progress.connect(self._progress)
        worker.image_ready.connect(self._image_ready)
        worker.job_finished.connect(self._job_finished)
        worker.job_cancelled.connect(self._job_cancelled)
        worker.job_failed.connect(self._job_failed)

    def start(self) -> None:
        """Start loading the engine and read the history; called once the window is on screen."""
        self.worker.start()
        self.history.reload(self.settings.resolved_output_dir)
        self.model_panel.scan(self.settings.resolved_models_dir)

    # --- messages -------------------------------------------------------------------------------

    def show_message(self, text: str, level: str = "info") -> None:
        self.banner.setProperty("level", level)
        self.banner.style().unpolish(self.banner)
        self.banner.style().polish(self.banner)
        self.banner.setText(text)
        self.banner.show()
        self.statusBar().showMessage(text.split("\n", 1)[0], 10_000)

    def clear_message(self) -> None:
        self.banner.hide()
        self.banner.setText("")

    # --- models ---------------------------------------------------------------------------------

    def _apply_model_setup(self) -> None:
        """Mode availability, Lightning step counts and sizes, from settings until the engine says more."""
        info = self.engine_info
        builtin = info.builtin if info is not None else self.settings.uses_builtin_model
        hints: dict[str, str | None] = {}
        for mode in MODES:
            if info is not None:
                hints[mode] = None if mode in info.available_modes else self._hint(mode)
            else:
                hints[mode] = self._hint(mode)
        self.mode_panel.set_missing(hints)
        self.mode_panel.set_file_steps(
            {
                mode: (info.steps_of_file(mode) if info is not None else file_steps(self.settings, mode))
                for mode in MODES
            }
        )
        if info is not None:
            own: tuple[int, int] | None = info.native_size
        else:
            own = BUILTIN_SIZE if builtin else None
        self.prompt_panel.set_model_size(own, "built-in model" if builtin else "this model's own")
        self.model_note.setVisible(builtin)
        self.style_panel.set_inactive_reason(
            STYLES_OFF_FOR_BUILTIN if self.settings.uses_builtin_model and self.settings.styles else None
        )

    def _hint(self, mode: str) -> str | None:
        roles = missing_roles(self.settings, mode)
        return missing_hint(roles) if roles else None

    def _engine_status(self, text: str) -> None:
        self.engine_label.setText(f"engine: {text}…")

    def _engine_ready(self, info: EngineInfo) -> None:
        self.engine_info = info
        self._apply_model_setup()
        self.engine_label.setText(f"ready · {info.model_label} · {info.device}")
        self.model_panel.set_memory(info.memory)
        if info.memory is not None:
            self.memory_label.setText(memory_summary(info.memory))
            self.memory_label.setToolTip(memory_details(info.memory))
        else:
            self.memory_label.setText("")

    def _engine_failed(self, message: str) -> None:
        self.engine_info = None
        self.engine_label.setText("engine: not loaded")
        self.memory_label.setText("")
        self.model_panel.set_memory(None)
        self.show_message(f"The models could not be loaded: {message}\nFix the paths in Settings.", "error")

    # --- generating -----------------------------------------------------------------------------

    def _aspect(self) -> float:
        width, height = self.prompt_panel.chosen_size()
        return height / width

    def _next_job_id(self) -> int:
        return next(self._job_ids)

    def comparison_request(self) -> GenerationRequest:
        width, height = self.prompt_panel.chosen_size()
        request = GenerationRequest(
            prompt=self.prompt_panel.prompt_text(),
            negative_prompt=self.prompt_panel.negative_text(),
            seeds=self.prompt_panel.seeds(),
            width=width,
            height=height,
            modes=self.mode_panel.chosen(),
            want_previews=True,
            style_weights=self.settings.style_weights(),
        )
        request.validate()
        return request

    def generate(self) -> int | None:
        """Start a comparison; a running one is stopped, as the grid shows only the newest."""
        if self.prompt_panel.live.isChecked():
            self.prompt_panel.live.setChecked(False)
        try:
            request = self.comparison_request()
        except FewstepError as exc:
            self.show_message(str(exc), "error")
            return None
        if self.current_job is not None:
            self.worker.cancel(self.current_job)
        job = Job(id=self._next_job_id(), request=request, save_to=self.settings.resolved_output_dir)
        self.current_job = job.id
        self.last_finished = None
        self.export_button.setEnabled(False)
        self.clear_message()
        self.grid.prepare([m.mode for m in request.modes], request.seeds, aspect=self._aspect())
        self.prompt_panel.set_running(True)
        self.worker.submit(job)
        return job.id

    def cancel(self) -> None:
        self.worker.cancel_all()

    def _job_started(self, job_id: int) -> None:
        if job_id == self.current_job:
            self.statusBar().showMessage("generating…")

    def _progress(self, event: ProgressEvent) -> None:
        if event.job_id == self.current_job:
            self.grid.show_progress(event.progress)

    def _image_ready(self, event: ImageEvent) -> None:
        if event.job_id == self.current_job:
            self.grid.show_result(event.result)

    def _job_finished(self, event: FinishedEvent) -> None:
        if event.job_id != self.current_job:
            return
        self.current_job = None
        self.last_finished = event
        self.prompt_panel.set_running(False)
        self.export_button.setEnabled(True)
        comparison = event.comparison
        total = sum(r.timings.total for r in comparison.results)
        text = f"{len(comparison.results)} images in {total:.2f} s"
        if comparison.skipped:
            text += "; skipped " + ", ".join(f"{s.mode} ({s.reason})" for s in comparison.skipped)
        if event.save_error:
            self.show_message(f"{text}, but {event.save_error}", "error")
        elif event.run_record is not None:
            self.statusBar().showMessage(f"{text}, saved to {self.settings.resolved_output_dir}", 15_000)
            self._add_history(event.run_record)
        else:
            self.statusBar().showMessage(text, 15_000)

    def _add_history(self, path: Path) -> None:
        try:
            record = read_run_record(path, self.settings.resolved_output_dir)
        except RecordError as exc:
            self.show_message(f"the history entry could not be read back: {exc}", "warning")
            return
        tiles = self.grid.finished_tiles()
        self.history.add_run(record, tiles[0].image if tiles else None)

    def _job_cancelled(self, job_id: int) -> None:
        if job_id == self.current_job:
            self.current_job = None
            self.prompt_panel.set_running(False)
            self.grid.mark_unfinished("cancelled")
            self.statusBar().showMessage("cancelled", 5_000)

    def _job_failed(self, event: FailedEvent) -> None:
        if event.job_id == self.current_job:
            self.current_job = None
            self.prompt_panel.set_running(False)
            self.grid.mark_unfinished("failed")
            self.show_message(event.message, "error")

    # --- live mode ------------------------------------------------------------------------------

    def _live_request(self) -> GenerationRequest:
        mode = self.prompt_panel.live_mode_name()
        if mode not in self.mode_panel.available_modes():
            raise RequestError(f"live mode {MODES[mode].title} cannot run: its files are not configured")
        width, height = self.prompt_panel.chosen_size()
        return GenerationRequest(
            prompt=self.prompt_panel.prompt_text(),
            negative_prompt=self.prompt_panel.negative_text(),
            seeds=(self.prompt_panel.seed_value(),),
            width=width,
            height=height,
            modes=(self.mode_panel.settings_for(mode),),
            style_weights=self.settings.style_weights(),
        )

    def _live_toggled(self, on: bool) -> None:
        if on:
            if self.current_job is not None:
                self.worker.cancel(self.current_job)
            try:
                seed = self.prompt_panel.seed_value()
            except RequestError:
                seed = 0  # the render itself will say what is wrong with the seed
            self.grid.prepare([self.prompt_panel.live_mode_name()], [seed], aspect=self._aspect())
            self.clear_message()
        self.live.set_active(on)

    def _live_mode_changed(self) -> None:
        chosen = self.prompt_panel.live_mode_name()
        if chosen != self.settings.live_mode:
            self.settings = replace(self.settings, live_mode=chosen)
            try:
                save_settings(self.settings)
            except OSError as exc:
                self.show_message(f"Settings are used but not saved: {exc.strerror or exc}", "warning")
        if self.live.active:
            self._live_toggled(True)

    def _live_rendered(self, prompt: str, result: ModeResult) -> None:
        tiles = self.grid.tiles
        if len(tiles) != 1 or tiles[0].mode != result.mode or tiles[0].seed != result.seed:
            self.grid.prepare([result.mode], [result.seed], aspect=self._aspect())
        self.grid.tiles[0].show_result(result)
        self.grid.tiles[0].title.setText(f"Live · {MODES[result.mode].title}")
        self.grid.tiles[0].setToolTip(prompt)

    # --- restoring ------------------------------------------------------------------------------

    def apply_restored(self, restored: RestoredSettings) -> None:
        panel = self.prompt_panel
        panel.prompt.setPlainText(restored.prompt)
        panel.negative.setPlainText(restored.negative_prompt)
        if restored.seed is not None:
            panel.set_seed(restored.seed)
            panel.new_seed_each_run.setChecked(False)
            panel.seed_count.setValue(1)
        if restored.width and restored.height:
            panel.select_size(restored.width, restored.height)
            panel.size_chosen_by_artist = True
        if restored.mode is not None:
            self.mode_panel.set_checked([restored.mode])
            self.mode_panel.apply(restored.mode, steps=restored.steps, guidance=restored.guidance)

    def restore_from_file(self, path: Path) -> bool:
        try:
            restored = restore_from_png(path)
        except ParametersError as exc:
            self.show_message(f"Nothing restored from {path.name}: {exc}", "error")
            return False
        self.apply_restored(restored)
        if restored.mode is None:
            note = "prompt, seed and size restored; its sampler has no Fewstep mode"
        elif restored.mode_named:
            note = f"settings restored ({MODES[restored.mode].title})"
        else:
            note = f"settings restored; its sampler maps to {MODES[restored.mode].title}"
        self.show_message(f"{path.name}: {note}.", "info")
        return True

    def restore_run(self, record: RunRecord) -> None:
        request = record.request
        panel = self.prompt_panel
        panel.prompt.setPlainText(request.prompt)
        panel.negative.setPlainText(request.negative_prompt)
        panel.set_seed(request.seeds[0])
        panel.new_seed_each_run.setChecked(False)
        panel.seed_count.setValue(len(request.seeds))
        if request.width and request.height:
            panel.select_size(request.width, request.height)
            panel.size_chosen_by_artist = True
        self.mode_panel.set_checked(m.mode for m in request.modes)
        for settings in request.modes:
            self.mode_panel.apply(settings.mode, steps=settings.steps, guidance=settings.guidance)
        if self.current_job is None and not self.live.active:
            self._show_saved_run(record)
        self.show_message(f"Restored the run of {record.created.replace('T', ' ')}.", "info")

    def _show_saved_run(self, record: RunRecord) -> None:
        modes = list(dict.fromkeys(image.mode for image in record.images))
        seeds = list(dict.fromkeys(image.seed for image in record.images))
        size = record.request.width, record.request.height
        self.grid.prepare(modes, seeds, aspect=size[1] / size[0] if size[0] and size[1] else 1.0)
        for image in record.images:
            if (tile := self.grid.tile(image.mode, image.seed)) is not None:
                tile.show_saved_image(QImage(str(image.png)), image.steps, image.guidance)
        self.grid.mark_unfinished("not in this run")
        self.export_button.setEnabled(False)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        files = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if not files:
            self.show_message("Drop a PNG file made by Fewstep or AUTOMATIC1111.", "error")
            return
        event.acceptProposedAction()
        self.restore_from_file(files[0])

    # --- the rest -------------------------------------------------------------------------------

    def open_tile(self, index: int) -> None:
        self.viewer.show_index(index)
        self.viewer.show()
        self.viewer.raise_()

    def export_current_grid(self) -> Path | None:
        event = self.last_finished
        if event is None:
            return None
        try:
            path = export_grid(self.settings.resolved_output_dir, event, self.engine_info)
        except OSError as exc:
            self.show_message(f"The grid was not exported: {exc.strerror or exc}", "error")
            return None
        self.show_message(f"Grid exported to {path}", "info")
        return path

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            self.apply_settings(dialog.chosen_settings())

    def apply_settings(self, settings: Settings) -> bool:
        """Use and save these settings; True when the engine reloads for them."""
        old = self.settings
        self.settings = settings
        try:
            save_settings(settings)
        except OSError as exc:
            self.show_message(f"Settings are used but not saved: {exc.strerror or exc}", "error")
        config = settings.engine_config()
        reload = config != old.engine_config()
        if reload:
            self.engine_info = None
            self.engine_label.setText("engine: reloading…")
            self.memory_label.setText("")
            self.worker.configure(config)
        self._apply_model_setup()
        self.style_panel.set_styles(settings.styles)
        self.model_panel.set_in_use(in_use(settings))
        if settings.resolved_output_dir != old.resolved_output_dir:
            self.history.reload(settings.resolved_output_dir)
        if settings.resolved_models_dir != old.resolved_models_dir:
            self.model_panel.scan(settings.resolved_models_dir)
        return reload

    # --- the model panel and the styles ---------------------------------------------------------

    def assign_model(self, use: Use, path: Path) -> bool:
        """Give a file one use (a role, the VAE, a style), checked first; the engine reloads with it."""
        try:
            info = check_use(use, path)
        except FewstepError as exc:
            self.show_message(f"{path.name} was not used as {use.label}: {exc}", "error")
            return False
        settings = self.settings
        if use is Use.STYLE:
            if any(style.path == path for style in settings.styles):
                self.show_message(f"{path.name} is already in the style list.", "info")
                return False
            if len(settings.styles) >= MAX_STYLES:
                self.show_message(f"At most {MAX_STYLES} style LoRAs; remove one first.", "error")
                return False
            new = settings.with_style_added(path)
        elif use is Use.VAE:
            new = replace(settings, vae=path)
        else:
            assert use.role is not None
            new = settings.with_model_path(use.role, path)
        if new == settings:
            self.show_message(f"{path.name} is already the {use.label}.", "info")
            return False
        reloads = self.apply_settings(new)
        then = " The engine reloads with it." if reloads else ""
        if use is Use.STYLE and settings.uses_builtin_model:
            then = " " + STYLES_OFF_FOR_BUILTIN
        self.show_message(f"{path.name} ({info.describe()}) is now the {use.label}.{then}", "info")
        return True

    def remove_style(self, index: int) -> None:
        styles = list(self.settings.styles)
        if 0 <= index < len(styles):
            del styles[index]
            self.apply_settings(replace(self.settings, styles=tuple(styles)))

    def _styles_changed(self) -> None:
        """A toggle or a weight: only the next request changes; the engine keeps what it loaded."""
        chosen = self.style_panel.styles()
        if [s.path for s in chosen] != [s.path for s in self.settings.styles]:
            return  # the panel is being rebuilt
        self.apply_settings(replace(self.settings, styles=chosen))
        self.live.edited()

    def _models_folder_chosen(self, folder: Path) -> None:
        self.apply_settings(replace(self.settings, models_dir=folder))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.live.set_active(False)
        self.model_panel.shutdown()
        self.viewer.close()
        self.worker.stop()
        super().closeEvent(event)
