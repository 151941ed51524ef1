"""The main window: it lays out the panels and wires them to the jobs and the model controller.

It keeps no engine state of its own: the settings and the loaded engine's report live in
ModelController, the running comparison in ComparisonJobs.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QMainWindow, QSplitter

from engine.contract.errors import FewstepError, RequestError
from engine.contract.info import EngineInfo
from engine.outputs.png_text import InfotextError
from gui.state.bench_reader import BenchView, NotABenchError
from gui.state.comparison_jobs import ComparisonJobs, finished_summary
from gui.state.image_store import RunRecord, RunStyle
from gui.state.jobs import EventKind, FinishedRun, WorkerEvent
from gui.state.live_mode import LiveRenderer
from gui.state.model_controller import ModelController
from gui.state.model_setup import ModelAvailability, Use, in_use
from gui.state.output_folder import History, OutputFolder
from gui.state.placement_view import plan_request
from gui.state.png_drop import DroppedPng, PngSettingsReader
from gui.state.settings import Settings
from gui.state.trilemma_meter import TrilemmaMeter
from gui.state.worker import EngineWorker
from gui.widgets import request_form as requests
from gui.widgets.bench_browser import BenchBrowser
from gui.widgets.engine_status import EngineStatus
from gui.widgets.image_view import ImageViewer
from gui.widgets.settings_dialog import SettingsDialog
from gui.widgets.window_columns import LEFT_WIDTH, ComparisonArea, ControlColumn, SideTabs

RIGHT_WIDTH = 230


class MainWindow(QMainWindow):
    png_restore_done = Signal(bool)  # a dropped PNG was read (off the GUI thread) and applied, or not

    def __init__(
        self, settings: Settings, worker: EngineWorker, *, settings_problem: str | None = None
    ) -> None:
        super().__init__()
        self.worker = worker
        self.models = ModelController(settings, worker, parent=self)
        self.jobs = ComparisonJobs(worker, parent=self)
        self.setWindowTitle("Fewstep")
        self.setAcceptDrops(True)
        self.output = OutputFolder(self)
        self.png_reader = PngSettingsReader(self)
        self.png_reader.finished.connect(self._png_read)
        # A saved run's record -> its output folder, until the record holds the trilemma and is read back.
        self._records_root: dict[Path, Path] = {}
        self.resize(1480, 900)

        self.controls = ControlColumn()
        self.prompt_panel = self.controls.prompt_panel
        self.mode_panel = self.controls.mode_panel
        self.style_panel = self.controls.style_panel
        self.center = ComparisonArea()
        self.grid = self.center.grid
        self.trilemma_panel = self.center.trilemma_panel
        self.trilemma_meter = TrilemmaMeter(self)
        self.banner = self.center.banner
        self.model_note = self.center.model_note
        self.export_button = self.center.export_button
        self.export_folder_button = self.center.export_folder_button
        self.side_tabs = SideTabs()
        self.history = self.side_tabs.history
        self.model_panel = self.side_tabs.model_panel
        self.viewer = ImageViewer(self.grid, self)
        self.engine_status = EngineStatus()
        self.engine_label = self.engine_status.engine_label
        self.memory_label = self.engine_status.memory_label
        self.live = LiveRenderer(
            worker,
            lambda: requests.live_request(self.prompt_panel, self.mode_panel, self.models.style_weights()),
            self.jobs.next_job_id,
            save_to=lambda: self.settings.resolved_output_dir,
            parent=self,
        )
        self._build_layout()
        self._connect()
        self._show_availability(self.models.availability())
        self.style_panel.set_styles(settings.styles)
        self.model_panel.set_in_use(in_use(settings))
        self.model_panel.show_plan(plan_request(settings, None))
        self.prompt_panel.set_live_mode(settings.live_mode)
        self.prompt_panel.set_running(False)
        if settings_problem:
            self.show_message(settings_problem, "warning")

    @property
    def settings(self) -> Settings:
        return self.models.settings

    @property
    def engine_info(self) -> EngineInfo | None:
        return self.models.engine_info

    # --- layout ---------------------------------------------------------------------------------

    def _build_layout(self) -> None:
        splitter = QSplitter()
        splitter.addWidget(self.controls)
        splitter.addWidget(self.center)
        splitter.addWidget(self.side_tabs)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([LEFT_WIDTH + 20, 900, RIGHT_WIDTH])
        self.setCentralWidget(splitter)
        self.statusBar().addPermanentWidget(self.engine_status)
        settings_action = QAction("Settings…", self)
        settings_action.setShortcut(QKeySequence("Ctrl+,"))
        settings_action.triggered.connect(self.open_settings)
        toolbar = self.addToolBar("Main")
        toolbar.setMovable(False)
        toolbar.addAction(settings_action)
        bench_action = QAction("Open bench…", self)
        bench_action.setToolTip(
            "Browse a folder written by fewstep bench: its table, then each prompt's grid"
        )
        bench_action.triggered.connect(lambda: self.open_bench())
        toolbar.addAction(bench_action)

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
        self.style_panel.remove_requested.connect(self.models.remove_style)
        self.style_panel.add_requested.connect(lambda path: self.assign_model(Use.STYLE, path))
        self.model_panel.assign_requested.connect(self.assign_model)
        self.model_panel.folder_chosen.connect(self.models.set_models_dir)
        self.model_panel.refused.connect(lambda message: self.show_message(message, "error"))
        for sequence in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(sequence), self, self.generate)
        QShortcut(QKeySequence("Escape"), self, self.cancel)
        self.grid.tile_activated.connect(self.open_tile)
        self.history.run_chosen.connect(self.restore_run)
        output = self.output
        self.history.follow(output)
        output.history_loaded.connect(self._say_recovery)
        output.record_failed.connect(
            lambda _path, message: self.show_message(
                f"the history entry could not be read back: {message}", "warning"
            )
        )
        output.grid_exported.connect(lambda path: self.show_message(f"Grid exported to {path}", "info"))
        output.export_failed.connect(lambda message: self.show_message(message, "error"))
        self.export_button.clicked.connect(self.export_current_grid)
        self.export_folder_button.clicked.connect(self.export_current_folder)
        self.trilemma_meter.exported.connect(lambda path: self.show_message(f"Comparison exported to {path}"))
        self.trilemma_meter.export_failed.connect(lambda message: self.show_message(message, "error"))
        self.live.rendered.connect(
            lambda prompt, result: self.grid.show_live_result(prompt, result, self._aspect())
        )
        self.live.failed.connect(lambda message: self.show_message(message, "error"))
        self.worker.reported.connect(self._worker_event)
        models = self.models
        models.message.connect(self.show_message)
        models.availability_changed.connect(self._show_availability)
        models.settings_changed.connect(self._settings_changed)
        models.engine_reloading.connect(self.engine_status.show_reloading)
        models.engine_ready.connect(self._engine_ready)
        models.engine_failed.connect(self._engine_failed)
        self.jobs.reported.connect(self._comparison_event)
        self.trilemma_meter.measured.connect(self.trilemma_panel.show_trilemma)
        self.trilemma_meter.failed.connect(lambda message: self.show_message(message, "warning"))
        self.trilemma_meter.recorded.connect(self._read_back_run)

    def start(self) -> None:
        """Start loading the engine, reading the history and scanning the models; called once the window
        is on screen. Each runs on a thread of its own, so the window answers from the first moment."""
        self.worker.start()
        self.output.open(self.settings.resolved_output_dir)
        self.model_panel.scan(self.settings.resolved_models_dir)

    def _say_recovery(self, history: History) -> None:
        """What opening the output folder put right of a crashed run (unless another window uses it)."""
        recovery = history.recovery
        if recovery is not None and (recovery.adopted_images or recovery.unreadable_images):
            text = f"{recovery.adopted_images} images of an interrupted run were added to the history"
            if recovery.unreadable_images:
                text += f"; {recovery.unreadable_images} could not be read and were left as they are"
            self.show_message(text + ".", "warning" if recovery.unreadable_images else "info")

    # --- messages -------------------------------------------------------------------------------

    def show_message(self, text: str, level: str = "info") -> None:
        self.banner.show_message(text, level)
        self.statusBar().showMessage(text.split("\n", 1)[0], 10_000)

    # --- the models and the settings ------------------------------------------------------------

    def apply_settings(self, settings: Settings) -> bool:
        """Use and save these settings; True when the engine reloads for them."""
        return self.models.apply_settings(settings)

    def assign_model(self, use: Use, path: Path) -> None:
        """Returns at once: the file is checked off the GUI thread, then `self.models.assigned` is emitted."""
        self.models.assign(use, path)

    def open_bench(self, folder: Path | None = None) -> BenchBrowser | None:
        """A bench folder (asked for when not given) in a window of its own; None if there is none."""
        if folder is None:
            chosen = QFileDialog.getExistingDirectory(self, "Open a fewstep bench folder")
            if not chosen:
                return None
            folder = Path(chosen)
        try:
            view = BenchView.load(folder)
        except NotABenchError as exc:
            self.show_message(str(exc), "error")
            return None
        browser = BenchBrowser(view, self)
        browser.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        browser.show()
        return browser

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            self.apply_settings(dialog.chosen_settings())
        dialog.deleteLater()  # a dialog per opening; its checks' thread ends with it

    def _show_availability(self, availability: ModelAvailability) -> None:
        self.mode_panel.set_missing(availability.missing)
        self.mode_panel.set_file_steps(availability.file_steps)
        label = "built-in model" if availability.builtin else "this model's own"
        self.prompt_panel.set_model_size(availability.native_size, label)
        self.model_note.setVisible(availability.builtin)
        self.prompt_panel.set_pocket_grammar(availability.builtin)
        self.style_panel.set_inactive_reason(availability.styles_inactive)

    def _settings_changed(self, settings: Settings, old: Settings) -> None:
        self.style_panel.set_styles(settings.styles)
        self.model_panel.set_in_use(in_use(settings))
        self.model_panel.show_plan(plan_request(settings, self.models.engine_info))
        if settings.resolved_output_dir != old.resolved_output_dir:
            self.output.open(settings.resolved_output_dir)
        if settings.resolved_models_dir != old.resolved_models_dir:
            self.model_panel.scan(settings.resolved_models_dir)

    def _styles_changed(self) -> None:
        if self.models.set_style_choices(self.style_panel.styles()):
            self.live.edited()

    def _engine_ready(self, info: EngineInfo) -> None:
        self.grid.style_names = {style.adapter: style.file_name for style in info.styles}
        self.engine_status.show_ready(info)
        self.model_panel.set_memory(info.memory)
        self.model_panel.show_plan(plan_request(self.settings, info))

    def _engine_failed(self, message: str) -> None:
        self.engine_status.show_failed()
        self.model_panel.set_memory(None)
        self.show_message(f"The models could not be loaded: {message}\nFix the paths in Settings.", "error")

    # --- generating -----------------------------------------------------------------------------

    def _aspect(self) -> float:
        return requests.image_aspect(self.prompt_panel)

    def generate(self) -> int | None:
        """Start a comparison; a running one is stopped, as the grid shows only the newest."""
        if self.prompt_panel.live.isChecked():
            self.prompt_panel.live.setChecked(False)
        try:
            request = requests.comparison_request(
                self.prompt_panel, self.mode_panel, self.models.style_weights()
            )
        except FewstepError as exc:
            self.show_message(str(exc), "error")
            return None
        self.jobs.stop_current()
        self.export_button.setEnabled(False)
        self.export_folder_button.setEnabled(False)
        self.banner.clear_message()
        self.grid.prepare([m.mode for m in request.modes], request.seeds, aspect=self._aspect())
        self.trilemma_panel.prepare([m.mode for m in request.modes])
        self.trilemma_meter.begin([m.mode for m in request.modes])
        self.prompt_panel.set_running(True)
        return self.jobs.submit(request, self.settings.resolved_output_dir)

    def cancel(self) -> None:
        self.jobs.cancel_all()

    def _worker_event(self, event: WorkerEvent) -> None:
        if event.kind is EventKind.STATUS:
            self.engine_status.show_step(event.message)

    def _comparison_event(self, event: WorkerEvent) -> None:
        """The current comparison's events (gui.state.comparison_jobs passes on no other)."""
        kind = event.kind
        if kind is EventKind.STARTED:
            self.statusBar().showMessage("generating…")
        elif kind is EventKind.PROGRESS and event.progress is not None:
            self.grid.show_progress(event.progress)
        elif kind is EventKind.IMAGE and event.result is not None:
            self.grid.show_result(event.result)
            self.trilemma_meter.add(event.result)
        elif kind is EventKind.FINISHED and event.finished is not None:
            self._comparison_finished(event.finished)
        elif kind is EventKind.CANCELLED:
            self._comparison_cancelled()
        elif kind is EventKind.FAILED:
            self._comparison_failed(event.message)

    def _comparison_finished(self, event: FinishedRun) -> None:
        self.prompt_panel.set_running(False)
        self.export_button.setEnabled(True)
        self.export_folder_button.setEnabled(event.context is not None)
        text = finished_summary(event.comparison)
        if event.save_error:
            self.show_message(f"{text}, but {event.save_error}", "error")
        elif event.run_record is not None:
            self.statusBar().showMessage(f"{text}, saved to {self.settings.resolved_output_dir}", 15_000)
            self._add_history(event, event.run_record)
        else:
            self.statusBar().showMessage(text, 15_000)

    def _add_history(self, event: FinishedRun, record: Path) -> None:
        """The trilemma meter puts its numbers into the run's record, then (`recorded`) the record is
        read back (off the GUI thread) for the history list, with the first finished image as its
        thumbnail, taken now: the grid may show another run by then."""
        tiles = self.grid.finished_tiles()
        self.history.expect_run(record, tiles[0].image if tiles else None)
        self._records_root[record] = self.settings.resolved_output_dir
        self.trilemma_meter.record(event)

    def _read_back_run(self, path: Path) -> None:
        root = self._records_root.pop(path, None)
        if root is not None:
            self.output.read_record(path, root)

    def _comparison_cancelled(self) -> None:
        self.prompt_panel.set_running(False)
        self.grid.mark_unfinished("cancelled")
        self.statusBar().showMessage("cancelled", 5_000)

    def _comparison_failed(self, message: str) -> None:
        self.prompt_panel.set_running(False)
        self.grid.mark_unfinished("failed")
        self.show_message(message, "error")

    # --- live mode ------------------------------------------------------------------------------

    def _live_toggled(self, on: bool) -> None:
        if on:
            self.jobs.stop_current()
            try:
                seed = self.prompt_panel.seed_value()
            except RequestError:
                seed = 0  # the render itself will say what is wrong with the seed
            self.grid.prepare([self.prompt_panel.live_mode_name()], [seed], aspect=self._aspect())
            self.trilemma_panel.clear("Live renders are not measured; Generate measures a comparison.")
            self.banner.clear_message()
        self.live.set_active(on)

    def _live_mode_changed(self) -> None:
        self.models.set_live_mode(self.prompt_panel.live_mode_name())
        if self.live.active:
            self._live_toggled(True)

    # --- restoring ------------------------------------------------------------------------------

    def restore_from_file(self, path: Path) -> None:
        """Read a PNG's settings on a pool thread; png_restore_done follows once they are applied."""
        configured = [style.path for style in self.settings.styles]
        self.png_reader.read(path, configured, self.settings.resolved_models_dir)

    def _png_read(self, path: Path, result: DroppedPng | InfotextError) -> None:
        if isinstance(result, InfotextError):
            self.show_message(f"Nothing restored from {path.name}: {result}", "error")
            self.png_restore_done.emit(False)
            return
        restored = result.settings
        requests.apply_png_settings(self.prompt_panel, self.mode_panel, restored)
        lines = [f"{path.name}: {requests.png_restore_note(restored)}"]
        if (match := result.styles) is not None:
            runs = [RunStyle(path=file, weight=weight) for file, weight in match.found]
            left_out = self.models.restore_styles(runs, add_missing=True)
            lines += [f"Style LoRA {name} was not found in the models folder" for name in match.missing]
            lines += [
                f"Style LoRA {file.stem}: at most the styles the list holds; left out" for file in left_out
            ]
        warn = len(lines) > 1
        self.show_message("\n".join(lines), "warning" if warn else "info")
        self.png_restore_done.emit(True)

    def restore_run(self, record: RunRecord) -> None:
        requests.apply_run_request(self.prompt_panel, self.mode_panel, record.request)
        missing: tuple[Path, ...] = ()
        if record.styles is not None:
            missing = self.models.restore_styles(record.styles)
        if not self.jobs.running and not self.live.active:
            self.grid.show_saved_run(record)
            if record.trilemma is not None:
                self.trilemma_panel.show_trilemma(record.trilemma)
            else:
                self.trilemma_panel.clear(
                    "Measured when a comparison runs; Generate to measure this one again."
                )
            self.export_button.setEnabled(False)
            self.export_folder_button.setEnabled(False)
        text = f"Restored the run of {record.created.replace('T', ' ')}"
        if missing:
            names = ", ".join(path.stem for path in missing)
            said = f"style {names} is" if len(missing) == 1 else f"styles {names} are"
            text += f"; its {said} not configured now, so left out"
        self.show_message(f"{text}.", "warning" if missing else "info")

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

    def export_current_grid(self) -> bool:
        """Queue the newest comparison's grid for writing (off the GUI thread); `output.grid_exported`
        says where."""
        event = self.jobs.last_finished
        if event is None:
            return False
        self.output.export_grid(self.settings.resolved_output_dir, event, self.engine_info)
        self.statusBar().showMessage("exporting the grid…", 5_000)
        return True

    def export_current_folder(self) -> bool:
        """Queue the newest comparison's folder for writing (off the GUI thread); `exported` says where."""
        event = self.jobs.last_finished
        if event is None or event.context is None:
            return False
        self.trilemma_meter.export(self.settings.resolved_output_dir, event)
        self.statusBar().showMessage("exporting the comparison folder…", 5_000)
        return True

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.live.set_active(False)
        self.model_panel.shutdown()
        self.png_reader.shutdown()
        self.models.shutdown()
        self.history.shutdown()
        self.grid.shutdown()
        self.output.shutdown()
        self.viewer.close()
        self.trilemma_meter.stop()
        self.worker.stop()
        super().closeEvent(event)
