"""Memory: the bytes of the engine's weights and where they are, the device's free memory, the process's RSS."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from engine.contract.info import MemoryReport, ModelMemory
from engine.contract.modes import ModelRole
from engine.contract.placement import Part, own_text_part, own_vae_part, part_of_role
from engine.contract.residency import Residency
from engine.runtime.collector import collect_garbage


def module_bytes(*modules: Any) -> int:
    """Bytes of the modules' parameters and buffers (a tensor shared between them counted each time)."""
    return sum(t.numel() * t.element_size() for m in modules for t in (*m.parameters(), *m.buffers()))


def free_device_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        # Memory torch's caching allocator holds but no tensor uses (a previous engine's, after a
        # reload) is free to this process though the driver counts it as taken.
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached)
    return None


def process_rss() -> int | None:
    """Resident memory of this process, where the OS tells it cheaply (Linux)."""
    try:
        with Path("/proc/self/statm").open(encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def available_ram() -> int | None:
    """Bytes of RAM the OS could give this process now without swapping (Linux's MemAvailable)."""
    try:
        with Path("/proc/meminfo").open(encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def release_freed_memory() -> None:
    """Give the memory of dropped weights back to the OS. Collecting frees the tensors; glibc then
    keeps freed heap chunks for reuse (its mmap threshold grows to 32 MiB once large blocks are freed,
    so even a UNet's tensors may land on the heap): malloc_trim(0) returns them, so that the RSS
    really drops. Elsewhere (not glibc) collecting is all there is."""
    collect_garbage()
    if not sys.platform.startswith("linux"):
        return
    # musl and other C libraries have no malloc_trim.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def memory_report(
    base: Any,
    pipes: Mapping[str, Any],
    device: torch.device,
    *,
    lora_roles: Iterable[str] = (),
    where: Callable[[Part], str],
    residency: Residency,
    placement: Mapping[str, Any],
    waiting: Mapping[str, int] | None = None,
) -> MemoryReport:
    """Bytes of weights per model and where they live, plus the process and device totals.

    pipes: the engine's pipelines by role ("base", a full UNet's or a LoRA's); lora_roles: those of
    LoRA twins; where: the device a part is on now; placement: the placer's report (its steps, moves
    and fuses are left out here); waiting: the bytes of the full UNets that wait on disk now (their
    pipeline holds no UNet), by role.
    """
    models = [
        ModelMemory(
            "text encoders",
            module_bytes(base.text_encoder, base.text_encoder_2),
            where(Part.TEXT_ENCODER),
        ),
        ModelMemory("vae", module_bytes(base.vae), where(Part.VAE)),
        ModelMemory("base unet", module_bytes(base.unet), where(Part.BASE_UNET)),
    ]
    loras = set(lora_roles)
    for key, pipe in pipes.items():
        if key == ModelRole.BASE:
            continue
        if key in loras:  # a LoRA twin: only its LoRA matrices are its own
            lora = sum(p.numel() * p.element_size() for n, p in pipe.unet.named_parameters() if "lora_" in n)
            models.append(ModelMemory(f"{key} (matrices)", lora, where(part_of_role(key))))
        elif pipe.unet is None:  # waits on disk until its mode runs
            size = (waiting or {}).get(key, 0)
            models.append(ModelMemory(_unet_label(key), size, where(part_of_role(key))))
        else:
            on = str(next(pipe.unet.parameters()).device)
            models.append(ModelMemory(_unet_label(key), module_bytes(pipe.unet), on))
            # A whole pipeline's own text encoders and VAE, where they are not the base's objects.
            if pipe.text_encoder is not base.text_encoder:
                own = module_bytes(pipe.text_encoder, pipe.text_encoder_2)
                models.append(ModelMemory(str(own_text_part(key)), own, where(own_text_part(key))))
            if pipe.vae is not base.vae:
                models.append(
                    ModelMemory(str(own_vae_part(key)), module_bytes(pipe.vae), where(own_vae_part(key)))
                )
    allocated = torch.cuda.memory_allocated(device) if device.type == "cuda" else None
    return MemoryReport(
        residency=str(residency),
        models=tuple(models),
        process_rss=process_rss(),
        device_allocated=allocated,
        placement={k: v for k, v in placement.items() if k not in ("steps", "moves", "fuses")},
    )


def _unet_label(role: str) -> str:
    """ "lcm unet", "lightning unet" as before roles were open; another role's UNet by its role."""
    part = str(part_of_role(role))
    return part if part.endswith(" unet") else f"{part} (unet)"
