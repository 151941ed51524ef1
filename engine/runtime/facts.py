"""What the engine says about itself and its images: its EngineInfo, and the RunContext saved files carry
(labels, A1111's file hashes, the records reproduce.py replays from)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.contract.info import EngineInfo, MemoryReport, StyleInfo
from engine.contract.modes import ModelRole
from engine.contract.request import ModeSettings
from engine.outputs.comparison_files import RunContext
from engine.outputs.hash_cache import lora_hash, model_hash
from engine.pocket.model import builtin_label, builtin_note

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

log = logging.getLogger(__name__)


def engine_info(engine: Engine) -> EngineInfo:
    """What this engine can do, for a front end: modes, sizes, styles, memory."""
    available = engine.available_modes()
    file_steps = tuple(
        (mode, steps)
        for mode in available
        if (steps := engine.resolve(ModeSettings(mode=mode)).file_steps) is not None
    )
    try:
        memory: MemoryReport | None = engine.memory_report()
    except Exception:  # a failure to measure is logged, never fatal
        log.exception("the memory report failed")
        memory = None
    return EngineInfo(
        builtin=engine.paths.builtin,
        available_modes=available,
        file_steps=file_steps,
        native_size=engine.native_size,
        device=engine.plan.describe(),
        model_label=label_and_note(engine)[0],
        styles=tuple(StyleInfo(s.name, s.file.path.stem) for s in engine.styles),
        memory=memory,
    )


def file_hashes(engine: Engine) -> tuple[str | None, dict[str, str]]:
    """A1111's short hashes of the base (a single file only: a folder has none) and of each style.

    A file read once per version (engine.outputs.hash_cache): a 7 GB checkpoint costs about half a
    minute the first time. Called on the worker's or the CLI's thread, never the GUI's.
    """
    base = engine.files[ModelRole.BASE].path
    model: str | None = None
    if not engine.paths.builtin and base.is_file():
        with contextlib.suppress(OSError, ValueError):
            model = model_hash(base)
    styles: dict[str, str] = {}
    for style in engine.styles:
        with contextlib.suppress(OSError, ValueError):
            styles[style.name] = lora_hash(style.file.path)
    return model, styles


def run_context(engine: Engine, on_status: Callable[[str], None] | None = None) -> RunContext:
    """What the files this engine's images are saved to should say about their origin. Hashes
    every model file the first time (minutes for SDXL; cached after): call it off the GUI thread."""
    from engine.runtime.replay import dtype_name, model_file_records, replay_files

    label, note = label_and_note(engine)
    styles = {s.name: s.file.path.stem for s in engine.styles}
    model, style_hashes = engine.file_hashes
    return RunContext(
        model_label=label,
        device=engine.plan.describe(),
        note=note,
        style_names=styles,
        model_hash=model,
        style_hashes=style_hashes,
        device_type=engine.plan.device.type,
        dtype=dtype_name(engine.plan.dtype),
        model_files=model_file_records(engine, on_status),
        replay=replay_files(engine),
    )


def label_and_note(engine: Engine) -> tuple[str, str]:
    if engine.paths.builtin:
        return builtin_label(), builtin_note()
    return engine.files[ModelRole.BASE].path.name, ""
