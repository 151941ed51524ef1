"""The CLI's progress on stderr: a step counter where stderr is a terminal, and a notice when a run
is likely to take minutes, so that a long run is never silent."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from engine.contract.request import Progress

# A run this long gets a notice with the estimate, on a terminal or not.
LONG_RUN_SECONDS = 60.0
# Pixels above which a CPU run is warned about before its first step, which alone may take minutes:
# four times SDXL's native 1024x1024.
CPU_WARN_PIXELS = 4 * 1024 * 1024


def size_warning(device_type: str, width: int, height: int, native: tuple[int, int]) -> str | None:
    """A notice, before anything runs, for a size that is likely to take minutes on this device."""
    pixels = width * height
    if device_type == "cpu" and pixels > max(CPU_WARN_PIXELS, 4 * native[0] * native[1]):
        return (
            f"{width}x{height} on the CPU is likely to take minutes per image (the model's own size is"
            f" {native[0]}x{native[1]}); Ctrl+C stops it"
        )
    return None


class TerminalProgress:
    """Called with each Progress of a run; `say` prints one line on stderr."""

    def __init__(
        self,
        stream: TextIO,
        total_steps: int,
        say: Callable[[str], None],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._stream = stream
        self._live = stream.isatty()
        self._total = max(total_steps, 1)
        self._say = say
        self._clock = clock
        self._started = clock()
        self._done = 0
        self._estimated = False

    def __call__(self, progress: Progress) -> None:
        self._done += 1
        if self._live:
            end = "\n" if progress.step == progress.total else ""
            self._stream.write(
                f"\r  {progress.mode} seed {progress.seed}: step {progress.step}/{progress.total}"
                f"  ({self._done}/{self._total} in all){end}"
            )
            self._stream.flush()
        if not self._estimated:
            self._estimated = True
            per_step = self._clock() - self._started
            remaining = per_step * (self._total - self._done)
            if remaining > LONG_RUN_SECONDS:
                if self._live:
                    self._stream.write("\n")
                self._say(
                    f"about {remaining / 60:.0f} min to go ({per_step:.1f} s for the first step,"
                    f" {self._total - self._done} more); Ctrl+C stops it"
                )
