"""What a loaded engine says about itself: typed records the front ends read instead of digging.

Torch-free: the GUI receives these from the worker thread, and report.json stores the memory record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.contract.request import ComparisonResult, GenerationRequest, ModeResult, Progress

_GIB = 1024**3


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class ModelMemory:
    name: str  # "text encoders", "vae", "base unet", "lcm-lora (matrices)", "lcm_unet unet", ...
    bytes: int
    on: str  # the device its weights are on: "cpu", "cuda:0", ...


@dataclass(frozen=True)
class MemoryReport:
    """Bytes of weights per model and where they live, plus the process and device totals."""

    residency: str
    models: tuple[ModelMemory, ...]
    process_rss: int | None = None
    device_allocated: int | None = None  # on a GPU: what torch has allocated there
    # The placement plan in force (engine.runtime.placer.Placer.report without its steps and moves):
    # free_bytes, planned, dtype, measures, tiled_decode, fits, estimated_peak_bytes, parts.
    placement: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def weights(self) -> int:
        return sum(m.bytes for m in self.models)

    @property
    def waiting_in_ram(self) -> int:
        """Weights parked in CPU RAM while the device is a GPU (0 on the CPU)."""
        return sum(m.bytes for m in self.models if m.on == "cpu") if self.device_allocated is not None else 0

    def summary(self) -> str:
        """One line for a status bar or a terminal."""
        parts = [f"weights {human_bytes(self.weights)}"]
        if self.device_allocated is not None:
            parts.append(f"GPU {human_bytes(self.device_allocated)}")
            if self.waiting_in_ram:
                parts.append(f"{human_bytes(self.waiting_in_ram)} waiting in RAM")
        if self.process_rss:
            parts.append(f"RSS {human_bytes(self.process_rss)}")
        parts.append(f"residency {self.residency}")
        return " · ".join(parts)

    def details(self) -> str:
        """The summary, then each model's weights and where they are, one per line."""
        lines = [f"{m.name}: {human_bytes(m.bytes)} on {m.on}" for m in self.models]
        return "\n".join([self.summary(), *lines])

    def to_json(self) -> dict[str, Any]:
        """report.json's `memory` object (its keys are a contract outside checks read)."""
        data: dict[str, Any] = {
            "residency": self.residency,
            "models": {m.name: {"bytes": m.bytes, "on": m.on} for m in self.models},
            "process_rss": self.process_rss,
        }
        if self.device_allocated is not None:
            data["device_allocated"] = self.device_allocated
        if self.placement is not None:
            data["placement"] = dict(self.placement)
        return data


@dataclass(frozen=True)
class StyleInfo:
    adapter: str  # the adapter's name in the engine: "style-0", ...
    file_name: str  # its file's stem, which captions and the PNG text show


@dataclass(frozen=True)
class EngineInfo:
    """What the loaded engine can do, reported once it is ready."""

    builtin: bool
    available_modes: tuple[str, ...]
    file_steps: tuple[tuple[str, int], ...]  # (mode, steps) for files trained for one step count
    native_size: tuple[int, int]
    device: str
    model_label: str
    styles: tuple[StyleInfo, ...] = ()
    memory: MemoryReport | None = field(default=None, compare=False)

    def steps_of_file(self, mode: str) -> int | None:
        return dict(self.file_steps).get(mode)

    @property
    def style_adapters(self) -> tuple[str, ...]:
        return tuple(style.adapter for style in self.styles)


class ComparisonEngine(Protocol):
    """The engine as a front end uses it (engine.runtime.engine.Engine is one)."""

    def run(
        self,
        request: GenerationRequest,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        on_result: Callable[[ModeResult], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> ComparisonResult: ...

    def info(self) -> EngineInfo: ...
