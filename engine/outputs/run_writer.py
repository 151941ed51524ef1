"""The one writer of saved runs: every file a run leaves, for the CLI, the GUI's worker and exports.

Four shapes, the same bytes for the same result (each PNG's `parameters` text and sidecar come from
engine.outputs.comparison_files):
- `fewstep generate`: one PNG and its JSON sidecar (write_image_files).
- `fewstep compare --out` and the GUI's export: a comparison folder of images, grid.png, report.json
  and reproduce.py (write_comparison; write_comparison_folder builds it beside --out and swaps it in).
- the GUI's output folder: a RunWriter per run saves each image as it finishes and writes the run's
  history record last. Layout under the output folder:
      2026-11-28/20261128-101502-j3-lcm-seed0.png   the image, with `parameters` text
      2026-11-28/20261128-101502-j3-lcm-seed0.json  its sidecar: timings, scheduler, timesteps, prompt
      history/20261128-101502-j3.json               the run: request, images and trilemma, written last
  Every file there is written atomically and never over an existing one, so a crash at any moment
  leaves whole files only, and no run can replace an earlier run's image.
- `fewstep bench`: one cell at a time, its PNG then its record (write_bench_cell); the bench folder
  (engine.outputs.bench_folder) says where, and which cells are done.

Encoding a 1024 px PNG takes long enough to stall a window: the GUI calls this from its worker thread.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image

from engine.contract.request import ComparisonResult, GenerationRequest, ModeResult, ModeSettings
from engine.outputs.atomic import atomic_write, atomic_write_text, replaced_folder
from engine.outputs.comparison_files import (
    RunContext,
    SavedImage,
    comparison_grid,
    image_name,
    image_sidecar,
    png_bytes,
    png_parameters,
    png_parameters_for,
    result_record,
    version_of,
)
from engine.outputs.reproduce import SCRIPT_NAME, replay_recipe, write_reproduce
from engine.outputs.trilemma import Trilemma, trilemma_of

HISTORY_FOLDER = "history"
RECORD_FORMAT = "fewstep-run-1"
MAX_NAME_TRIES = 1000


def json_bytes(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def write_png(path: Path, image: Image.Image, parameters: str | None = None) -> None:
    data = png_bytes(image, parameters)
    atomic_write(path, lambda handle: handle.write(data))


def write_new_file(path: Path, data: bytes) -> Path:
    """Write to path, or to path-1, path-2, ... if a file of that name exists: never over one."""
    candidate = path
    for attempt in range(1, MAX_NAME_TRIES + 1):
        try:
            atomic_write(candidate, lambda handle: handle.write(data), overwrite=False)
        except FileExistsError:
            candidate = path.with_name(f"{path.stem}-{attempt}{path.suffix}")
            continue
        return candidate
    raise FileExistsError(f"{path} and {MAX_NAME_TRIES} numbered variants already exist")


# --- fewstep generate ------------------------------------------------------------------------------


def write_image_files(
    path: Path, result: ModeResult, request: GenerationRequest, context: RunContext
) -> Path:
    """`fewstep generate`'s files: the PNG with its text, and its JSON sidecar (returned) beside it."""
    height, width = result.image.shape[:2]
    parameters = png_parameters_for(result, request, width, height, context)
    write_png(path, Image.fromarray(result.image), parameters)
    sidecar = path.with_suffix(".json")
    data = image_sidecar(result, request, context, parameters=parameters, file=path.name)
    atomic_write_text(sidecar, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return sidecar


# --- fewstep bench: one cell ------------------------------------------------------------------------


def write_bench_cell(
    png: Path,
    result: ModeResult,
    request: GenerationRequest,
    context: RunContext,
    cell: Mapping[str, Any],
) -> dict[str, Any]:
    """One bench cell: the PNG, then its record (`cell`'s keys, then generate's sidecar) beside it,
    written last because its presence marks the cell done. A PNG left by a writer killed before its
    record is replaced: the cell runs again, from the same seed."""
    height, width = result.image.shape[:2]
    parameters = png_parameters_for(result, request, width, height, context)
    write_png(png, Image.fromarray(result.image), parameters)
    record = dict(cell) | image_sidecar(result, request, context, parameters=parameters, file=png.name)
    atomic_write_text(png.with_suffix(".json"), json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return record


# --- comparison folders: fewstep compare --out, and the GUI's export --------------------------------


# What report.json adds for a record anyone can check and replay: the trilemma, the runtime, the
# model files with their hashes, and reproduce.py beside the images.
def record_additions(
    out_dir: Path,
    comparison: ComparisonResult,
    context: RunContext,
    files: dict[str, str],
    trilemma: Trilemma | None = None,
) -> dict[str, Any]:
    """report.json's new keys; writes reproduce.py when the context says how to load the files.

    `files` maps "mode/seed" to each image's file name; `trilemma`, when already measured (the GUI
    measures it as tiles finish), is not measured again."""
    measured = trilemma if trilemma is not None else trilemma_of(comparison)
    additions: dict[str, Any] = {
        "trilemma": measured.as_json(),
        "device_type": context.device_type,
        "dtype": context.dtype,
        "model_files": [record.as_json() for record in context.model_files],
    }
    if context.replay is not None:
        recipe = replay_recipe(comparison, context.replay, files)
        write_reproduce(out_dir, recipe)
        additions["reproduce"] = {"script": SCRIPT_NAME, "cannot_replay": recipe["cannot_replay"]}
    else:
        additions["reproduce"] = None
    return additions


def write_comparison(
    out_dir: Path,
    comparison: ComparisonResult,
    context: RunContext,
    *,
    extra: Mapping[str, Any] | None = None,
    trilemma: Trilemma | None = None,
) -> dict[str, Any]:
    """grid.png, one PNG per image, reproduce.py and report.json, the report written once and last;
    extra: more report keys; trilemma: the numbers when already measured (else measured here)."""
    several_seeds = len(comparison.request.seeds) > 1
    records = []
    names: dict[str, str] = {}
    for result in comparison.results:
        name = image_name(result, several_seeds)
        names[f"{result.mode}/{result.seed}"] = name
        write_png(out_dir / name, Image.fromarray(result.image), png_parameters(result, comparison, context))
        records.append(result_record(result, name))
    write_png(out_dir / "grid.png", comparison_grid(comparison, context.note))
    report = {
        "prompt": comparison.request.prompt,
        "negative_prompt": comparison.request.negative_prompt,
        "size": [comparison.width, comparison.height],
        "seeds": list(comparison.request.seeds),
        "model": context.model_label,
        "note": context.note,
        "device": context.device,
        "text_encoding_seconds_total": round(comparison.text_encoding_total, 6),
        "results": records,
        "skipped": [{"mode": s.mode, "reason": s.reason} for s in comparison.skipped],
        "grid": "grid.png",
        "versions": {
            name: version_of(name)
            for name in ("fewstep", "torch", "diffusers", "transformers", "peft", "safetensors")
        }
        | {"python": platform.python_version()},
    }
    report |= record_additions(out_dir, comparison, context, names, trilemma)
    report |= dict(extra or {})
    atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    return report


def write_comparison_folder(
    out: Path,
    comparison: ComparisonResult,
    context: RunContext,
    extra: Mapping[str, Any] | None = None,
    *,
    trilemma: Trilemma | None = None,
) -> dict[str, Any]:
    """`fewstep compare --out`: the whole folder or nothing. write_comparison fills a temporary folder
    beside `out`, which then replaces `out` whole (engine.outputs.atomic.replaced_folder): a kill at any
    moment leaves the earlier comparison or the new one, never one run's report beside another's images."""
    with replaced_folder(out) as folder:
        return write_comparison(folder, comparison, context, extra=extra, trilemma=trilemma)


# --- the GUI's output folder: one run, image by image, its history record last ---------------------


def new_run_id(job_id: int, now: datetime | None = None) -> str:
    return f"{(now or datetime.now()).strftime('%Y%m%d-%H%M%S')}-j{job_id}"


def trilemma_record(trilemma: Trilemma) -> dict[str, Any]:
    """A history record's `trilemma`: report.json's form, plus what the panel needs to show it again
    (the seeds measured and each mode's image count)."""
    return trilemma.as_json() | {
        "seeds": list(trilemma.seeds),
        "images": {row.mode: row.images for row in trilemma.rows},
    }


def mode_record(settings: ModeSettings) -> dict[str, Any]:
    """A mode as the run asked for it; eta only where it was given, so that other records stay as they were."""
    eta = {"eta": settings.eta} if settings.eta is not None else {}
    return {"mode": settings.mode, "steps": settings.steps, "guidance": settings.guidance, **eta}


class RunWriter:
    """One run of the GUI under its output folder: save() each image as it finishes, then finish()
    writes the history record that names them. Used on one thread (the GUI's worker)."""

    def __init__(
        self,
        root: Path,
        run_id: str,
        request: GenerationRequest,
        context: RunContext,
        *,
        style_files: Mapping[str, Path] | None = None,
    ) -> None:
        """style_files: each style adapter's file (gui.state.jobs.EngineConfig.style_files), to name styles by."""
        self.root = root
        self.run_id = run_id
        self.request = request
        self.context = context
        self._style_files = dict(style_files or {})
        self.saved: list[tuple[ModeResult, SavedImage]] = []

    def save(self, result: ModeResult) -> SavedImage:
        """The PNG with its `parameters` text and its JSON sidecar, in the run's day folder."""
        height, width = result.image.shape[:2]
        parameters = png_parameters_for(result, self.request, width, height, self.context)
        run_id = self.run_id
        folder = self.root / f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}"  # one folder per day
        png = write_new_file(
            folder / f"{run_id}-{result.mode}-seed{result.seed}.png",
            png_bytes(Image.fromarray(result.image), parameters),
        )
        sidecar_data = image_sidecar(
            result, self.request, self.context, parameters=parameters, file=png.name, run_id=run_id
        )
        sidecar = write_new_file(png.with_suffix(".json"), json_bytes(sidecar_data))
        saved = SavedImage(png=png, sidecar=sidecar)
        self.saved.append((result, saved))
        return saved

    def finish(self, status: str, trilemma: Trilemma | None = None) -> Path | None:
        """The history record (status "finished" or "cancelled"), last; None when no image was saved."""
        if not self.saved:
            return None
        return write_new_file(
            self.root / HISTORY_FOLDER / f"{self.run_id}.json", json_bytes(self._record(status, trilemma))
        )

    def _styles(self, weights: Iterable[tuple[str, float]]) -> list[dict[str, Any]]:
        files = self._style_files
        return [{"file": str(files[name]), "weight": weight} for name, weight in weights if name in files]

    def _record(self, status: str, trilemma: Trilemma | None) -> dict[str, Any]:
        request = self.request
        data: dict[str, Any] = {
            "format": RECORD_FORMAT,
            "run": self.run_id,
            "created": datetime.now().isoformat(timespec="seconds"),
            "status": status,
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "seeds": list(request.seeds),
            "size": [request.width, request.height] if request.width and request.height else None,
            "modes": [mode_record(m) for m in request.modes],
            "model": self.context.model_label,
            "styles": None if request.style_weights is None else self._styles(request.style_weights),
            "images": [
                {
                    "mode": result.mode,
                    "seed": result.seed,
                    "steps": result.steps,
                    "guidance": result.guidance,
                    "png": str(saved.png.relative_to(self.root)),
                    "styles": self._styles(result.styles),
                }
                for result, saved in self.saved
            ],
        }
        if trilemma is not None:
            data["trilemma"] = trilemma_record(trilemma)
        return data


def add_trilemma(record: Path, trilemma: Trilemma) -> None:
    """Put the trilemma, measured after the run's record was written (the GUI measures it on a thread
    of its own, never the engine's), into that record: replaced whole, atomically."""
    data = json.loads(record.read_bytes().decode("utf-8"))
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        raise ValueError(f"{record.name} is not a Fewstep run record")
    data["trilemma"] = trilemma_record(trilemma)
    payload = json_bytes(data)
    atomic_write(record, lambda handle: handle.write(payload))
