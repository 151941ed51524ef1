"""The values that pass between the window and the worker thread: jobs in, events out.

Plain frozen dataclasses, free of Qt and torch, so that either side can be tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from engine.contract.request import (
    ComparisonResult,
    GenerationRequest,
    ModeResult,
    Progress,
    style_adapter_name,
)
from engine.contract.residency import Residency
from engine.files.model_paths import ModelPaths
from engine.outputs.comparison_files import RunContext


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
    dtype: str = "auto"  # auto: fp16 on a GPU, fp32 on the CPU; or float32, float16, bfloat16

    def style_files(self) -> dict[str, Path]:
        """Each style's adapter name and the file it is loaded from, as the artist gave it.

        The engine names the style LoRAs by style_adapter_name, in the order of paths.styles.
        """
        styles = self.paths.styles if self.paths is not None else ()
        return {style_adapter_name(index): style.path for index, style in enumerate(styles)}


@dataclass(frozen=True, kw_only=True)
class SavedImage:
    png: Path
    sidecar: Path


@dataclass(frozen=True, kw_only=True)
class ProgressEvent:
    job_id: int
    progress: Progress


@dataclass(frozen=True, kw_only=True)
class ImageEvent:
    """One mode of a job finished; saved is None when the job keeps its images in memory."""

    job_id: int
    result: ModeResult
    saved: SavedImage | None = None


@dataclass(frozen=True, kw_only=True)
class FinishedEvent:
    job_id: int
    comparison: ComparisonResult
    run_record: Path | None = None  # the history entry, when the job was saved
    save_error: str | None = None  # the images exist in memory but could not be written
    # What saved files say about the models (with their hashes and how to replay them); the export uses it.
    context: RunContext | None = field(default=None, compare=False)


@dataclass(frozen=True, kw_only=True)
class FailedEvent:
    job_id: int
    message: str  # one line an artist can act on
