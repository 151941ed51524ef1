"""The placement plan for the configured files, as the Models tab shows it: the same planner and the
same text as `fewstep plan`, from the files' headers (the GUI never imports torch).

The free GPU memory is the settings' "GPU memory" (the CLI's --vram) when set, else what the loaded
engine measured; on the CPU, or before the engine has measured, the tab says how much free memory
the five-mode comparison needs instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.contract.errors import FewstepError
from engine.contract.info import EngineInfo
from engine.contract.placement import (
    GIB,
    LoraRoute,
    PlanInput,
    five_mode_check,
    plan_placement,
    smallest_fit,
)
from engine.contract.placement_text import describe_placement, size_text
from engine.files.model_paths import ModelPaths
from engine.files.part_sizes import model_sizes
from engine.pocket.model import builtin_model_paths
from gui.state.settings import Settings


@dataclass(frozen=True)
class PlanRequest:
    """What a plan is made from; computed off the GUI thread (headers and ~100 candidate plans)."""

    paths: ModelPaths | None  # None: the built-in model
    free_bytes: int | None  # None: not known (the CPU, or the engine has not measured yet)
    source: str  # where free_bytes came from, in words
    dtype: str
    size: tuple[int, int]
    lora_route: LoraRoute = LoraRoute.AUTO  # the LoRA route set in Settings
    ram: bool = False  # free_bytes is the CPU's available RAM: the full UNets wait on disk, if any


def plan_request(settings: Settings, info: EngineInfo | None) -> PlanRequest:
    memory = info.memory if info is not None else None
    placement: Mapping[str, Any] = (memory.placement if memory is not None else None) or {}
    engine_dtype = placement.get("dtype")
    if engine_dtype in ("fp16", "bf16", "fp32"):
        dtype = str(engine_dtype)
    else:
        dtype = "fp32" if settings.device == "cpu" else "fp16"  # the engine's defaults
    measured = placement.get("free_bytes") if placement.get("planned") else None
    if settings.vram is not None:
        free: int | None = int(settings.vram * GIB)
        source = "the GPU memory set in Settings"
    elif isinstance(measured, int):
        free, source = measured, "measured on the GPU when the models loaded"
        if placement.get("ram"):
            source = "the RAM available when the models loaded on the CPU"
    else:
        free, source = None, ""
    size = info.native_size if info is not None else (1024, 1024)
    return PlanRequest(
        paths=settings.model_paths_for_engine(),
        free_bytes=free,
        source=source,
        dtype=dtype,
        size=size,
        lora_route=settings.lora_route,
        ram=settings.vram is None and bool(placement.get("ram")),
    )


def plan_text(request: PlanRequest) -> str:
    """The plan in words; a problem with the files is said, never raised."""
    try:
        paths = request.paths if request.paths is not None else builtin_model_paths()
        sizes = model_sizes(paths)
    except FewstepError as exc:
        return f"No placement plan: {exc}"
    in_dtype = sizes.bytes_in(request.dtype)
    least = smallest_fit(in_dtype, request.dtype, vae_upcast=sizes.vae_upcast)
    needs = (
        f"The five-mode comparison at 1024x1024 in {request.dtype} needs at least"
        f" {size_text(least)} of free GPU memory (estimated)."
    )
    if request.free_bytes is None:
        return (
            f"{needs}\nNo GPU memory to plan for: the engine measures it when it loads on a GPU, or set"
            " “GPU memory” in Settings."
        )
    width, height = request.size
    placement = plan_placement(
        PlanInput(
            sizes=in_dtype,
            dtype=request.dtype,
            free_bytes=request.free_bytes,
            width=width,
            height=height,
            vae_upcast=sizes.vae_upcast,
            ram=request.ram,
        ),
        lora_route=request.lora_route,
    )
    five = five_mode_check(
        in_dtype,
        request.dtype,
        request.free_bytes,
        vae_upcast=sizes.vae_upcast,
        lora_route=request.lora_route,
        ram=request.ram,
    )
    lines = describe_placement(placement, five)
    return "\n".join([f"{needs} Free memory: {request.source}.", *lines])
