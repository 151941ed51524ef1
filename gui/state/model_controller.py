"""The settings in use and the engine built from them.

Every change of model files, styles or settings goes through here: it is checked, saved, and sent to
the worker when the engine must reload for it. The window and the panels only subscribe to the
signals and show what they say; none of them writes engine configuration.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.contract.info import EngineInfo
from engine.files.model_files import ModelFile
from gui.state.background import Background
from gui.state.image_store import RunStyle
from gui.state.jobs import EventKind, WorkerEvent
from gui.state.model_setup import (
    STYLES_OFF_FOR_BUILTIN,
    ModelAvailability,
    Use,
    checked_use,
    model_availability,
)
from gui.state.settings import MAX_STYLES, Settings, StyleSetting, save_settings
from gui.state.worker import EngineWorker


class ModelController(QObject):
    settings_changed = Signal(object, object)  # the new Settings, the old ones
    availability_changed = Signal(object)  # ModelAvailability
    engine_reloading = Signal()
    engine_ready = Signal(object)  # EngineInfo, once engine_info holds it
    engine_failed = Signal(str)
    message = Signal(str, str)  # text, level ("info", "warning", "error")
    assigned = Signal(bool)  # an assign() was answered: True when the settings changed

    def __init__(self, settings: Settings, worker: EngineWorker, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.worker = worker
        self.engine_info: EngineInfo | None = None
        # One pool thread: assignments are checked and applied in the order they were asked for.
        self._checks = Background(self)
        worker.reported.connect(self._worker_event)

    def availability(self) -> ModelAvailability:
        return model_availability(self.settings, self.engine_info)

    def style_weights(self) -> tuple[tuple[str, float], ...] | None:
        return self.settings.style_weights()

    def apply_settings(self, settings: Settings) -> bool:
        """Use and save these settings; True when the engine reloads for them."""
        old = self.settings
        self.settings = settings
        try:
            save_settings(settings)
        except OSError as exc:
            self.message.emit(f"Settings are used but not saved: {exc.strerror or exc}", "error")
        config = settings.engine_config()
        reload = config != old.engine_config()
        if reload:
            self.engine_info = None
            self.engine_reloading.emit()
            self.worker.configure(config)
        self.availability_changed.emit(self.availability())
        self.settings_changed.emit(settings, old)
        return reload

    def assign(self, use: Use, path: Path) -> None:
        """Give a file one use (a role, the VAE, a style), checked first; the engine reloads with it.

        Returns at once: the check reads the file's header (or config.json) on a pool thread, since a
        file on a slow or hung network share would otherwise block the window, and the settings change
        when the answer comes back. `assigned` says how it ended; a message says why.
        """
        self._checks.submit(
            lambda: checked_use(use, path),
            lambda answer: self.assigned.emit(self._checked(use, path, answer)),
            lambda exc: self.assigned.emit(self._checked(use, path, exc)),
        )

    def _checked(self, use: Use, path: Path, answer: ModelFile | Exception) -> bool:
        """The check's answer, on the GUI thread: the settings change, or a message says why not."""
        if isinstance(answer, Exception):
            self.message.emit(f"{path.name} was not used as {use.label}: {answer}", "error")
            return False
        settings = self.settings
        if use == Use.STYLE:
            if any(style.path == path for style in settings.styles):
                self.message.emit(f"{path.name} is already in the style list.", "info")
                return False
            if len(settings.styles) >= MAX_STYLES:
                self.message.emit(f"At most {MAX_STYLES} style LoRAs; remove one first.", "error")
                return False
            new = settings.with_style_added(path)
        elif use == Use.VAE:
            new = replace(settings, vae=path)
        else:
            assert use.role is not None
            new = settings.with_model_path(use.role, path)
        if new == settings:
            self.message.emit(f"{path.name} is already the {use.label}.", "info")
            return False
        reloads = self.apply_settings(new)
        then = " The engine reloads with it." if reloads else ""
        if use == Use.STYLE and settings.uses_builtin_model:
            then = " " + STYLES_OFF_FOR_BUILTIN
        self.message.emit(f"{path.name} ({answer.describe()}) is now the {use.label}.{then}", "info")
        return True

    @property
    def checking(self) -> bool:
        """An assignment whose file is still being checked."""
        return self._checks.busy

    def shutdown(self) -> None:
        """The window closes: answers of checks still running are dropped."""
        self._checks.shutdown()

    def remove_style(self, index: int) -> None:
        styles = list(self.settings.styles)
        if 0 <= index < len(styles):
            del styles[index]
            self.apply_settings(replace(self.settings, styles=tuple(styles)))

    def set_style_choices(self, chosen: tuple[StyleSetting, ...]) -> bool:
        """Toggles and weights of the same files: only the next request changes, nothing reloads.

        False, and nothing changed, when the files differ (a style panel that is being rebuilt).
        """
        if [s.path for s in chosen] != [s.path for s in self.settings.styles]:
            return False
        self.apply_settings(replace(self.settings, styles=chosen))
        return True

    def restore_styles(
        self, run_styles: Iterable[RunStyle], *, add_missing: bool = False
    ) -> tuple[Path, ...]:
        """The style weights of a past run, on the styles configured now (matched by file path).

        A configured style the run did not use is turned off, as it was then. With add_missing, a file
        the run applied that is not configured is added to the list (the engine reloads), up to
        MAX_STYLES. Returns the files the run applied that are not configured now.
        """
        weights = {style.path: style.weight for style in run_styles}
        restored = [
            replace(style, weight=weights[style.path], enabled=True)
            if weights.get(style.path, 0.0) != 0.0
            else replace(style, enabled=False)
            for style in self.settings.styles
        ]
        if add_missing:
            for path, weight in weights.items():
                if weight != 0.0 and all(s.path != path for s in restored) and len(restored) < MAX_STYLES:
                    restored.append(StyleSetting(path=path, weight=weight))
        if tuple(restored) != self.settings.styles:
            self.apply_settings(replace(self.settings, styles=tuple(restored)))
        configured = {style.path for style in self.settings.styles}
        return tuple(path for path, weight in weights.items() if weight != 0.0 and path not in configured)

    def set_models_dir(self, folder: Path) -> None:
        self.apply_settings(replace(self.settings, models_dir=folder))

    def set_live_mode(self, mode: str) -> None:
        """Remembered for the next session; nothing else depends on it."""
        if mode == self.settings.live_mode:
            return
        self.settings = replace(self.settings, live_mode=mode)
        try:
            save_settings(self.settings)
        except OSError as exc:
            self.message.emit(f"Settings are used but not saved: {exc.strerror or exc}", "warning")

    def _worker_event(self, event: WorkerEvent) -> None:
        if event.kind is EventKind.ENGINE_READY and event.info is not None:
            self._engine_ready(event.info)
        elif event.kind is EventKind.ENGINE_FAILED:
            self._engine_failed(event.message)

    def _engine_ready(self, info: EngineInfo) -> None:
        self.engine_info = info
        self.availability_changed.emit(self.availability())
        self.engine_ready.emit(info)

    def _engine_failed(self, message: str) -> None:
        self.engine_info = None
        self.engine_failed.emit(message)
