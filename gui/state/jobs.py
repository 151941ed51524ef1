"""The values that pass between the window and the worker thread: jobs in, events out (WorkerEvent).

Plain frozen dataclasses, free of Qt and torch, so that either side can be tested alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from engine.contract.info import EngineInfo
from engine.contract.placement import LoraRoute
from engine.contract.request import (
    ComparisonResult,
    GenerationRequest,
    ModeResult,
    Progress,
    style_adapter_name,
)
from engine.contract.residency import Residency
from engine.files.model_paths import ModelPaths
from engine.outputs.comparison_files import RunContext, SavedImage


class JobKind(StrEnum):
    COMPARISON = "comparison"  # the Generate button: every checked mode times every seed
    LIVE = "live"  # a render while the artist types; superseded by the next edit


@dataclass(frozen=True, kw_only=True)
class Job:
    """One generation: the engine's request plus what the window needs to route its events."""

    id: int
    request: GenerationRequest
    kind: JobKind = JobKind.COMPARISON
    save_to: Path | None = None  # the output folder; None keeps the images in memory only


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    """What the engine is built from; a change of it reloads the engine before the next job."""

    paths: ModelPaths | None  # None: the built-in model
    device: str = "auto"
    residency: Residency = Residency.AUTO
    vram: float | None = None  # GiB of free GPU memory to plan for; None: measured
    lora_route: LoraRoute = LoraRoute.AUTO  # the LoRA modes fused in the slot, unfused, or as planned
    dtype: str = "auto"  # auto: fp16 on a GPU, fp32 on the CPU; or float32, float16, bfloat16

    def style_files(self) -> dict[str, Path]:
        """Each style's adapter name and the file it is loaded from, as the artist gave it.

        The engine names the style LoRAs by style_adapter_name, in the order of paths.styles.
        """
        styles = self.paths.styles if self.paths is not None else ()
        return {style_adapter_name(index): style.path for index, style in enumerate(styles)}


class EventKind(StrEnum):
    """What a WorkerEvent says; the comment names the fields it fills."""

    STATUS = "status"  # the engine's loading step, in words: message
    ENGINE_READY = "engine_ready"  # info
    ENGINE_FAILED = "engine_failed"  # message
    QUEUED = "queued"  # job_id
    STARTED = "started"  # job_id
    PROGRESS = "progress"  # job_id, progress
    IMAGE = "image"  # job_id, result; saved when the job saves its images
    FINISHED = "finished"  # job_id, finished
    CANCELLED = "cancelled"  # job_id
    FAILED = "failed"  # job_id, message


JOB_ENDS = frozenset({EventKind.FINISHED, EventKind.CANCELLED, EventKind.FAILED})  # a job's last event


@dataclass(frozen=True, kw_only=True)
class FinishedRun:
    """What a finished job leaves: its images in memory and, when it was saved, its history record."""

    job_id: int
    comparison: ComparisonResult
    run_record: Path | None = None  # the history entry, when the job was saved
    save_error: str | None = None  # the images exist in memory but could not be written
    # What saved files say about the models (with their hashes and how to replay them); the export uses it.
    context: RunContext | None = field(default=None, compare=False)


@dataclass(frozen=True, kw_only=True)
class WorkerEvent:
    """Everything the worker reports, on its one signal: a kind and the fields that kind fills.

    job_id is None for the engine's own events (STATUS, ENGINE_READY, ENGINE_FAILED)."""

    kind: EventKind
    job_id: int | None = None
    message: str = ""  # STATUS: the step; ENGINE_FAILED, FAILED: one line an artist can act on
    info: EngineInfo | None = None
    progress: Progress | None = None
    result: ModeResult | None = None
    saved: SavedImage | None = None  # None when the job keeps its images in memory
    finished: FinishedRun | None = None


JobHandler = Callable[[WorkerEvent], None]
