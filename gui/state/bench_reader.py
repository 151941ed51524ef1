"""A `fewstep bench` folder as the window shows it: the trilemma table with intervals, and each
prompt's grid of images (modes down, seeds across).

Read from report.json alone (the layout engine.outputs.bench_folder writes): no torch, no metrics.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.outputs.bench_columns import COLUMNS
from engine.outputs.trilemma import format_value

REPORT = "report.json"


class NotABenchError(Exception):
    """The folder holds no readable bench report; the message says why, in one line."""


def _number(key: str, value: float) -> str:
    if key == "adherence":
        return f"{value:.3f}" if value <= 1.0 else f"{value:.1f}"
    if key == "clip_diversity":
        return f"{value:.3f}"
    return format_value(key, value)


def cell_text(key: str, value: float | None, bounds: Any) -> str:
    """One number and its interval, e.g. "0.912 (0.885 – 0.935)"; "–" where not measured."""
    if value is None:
        return "–"
    low, high = bounds if isinstance(bounds, list) and len(bounds) == 2 else (None, None)
    if low is None or high is None:
        return _number(key, value)
    return f"{_number(key, value)} ({_number(key, low)} – {_number(key, high)})"


@dataclass(frozen=True)
class BenchView:
    folder: Path
    modes: tuple[str, ...]
    seeds: tuple[int, ...]
    prompts: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # the measured ones (adherence always: "–" says not measured)
    table: tuple[tuple[str, ...], ...]  # a row per mode: its cells' texts
    adherence_note: str

    @classmethod
    def load(cls, folder: Path) -> BenchView:
        try:
            report = json.loads((folder / REPORT).read_text(encoding="utf-8"))
            trilemma: Mapping[str, Any] = report["trilemma"]
            modes = tuple(m["mode"] for m in report["modes"])
            values, intervals = trilemma["modes"], trilemma["intervals"]
            prompts = tuple(p["prompt"] for p in report["prompts"])
            seeds = tuple(int(s) for s in report["seeds"])
        except FileNotFoundError:
            raise NotABenchError(f"{folder} has no {REPORT}: not a finished fewstep bench") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NotABenchError(
                f"{folder / REPORT} is not a bench report ({type(exc).__name__}: {exc})"
            ) from None
        columns = tuple(
            (key, label)
            for key, label in COLUMNS
            if key == "adherence" or any(values[m].get(key) is not None for m in modes)
        )
        table = tuple(
            tuple(cell_text(key, values[m].get(key), intervals[m].get(key)) for key, _ in columns)
            for m in modes
        )
        note = trilemma.get("adherence", {}).get("note") or ""
        return cls(folder, modes, seeds, prompts, columns, table, note)

    def image(self, prompt_index: int, mode: str, seed: int) -> Path:
        """The cell's image (engine.outputs.bench_cells.Cell.id names it)."""
        return self.folder / "cells" / f"p{prompt_index:05d}-{mode}-s{seed}.png"
