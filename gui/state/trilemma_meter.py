"""Measures the trilemma as tiles finish, on a thread of its own: never the GUI thread, and never the
engine's, so that SSIM on a 1024 px image (a second or two) does not delay the next mode.

It also writes exported comparison folders (PNG encoding and the report take seconds), reusing the
numbers it measured, and puts the numbers into the finished run's history record
(engine.outputs.run_writer.add_trilemma), so that restoring the run shows them again. Each comparison gets a fresh TrilemmaAccumulator; images of an older comparison still queued when a
new one starts are dropped, so the panel only ever shows the newest comparison's numbers.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal

from engine.contract.request import ModeResult
from engine.outputs.run_writer import add_trilemma
from engine.outputs.trilemma import Trilemma, TrilemmaAccumulator, image_seconds
from gui.state.export import export_comparison
from gui.state.jobs import FinishedRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Start:
    generation: int
    modes: tuple[str, ...]


@dataclass(frozen=True)
class _Image:
    generation: int
    result: ModeResult


@dataclass(frozen=True)
class _Export:
    root: Path
    event: FinishedRun


@dataclass(frozen=True)
class _Record:
    path: Path
    event: FinishedRun


class TrilemmaMeter(QThread):
    """start(modes) for each comparison, add(result) for each tile; `measured` carries each new table."""

    measured = Signal(object)  # Trilemma
    failed = Signal(str)
    exported = Signal(object)  # Path of the comparison folder
    export_failed = Signal(str)
    recorded = Signal(object)  # Path of a run record, once it holds the trilemma (or cannot)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._condition = threading.Condition()
        self._queue: deque[_Start | _Image | _Export | _Record] = deque()
        self._generation = 0
        self._stopping = False
        self._busy = False
        self.latest: Trilemma | None = None  # the last table measured, read on the GUI thread

    # --- called from the GUI thread --------------------------------------------------------------

    def begin(self, modes: Sequence[str]) -> None:
        """A new comparison of these modes (in the grid's order); what is queued for the last one is dropped."""
        with self._condition:
            self._generation += 1
            # A finished run's record still gets its numbers (or is passed on without them).
            kept = [item for item in self._queue if isinstance(item, _Record)]
            self._queue.clear()
            self._queue.extend(kept)
            self._queue.append(_Start(self._generation, tuple(modes)))
            self._condition.notify()
        self.latest = None
        if not self.isRunning():
            self.start()

    def add(self, result: ModeResult) -> None:
        with self._condition:
            self._queue.append(_Image(self._generation, result))
            self._condition.notify()

    def export(self, root: Path, event: FinishedRun) -> None:
        """Write the comparison's folder under root, after the images queued before it are measured."""
        with self._condition:
            self._queue.append(_Export(root, event))
            self._condition.notify()
        if not self.isRunning():
            self.start()

    def record(self, event: FinishedRun) -> None:
        """Put the numbers into the run's record once its queued images are measured; `recorded` follows."""
        if event.run_record is None:
            return
        with self._condition:
            self._queue.append(_Record(event.run_record, event))
            self._condition.notify()
        if not self.isRunning():
            self.start()

    def idle(self) -> bool:
        with self._condition:
            return not self._queue and not self._busy

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._queue.clear()
            self._condition.notify()
        self.wait(30_000)

    # --- the meter's thread ----------------------------------------------------------------------

    def run(self) -> None:
        accumulator: TrilemmaAccumulator | None = None
        generation = -1
        while True:
            with self._condition:
                while not self._stopping and not self._queue:
                    self._condition.wait()
                if self._stopping:
                    return
                item = self._queue.popleft()
                self._busy = True
                current = self._generation
            try:
                if isinstance(item, _Export):
                    self._export(item, self.latest)
                elif isinstance(item, _Record):
                    self._record(item, self.latest)
                elif isinstance(item, _Start):
                    accumulator, generation = TrilemmaAccumulator(item.modes), item.generation
                elif accumulator is not None and item.generation == generation == current:
                    result = item.result
                    seconds = image_seconds(result.timings.denoising, result.timings.decode)
                    accumulator.add(result.mode, result.seed, result.image, seconds, result.lora_route)
                    table = accumulator.result()
                    with self._condition:
                        fresh = self._generation == generation
                    if fresh:
                        self.latest = table
                        self.measured.emit(table)
            except Exception as exc:  # a metric failing must never take the window down
                log.exception("measuring the trilemma failed")
                self.failed.emit(f"the trilemma could not be measured: {type(exc).__name__}: {exc}")
            finally:
                with self._condition:
                    self._busy = False

    def _record(self, task: _Record, latest: Trilemma | None) -> None:
        ours = _measured_for(task.event, latest)
        try:
            if ours is not None:
                add_trilemma(task.path, ours)
        except (OSError, ValueError) as exc:
            log.warning("the trilemma was not added to %s: %s", task.path, exc)
        finally:
            self.recorded.emit(task.path)

    def _export(self, task: _Export, latest: Trilemma | None) -> None:
        try:
            folder = export_comparison(task.root, task.event, _measured_for(task.event, latest))
        except (OSError, ValueError) as exc:
            self.export_failed.emit(
                f"The comparison was not exported: {getattr(exc, 'strerror', None) or exc}"
            )
            return
        self.exported.emit(folder)


def _measured_for(event: FinishedRun, latest: Trilemma | None) -> Trilemma | None:
    """The numbers already measured, when they are of exactly this run's images; else None."""
    results = event.comparison.results
    if latest is None:
        return None
    measured = sum(row.images for row in latest.rows)
    same = (
        measured == len(results)
        and latest.seeds == tuple(sorted({r.seed for r in results}))
        and {row.mode for row in latest.rows if row.images} == {r.mode for r in results}
    )
    return latest if same else None
