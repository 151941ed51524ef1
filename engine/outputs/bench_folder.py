"""A `fewstep bench` folder, and its one writer.

    DIR/bench.json            the settings the cells were made with (written first)
    DIR/cells/<id>.png        one image per cell, with A1111's parameters in it
    DIR/cells/<id>.json       its record (as `fewstep generate`'s sidecar, with the cell's place and
                              compare's device_type, dtype and model_files), written last: the cell is done
    DIR/thumbs/<id>.jpg       the page's picture of a cell larger than THUMB_SIDE (made once)
    DIR/report.json, cells.csv, index.html   the report, rebuilt whenever every cell is done

Each file is written atomically by the one writer of runs (engine.outputs.run_writer), the record after
the image, so a kill at any
moment leaves every cell done (both files) or not done (no record; a stray image is rewritten). A rerun
therefore resumes by listing the records. Only this writer touches the folder: Ray actors (#24) return
results to it instead of writing.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from engine.contract.request import GenerationRequest, ModeResult
from engine.outputs.atomic import atomic_write, atomic_write_text
from engine.outputs.bench_cells import Cell
from engine.outputs.comparison_files import RunContext
from engine.outputs.run_writer import write_bench_cell
from engine.outputs.trilemma import Image

FORMAT = "fewstep-bench-1"
SETTINGS_FILE = "bench.json"
CELLS = "cells"
THUMBS = "thumbs"
THUMB_SIDE = 160  # pixels on the long side of the page's thumbnails


class BenchFolderError(Exception):
    """The folder cannot take this bench; the message is the one line the user sees."""


def _read_settings(folder: Path) -> Mapping[str, Any] | None:
    try:
        data = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or not isinstance(data.get("settings"), dict)
    ):
        return None
    settings: Mapping[str, Any] = data["settings"]
    return settings


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return sorted(key for key in {*old, *new} if old.get(key) != new.get(key))


@dataclass(frozen=True)
class BenchFolder:
    root: Path

    @property
    def cells(self) -> Path:
        return self.root / CELLS

    @classmethod
    def open(cls, root: Path, settings: Mapping[str, Any], *, overwrite: bool) -> BenchFolder:
        """The folder for a bench of these settings: new, the same bench to resume, or (with overwrite)
        an earlier bench or other files replaced. BenchFolderError where it cannot be."""
        settings = json.loads(json.dumps(settings))  # as the file will hold it: tuples become lists
        if root.exists() and not root.is_dir():
            raise BenchFolderError(f"--out {root} is a file; bench writes a folder")
        entries = [e for e in root.iterdir() if not e.name.startswith(".")] if root.exists() else []
        if entries:
            old = _read_settings(root)
            if old == settings:
                return cls(root)
            if not overwrite:
                if old is None:
                    raise BenchFolderError(
                        f"--out {root} holds files that are not a Fewstep bench; give a new or empty"
                        " folder, or add --overwrite to replace it"
                    )
                changed = ", ".join(_differences(old, settings))
                raise BenchFolderError(
                    f"--out {root} holds a bench with other settings ({changed}); rerun it as it was to"
                    " resume, give a new folder, or add --overwrite to start it afresh"
                )
            shutil.rmtree(root)
        root.mkdir(parents=True, exist_ok=True)
        document = {"format": FORMAT, "settings": settings}
        atomic_write_text(root / SETTINGS_FILE, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        return cls(root)

    def done(self) -> set[str]:
        """The ids of the cells whose record and image are both in place."""
        if not self.cells.is_dir():
            return set()
        return {record.stem for record in self.cells.glob("*.json") if (record.with_suffix(".png")).is_file()}

    def image_path(self, cell: Cell) -> Path:
        return self.cells / f"{cell.id}.png"

    def record_path(self, cell: Cell) -> Path:
        return self.cells / f"{cell.id}.json"

    def write_cell(
        self,
        cell: Cell,
        category: str,
        request: GenerationRequest,
        result: ModeResult,
        context: RunContext,
        worker: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The cell's image, then its record (which marks it done), by the one writer of runs.
        worker: where a Ray actor made it (fewstep bench --ray), kept in the record."""
        identity: dict[str, Any] = {"cell": cell.id, "prompt_index": cell.prompt_index, "category": category}
        if worker is not None:
            identity["worker"] = dict(worker)
        # As `fewstep compare`'s report.json has them (engine.outputs.run_writer.record_additions): the
        # report takes them from the records, which may come from several processes and nodes.
        identity |= {
            "device_type": context.device_type,
            "dtype": context.dtype,
            "model_files": [record.as_json() for record in context.model_files],
        }
        return write_bench_cell(self.image_path(cell), result, request, context, identity)

    def read_image(self, cell_id: str) -> Image:
        """A done cell's image as the engine returned it: 8-bit RGB (a PNG is lossless)."""
        with PILImage.open(self.cells / f"{cell_id}.png") as picture:
            return np.asarray(picture.convert("RGB"))

    def thumbnail_name(self, cell_id: str, size: Sequence[int]) -> str:
        """The page's picture of a cell of this size (width, height): the image itself when small."""
        return f"{CELLS}/{cell_id}.png" if max(size) <= THUMB_SIDE else f"{THUMBS}/{cell_id}.jpg"

    def thumbnail(self, cell_id: str, image: Image) -> str:
        """The page's picture of a cell, written once where it is not the image itself."""
        name = self.thumbnail_name(cell_id, (image.shape[1], image.shape[0]))
        path = self.root / name
        if name.startswith(THUMBS) and not path.is_file():
            picture = PILImage.fromarray(np.asarray(image)[:, :, :3])
            picture.thumbnail((THUMB_SIDE, THUMB_SIDE))
            buffer = io.BytesIO()
            picture.save(buffer, format="JPEG", quality=85)
            atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
        return name

    def records(self) -> dict[str, dict[str, Any]]:
        """Every done cell's record, by id."""
        out = {}
        for cell_id in sorted(self.done()):
            out[cell_id] = json.loads((self.cells / f"{cell_id}.json").read_text(encoding="utf-8"))
        return out
