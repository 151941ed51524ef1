"""A finished bench's report beside its cells: report.json, cells.csv, thumbnails and index.html.

Rebuilt from the cells' records and images alone, so a resumed bench, or one whose cells came from
several processes, reports exactly as one uninterrupted run would. Each file is written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import platform
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from engine.outputs.atomic import atomic_write, atomic_write_text
from engine.outputs.bench_adherence import AdherenceScorer
from engine.outputs.bench_folder import BenchFolder
from engine.outputs.bench_html import bench_page
from engine.outputs.bench_metrics import bench_trilemma, measure_cells
from engine.outputs.comparison_files import version_of
from engine.outputs.trilemma import Image

THUMB_SIDE = 160  # pixels on the long side of the page's thumbnails
THUMBS = "thumbs"
CSV_COLUMNS = (
    "cell",
    "prompt_index",
    "category",
    "mode",
    "seed",
    "steps",
    "guidance",
    "seconds",
    "ssim_to_reference",
    "psnr_to_reference",
    "detail",
    "adherence",
    "file",
)


def _thumbnail(folder: BenchFolder, cell_id: str, image: Image) -> str:
    """The page's picture of a cell: the image itself when small, else a thumbnail (made once)."""
    if max(image.shape[:2]) <= THUMB_SIDE:
        return f"cells/{cell_id}.png"
    name = f"{THUMBS}/{cell_id}.jpg"
    path = folder.root / name
    if not path.is_file():
        picture = PILImage.fromarray(np.asarray(image)[:, :, :3])
        picture.thumbnail((THUMB_SIDE, THUMB_SIDE))
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=85)
        atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
    return name


def write_bench_report(
    folder: BenchFolder,
    settings: Mapping[str, Any],
    scorer: AdherenceScorer | None,
    *,
    not_measured: str,
    on_cell: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Measure every cell and write the report; returns report.json's content.
    not_measured: why adherence was not measured, when scorer is None."""
    records = folder.records()
    prompts: Sequence[Mapping[str, str]] = settings["prompts"]
    modes = [m["mode"] for m in settings["modes"]]
    thumbs: dict[str, str] = {}

    def load(cell_id: str) -> Image:
        with PILImage.open(folder.cells / f"{cell_id}.png") as picture:
            image = np.asarray(picture.convert("RGB"))
        thumbs[cell_id] = _thumbnail(folder, cell_id, image)
        return image

    measured = measure_cells(records, load, modes, [p["prompt"] for p in prompts], scorer, on_cell)
    if scorer is None:
        measured.adherence_note = not_measured
    figures = bench_trilemma(measured, [p["category"] for p in prompts])
    first = next(iter(records.values()), {})
    report: dict[str, Any] = {
        "format": "fewstep-bench-1",
        "prompts": list(prompts),
        "modes": list(settings["modes"]),
        "size": first.get("size"),
        "seeds": list(settings["seeds"]),
        "model": first.get("model"),
        "device": first.get("device"),
        "cells": len(records),
        "cells_csv": "cells.csv",
        "page": "index.html",
        **figures,
        "versions": {
            name: version_of(name)
            for name in ("fewstep", "torch", "diffusers", "transformers", "peft", "safetensors")
        }
        | {"python": platform.python_version()},
    }
    atomic_write_text(folder.root / "report.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for cell in sorted(measured.cells, key=lambda c: c.cell):
        writer.writerow(cell.as_row())
    atomic_write_text(folder.root / "cells.csv", table.getvalue())
    page = bench_page(report, measured.cells, thumbs)
    atomic_write_text(folder.root / "index.html", page)
    return report


def report_path(folder: Path) -> Path:
    return folder / "report.json"
