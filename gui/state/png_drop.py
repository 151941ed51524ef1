"""A dropped PNG's settings, read off the GUI thread.

A dropped "PNG" can be anything: a FIFO, which blocks its reader until a writer appears, or a file
on a slow or hung network share. The read, the parse and the search for the style LoRAs it names
(a listing of the models folder) run on a pool thread of their own; the result comes back to the GUI
thread as a queued signal, and the window stays responsive whatever the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.contract.modes import MODES
from engine.outputs.infotext import Infotext
from engine.outputs.png_info import read_settings
from engine.outputs.png_text import InfotextError
from gui.state.background import Background
from gui.state.png_styles import StyleMatch, match_styles


@dataclass(frozen=True)
class DroppedPng:
    settings: Infotext
    styles: StyleMatch | None  # None where the image says nothing about styles


def read_dropped_png(path: Path, configured: Sequence[Path], models_dir: Path | None) -> DroppedPng:
    """The settings of a PNG and the style LoRAs they name; InfotextError when there are none."""
    settings = read_settings(path)
    # Styles act on the base UNet only: an image of a distilled UNet says nothing about them.
    if settings.styles or (settings.mode is not None and MODES[settings.mode].on_base_unet):
        return DroppedPng(settings, match_styles(settings.styles, configured, models_dir))
    return DroppedPng(settings, None)


class PngSettingsReader(QObject):
    """read() returns at once; `finished` (path, DroppedPng or InfotextError) follows on the GUI thread."""

    finished = Signal(object, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._background = Background(self)

    def read(self, path: Path, configured: Sequence[Path], models_dir: Path | None) -> None:
        styles = tuple(configured)

        def failed(exc: Exception) -> None:
            if not isinstance(exc, InfotextError):
                exc = InfotextError(f"cannot read {path.name}: {type(exc).__name__}: {exc}")
            self.finished.emit(path, exc)

        self._background.submit(
            lambda: read_dropped_png(path, styles, models_dir),
            lambda dropped: self.finished.emit(path, dropped),
            failed,
        )

    def shutdown(self) -> None:
        self._background.shutdown()
