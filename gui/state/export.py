"""Exports: the grid as one labelled PNG, for sharing a comparison as a single file; or the whole
comparison folder, as the CLI writes it, with its report and reproduce.py."""

from __future__ import annotations

from pathlib import Path

from engine.contract.info import EngineInfo
from engine.outputs.comparison_files import comparison_grid, png_bytes
from engine.outputs.run_writer import new_run_id, write_comparison, write_new_file
from engine.outputs.trilemma import Trilemma
from engine.pocket.model import builtin_note
from gui.state.jobs import FinishedRun

GRIDS_FOLDER = "grids"


def export_grid(root: Path, event: FinishedRun, info: EngineInfo | None) -> Path:
    """root/grids/<run>-grid.png, never over an existing file."""
    comparison = event.comparison
    note = builtin_note() if info is not None and info.builtin else ""
    title = "\n".join(line for line in (comparison.request.prompt.split("\n", 1)[0][:200], note) if line)
    image = comparison_grid(comparison, title)
    run_id = event.run_record.stem if event.run_record is not None else new_run_id(event.job_id)
    return write_new_file(root / GRIDS_FOLDER / f"{run_id}-grid.png", png_bytes(image))


COMPARISONS_FOLDER = "comparisons"
MAX_FOLDER_TRIES = 1000


def new_folder(path: Path) -> Path:
    """Make path, or path-1, path-2, ... if it exists: an export never writes into an older one."""
    candidate = path
    for attempt in range(1, MAX_FOLDER_TRIES + 1):
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            candidate = path.with_name(f"{path.name}-{attempt}")
            continue
        return candidate
    raise FileExistsError(f"{path} and {MAX_FOLDER_TRIES} numbered variants already exist")


def export_comparison(root: Path, event: FinishedRun, trilemma: Trilemma | None) -> Path:
    """root/comparisons/<run>/ as the CLI's --out writes it: grid.png, one PNG per image, report.json
    with the trilemma, the model files and their hashes, and reproduce.py. Slow (PNG encoding, and the
    trilemma when not given): run it off the GUI thread."""
    if event.context is None:
        raise ValueError("this comparison has no record of its models; run it again to export it")
    run_id = event.run_record.stem if event.run_record is not None else new_run_id(event.job_id)
    folder = new_folder(root / COMPARISONS_FOLDER / run_id)
    write_comparison(folder, event.comparison, event.context, trilemma=trilemma)
    return folder
