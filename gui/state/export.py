"""The grid as one labelled PNG, for sharing a comparison as a single file."""

from __future__ import annotations

from pathlib import Path

from engine.contract.info import EngineInfo
from engine.files.builtin import builtin_note
from engine.outputs.comparison_files import comparison_grid, png_bytes
from gui.state.image_store import new_run_id, write_new_file
from gui.state.jobs import FinishedEvent

GRIDS_FOLDER = "grids"


def export_grid(root: Path, event: FinishedEvent, info: EngineInfo | None) -> Path:
    """root/grids/<run>-grid.png, never over an existing file."""
    comparison = event.comparison
    note = builtin_note() if info is not None and info.builtin else ""
    title = "\n".join(line for line in (comparison.request.prompt.split("\n", 1)[0][:200], note) if line)
    image = comparison_grid(comparison, title)
    run_id = event.run_record.stem if event.run_record is not None else new_run_id(event.job_id)
    return write_new_file(root / GRIDS_FOLDER / f"{run_id}-grid.png", png_bytes(image))
