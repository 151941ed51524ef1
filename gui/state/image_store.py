"""Every finished image on disk: a PNG with A1111 `parameters`, a JSON sidecar, and a history entry per run.

Layout under the output folder:
    2026-11-28/20261128-101502-j3-lcm-seed0.png   the image, with `parameters` text
    2026-11-28/20261128-101502-j3-lcm-seed0.json  its sidecar: timings, scheduler, timesteps, prompt
    history/20261128-101502-j3.json               the run: request and images, written last

Every file is written atomically and never over an existing one (engine.outputs.atomic), so a crash at any
moment leaves whole files only, and no run can replace an earlier run's image. Called from the
worker thread: encoding a 1024 px PNG takes long enough to stall the window.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image

from engine.contract.limits import MAX_SEED
from engine.contract.request import GenerationRequest, ModeResult, ModeSettings
from engine.files.safe_paths import open_regular
from engine.outputs.atomic import atomic_write
from engine.outputs.comparison_files import RunContext, image_sidecar, png_bytes, png_parameters_for
from gui.state.jobs import SavedImage

HISTORY_FOLDER = "history"
RECORD_FORMAT = "fewstep-run-1"
MAX_RECORD_BYTES = 1 << 20
MAX_NAME_TRIES = 1000


@dataclass(frozen=True, kw_only=True)
class RunStyle:
    """A style LoRA of a run: its file as the settings named it, and its weight (0: off)."""

    path: Path
    weight: float


@dataclass(frozen=True, kw_only=True)
class HistoryImage:
    mode: str
    seed: int
    steps: int
    guidance: float
    png: Path
    styles: tuple[RunStyle, ...] = ()  # those applied to this image, as ModeResult.styles


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One history entry: what was asked for and which images it left."""

    path: Path
    run_id: str
    created: str
    status: str  # "finished" or "cancelled"
    request: GenerationRequest
    images: tuple[HistoryImage, ...]
    model: str
    # Every loaded style at the weight the run asked for; None where the record does not say (an
    # older record, or the built-in model, which takes no styles).
    styles: tuple[RunStyle, ...] | None = None

    @property
    def title(self) -> str:
        first_line = self.request.prompt.strip().split("\n", 1)[0] or "(no prompt)"
        return first_line if len(first_line) <= 60 else first_line[:57] + "…"


def new_run_id(job_id: int, now: datetime | None = None) -> str:
    return f"{(now or datetime.now()).strftime('%Y%m%d-%H%M%S')}-j{job_id}"


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


def save_image(
    root: Path, run_id: str, request: GenerationRequest, result: ModeResult, context: RunContext
) -> SavedImage:
    height, width = result.image.shape[:2]
    parameters = png_parameters_for(result, request, width, height, context)
    folder = root / f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}"  # one folder per day
    png = write_new_file(
        folder / f"{run_id}-{result.mode}-seed{result.seed}.png",
        png_bytes(Image.fromarray(result.image), parameters),
    )
    sidecar_data = image_sidecar(
        result, request, context, parameters=parameters, file=png.name, run_id=run_id
    )
    sidecar = write_new_file(png.with_suffix(".json"), _json_bytes(sidecar_data))
    return SavedImage(png=png, sidecar=sidecar)


def _json_bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def write_run_record(
    root: Path,
    run_id: str,
    request: GenerationRequest,
    images: Iterable[tuple[ModeResult, SavedImage]],
    *,
    status: str,
    context: RunContext,
    style_files: Mapping[str, Path] | None = None,
) -> Path:
    """style_files: each style adapter's file (gui.state.jobs.EngineConfig.style_files), to name styles by."""
    files = style_files or {}

    def styles_json(weights: Iterable[tuple[str, float]]) -> list[dict[str, Any]]:
        return [{"file": str(files[name]), "weight": weight} for name, weight in weights if name in files]

    data = {
        "format": RECORD_FORMAT,
        "run": run_id,
        "created": datetime.now().isoformat(timespec="seconds"),
        "status": status,
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "seeds": list(request.seeds),
        "size": [request.width, request.height] if request.width and request.height else None,
        "modes": [{"mode": m.mode, "steps": m.steps, "guidance": m.guidance} for m in request.modes],
        "model": context.model_label,
        "styles": None if request.style_weights is None else styles_json(request.style_weights),
        "images": [
            {
                "mode": result.mode,
                "seed": result.seed,
                "steps": result.steps,
                "guidance": result.guidance,
                "png": str(saved.png.relative_to(root)),
                "styles": styles_json(result.styles),
            }
            for result, saved in images
        ],
    }
    return write_new_file(root / HISTORY_FOLDER / f"{run_id}.json", _json_bytes(data))


# --- reading history back -------------------------------------------------------------------------


class RecordError(ValueError):
    pass


def _typed(data: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise RecordError(f"{key} is missing or malformed")
    return value


def _mode_settings(items: Sequence[Any]) -> tuple[ModeSettings, ...]:
    modes = []
    for item in items:
        if not isinstance(item, dict):
            raise RecordError("a mode entry is malformed")
        steps, guidance = item.get("steps"), item.get("guidance")
        if steps is not None and not isinstance(steps, int):
            raise RecordError("a mode's steps are malformed")
        if guidance is not None and not isinstance(guidance, int | float):
            raise RecordError("a mode's guidance is malformed")
        modes.append(
            ModeSettings(
                mode=_typed(item, "mode", str),
                steps=steps,
                guidance=None if guidance is None else float(guidance),
            )
        )
    return tuple(modes)


def _run_styles(items: object) -> tuple[RunStyle, ...]:
    if not isinstance(items, list):
        raise RecordError("styles are malformed")
    styles = []
    for item in items:
        if not isinstance(item, dict):
            raise RecordError("a style entry is malformed")
        file, weight = item.get("file"), item.get("weight")
        if not isinstance(file, str) or not file:
            raise RecordError("a style's file is malformed")
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise RecordError("a style's weight is malformed")
        styles.append(RunStyle(path=Path(file), weight=float(weight)))
    return tuple(styles)


def run_record_from_json(path: Path, root: Path, data: object) -> RunRecord:
    """A history entry, checked: its files are the user's, but may be damaged or edited by hand."""
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        raise RecordError("not a Fewstep run record")
    size = data.get("size")
    width = height = None
    if size is not None:
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) for s in size)):
            raise RecordError("size is malformed")
        width, height = size
    seeds = _typed(data, "seeds", list)
    if not all(isinstance(s, int) and 0 <= s <= MAX_SEED for s in seeds):
        raise RecordError("seeds are malformed")
    request = GenerationRequest(
        prompt=_typed(data, "prompt", str),
        negative_prompt=_typed(data, "negative_prompt", str),
        seeds=tuple(seeds),
        width=width,
        height=height,
        modes=_mode_settings(_typed(data, "modes", list)),
    )
    try:
        request.validate()
    except ValueError as exc:
        raise RecordError(str(exc)) from None
    images = []
    for item in _typed(data, "images", list):
        if not isinstance(item, dict):
            raise RecordError("an image entry is malformed")
        png = (root / _typed(item, "png", str)).resolve()
        if not png.is_relative_to(root.resolve()):
            raise RecordError("an image lies outside the output folder")
        images.append(
            HistoryImage(
                mode=_typed(item, "mode", str),
                seed=_typed(item, "seed", int),
                steps=_typed(item, "steps", int),
                guidance=float(_typed(item, "guidance", (int, float))),
                png=png,
                styles=_run_styles(item.get("styles", [])),
            )
        )
    styles = data.get("styles")
    return RunRecord(
        path=path,
        run_id=_typed(data, "run", str),
        created=_typed(data, "created", str),
        status=_typed(data, "status", str),
        request=request,
        images=tuple(images),
        model=_typed(data, "model", str),
        styles=None if styles is None else _run_styles(styles),
    )


def read_run_record(path: Path, root: Path) -> RunRecord:
    try:
        with open_regular(path) as handle:  # a FIFO among the records is refused, never waited on
            raw = handle.read(MAX_RECORD_BYTES + 1)
        if len(raw) > MAX_RECORD_BYTES:
            raise RecordError("the record is too large")
        data = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"cannot read {path.name}: {exc}") from None
    return run_record_from_json(path, root, data)


def load_history(root: Path, limit: int = 200) -> tuple[list[RunRecord], int]:
    """The newest runs first, and how many entries were unreadable (skipped, never fatal)."""
    folder = root / HISTORY_FOLDER
    try:
        # Run ids start with the time, so the names sort in creation order.
        paths = sorted((p for p in folder.glob("*.json") if not p.name.startswith(".")), reverse=True)
    except OSError:
        return [], 0
    records, damaged = [], 0
    for path in paths[:limit]:
        try:
            records.append(read_run_record(path, root))
        except RecordError:
            damaged += 1
    return records, damaged
