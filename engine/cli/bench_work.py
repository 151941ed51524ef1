"""What a bench's cells need and what each gives back, as plain data: torch-free, so `fewstep bench`
answers bad input at once, and picklable, so it travels to and from Ray actors (engine.cli.bench_ray)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.contract.request import GenerationRequest, ModeResult, ModeSettings
from engine.outputs.bench_cells import Cell
from engine.outputs.comparison_files import RunContext


@dataclass(frozen=True)
class CellWork:
    """What every cell of one bench depends on, besides its prompt index, mode and seed (picklable:
    it travels to the Ray actors)."""

    prompts: tuple[tuple[str, str], ...]  # each prompt's text and negative prompt
    modes: Mapping[str, ModeSettings]
    size: tuple[int, int] | None


@dataclass(frozen=True)
class CellDone:
    """One finished cell on its way to the writer: what was asked, the image, how and where it was made
    (worker: None for this process, else the Ray actor's node and share, as the record keeps it)."""

    cell: Cell
    request: GenerationRequest
    result: ModeResult
    context: RunContext
    worker: Mapping[str, Any] | None = None
