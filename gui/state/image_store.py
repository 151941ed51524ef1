"""Reading the output folder back: the history's run records, checked, newest first.

engine.outputs.run_writer writes every file there (its docstring shows the layout); this module only
reads. Records are the user's files, and may be damaged or edited by hand: each is checked, and one
that cannot be read is skipped, never fatal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.contract.errors import RequestError
from engine.contract.limits import MAX_SEED
from engine.contract.request import GenerationRequest, ModeSettings
from engine.files.safe_paths import open_regular
from engine.outputs.run_writer import HISTORY_FOLDER, RECORD_FORMAT
from engine.outputs.trilemma import METRIC_KEYS, Trilemma, TrilemmaRow

MAX_RECORD_BYTES = 1 << 20


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
    # The numbers the trilemma panel showed for it; None where the record has none (a live render,
    # a record older than the trilemma's place in it, or one written before the numbers were measured).
    trilemma: Trilemma | None = None

    @property
    def title(self) -> str:
        first_line = self.request.prompt.strip().split("\n", 1)[0] or "(no prompt)"
        return first_line if len(first_line) <= 60 else first_line[:57] + "…"


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
        steps, guidance, eta = item.get("steps"), item.get("guidance"), item.get("eta")
        if steps is not None and not isinstance(steps, int):
            raise RecordError("a mode's steps are malformed")
        if guidance is not None and not isinstance(guidance, int | float):
            raise RecordError("a mode's guidance is malformed")
        if eta is not None and (isinstance(eta, bool) or not isinstance(eta, int | float)):
            raise RecordError("a mode's eta is malformed")
        modes.append(
            ModeSettings(
                mode=_typed(item, "mode", str),
                steps=steps,
                guidance=None if guidance is None else float(guidance),
                eta=None if eta is None else float(eta),
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


def _number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordError("a trilemma number is malformed")
    return float(value)


def _trilemma(data: object) -> Trilemma | None:
    """The record's `trilemma` (engine.outputs.run_writer.trilemma_record), or None where absent."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise RecordError("the trilemma is malformed")
    modes, images, seeds = data.get("modes"), data.get("images"), data.get("seeds")
    if not isinstance(modes, dict) or not isinstance(images, dict) or not isinstance(seeds, list):
        raise RecordError("the trilemma is malformed")
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise RecordError("the trilemma's seeds are malformed")
    rows = []
    for mode, values in modes.items():
        count = images.get(mode, 0)
        if not isinstance(values, dict) or not isinstance(count, int) or isinstance(count, bool):
            raise RecordError("a trilemma row is malformed")
        seconds, speed_up, ssim, psnr, detail, diversity = (_number(values.get(k)) for k in METRIC_KEYS)
        rows.append(TrilemmaRow(mode, count, seconds, speed_up, ssim, psnr, detail, diversity))
    return Trilemma(
        reference=_typed(data, "reference", str),
        reference_reason=_typed(data, "reference_reason", str),
        rows=tuple(rows),
        seeds=tuple(seeds),
    )


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
    except (ValueError, RequestError) as exc:  # RequestError is no ValueError: a bad step count too
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
        trilemma=_trilemma(data.get("trilemma")),
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
