"""A finished bench's report beside its cells: report.json, cells.csv, thumbnails and index.html.

Rebuilt from the cells' records and images alone, so a resumed bench, or one whose cells came from
several processes, reports exactly as one uninterrupted run would. The measures the bench's writer took
as it saved the cells (engine.outputs.bench_live_metrics) spare reading those images again: they are
the same numbers from the same pixels. Each file is written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import platform
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.outputs.atomic import atomic_write_text
from engine.outputs.bench_adherence import AdherenceScorer
from engine.outputs.bench_folder import BenchFolder
from engine.outputs.bench_html import bench_page
from engine.outputs.bench_metrics import KnownMeasures, bench_trilemma, measure_cells
from engine.outputs.comparison_files import version_of
from engine.outputs.trilemma import Image

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


def workers_of(records: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Where the cells were made, and how many each: this process (runner "local", with its device and
    threads), or a Ray actor with its node, GPUs, CPUs and torch threads (fewstep bench --ray)."""
    counts: dict[str, int] = {}
    for record in records.values():
        worker = dict(record.get("worker") or {"runner": "local"}) | {"device": record.get("device")}
        key = json.dumps(worker, sort_keys=True)
        counts[key] = counts.get(key, 0) + 1
    return [json.loads(key) | {"cells": count} for key, count in sorted(counts.items())]


def _common(records: Mapping[str, Mapping[str, Any]], key: str) -> Any:
    """The one value every record that has `key` gives it; None where they differ (the workers then
    say which cells ran how) or none has it (cells saved by a Fewstep before the key)."""
    values = {json.dumps(record[key], sort_keys=True) for record in records.values() if key in record}
    return json.loads(values.pop()) if len(values) == 1 else None


def model_files_of(records: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """compare's model_files over every cell: each file record once, in the order first met. One list
    when one engine made every cell; a cluster whose nodes keep the files at other paths lists each."""
    seen: dict[str, dict[str, Any]] = {}
    for record in records.values():
        for entry in record.get("model_files") or ():
            seen.setdefault(json.dumps(entry, sort_keys=True), dict(entry))
    return list(seen.values())


def write_bench_report(
    folder: BenchFolder,
    settings: Mapping[str, Any],
    scorer: AdherenceScorer | None,
    *,
    not_measured: str,
    on_cell: Callable[[], None] | None = None,
    known: KnownMeasures | None = None,
) -> dict[str, Any]:
    """Measure every cell and write the report; returns report.json's content.
    not_measured: why adherence was not measured, when scorer is None. known: the measures taken
    while the cells ran (engine.outputs.bench_live_metrics); the rest are measured from the files."""
    records = folder.records()
    prompts: Sequence[Mapping[str, str]] = settings["prompts"]
    modes = [m["mode"] for m in settings["modes"]]
    thumbs: dict[str, str] = {}

    def load(cell_id: str) -> Image:
        image = folder.read_image(cell_id)
        thumbs[cell_id] = folder.thumbnail(cell_id, image)
        return image

    texts = [p["prompt"] for p in prompts]
    measured = measure_cells(records, load, modes, texts, scorer, on_cell, known)
    for cell_id, record in records.items():  # the cells measured without reading their image
        if cell_id not in thumbs:
            name = folder.thumbnail_name(cell_id, record["size"])
            if (folder.root / name).is_file():
                thumbs[cell_id] = name
            else:
                load(cell_id)  # makes it
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
        # compare's keys, with compare's meaning; from the cells' records (None where cells differ).
        "device_type": _common(records, "device_type"),
        "dtype": _common(records, "dtype"),
        "model_files": model_files_of(records),
        "cells": len(records),
        "workers": workers_of(records),
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
