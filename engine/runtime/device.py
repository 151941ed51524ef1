"""Device, dtype and thread choices, made once when the engine starts."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from engine.contract.errors import RequestError

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


@dataclass(frozen=True)
class DevicePlan:
    device: torch.device
    dtype: torch.dtype
    threads: int

    def describe(self) -> str:
        return f"{self.device.type} {str(self.dtype).removeprefix('torch.')}, {self.threads} CPU threads"


def plan_device(
    device: str | None = None, dtype: str | None = None, threads: int | None = None
) -> DevicePlan:
    """CUDA in fp16, else Apple's MPS in fp16, else the CPU in fp32; each choice overridable."""
    if device is None:
        if torch.cuda.is_available():
            device = "cuda"
        elif torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise RequestError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise RequestError("device cuda was asked for, but this torch build or machine has no CUDA GPU")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise RequestError("device mps was asked for, but it is not available here")
    if dtype is None:
        # fp16 halves memory and runs on tensor cores; on the CPU it is slower than fp32.
        resolved = torch.float32 if chosen.type == "cpu" else torch.float16
    else:
        try:
            resolved = _DTYPES[dtype.lower()]
        except KeyError:
            raise RequestError(f"unknown dtype {dtype!r}; use float32, float16 or bfloat16") from None
    if threads is None:
        env = os.environ.get("FEWSTEP_THREADS")
        threads = int(env) if env and env.isdigit() and int(env) > 0 else torch.get_num_threads()
    if threads < 1:
        raise RequestError(f"threads must be at least 1, not {threads}")
    torch.set_num_threads(threads)
    return DevicePlan(device=chosen, dtype=resolved, threads=threads)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a clock read afterwards measures it: CUDA and MPS
    run kernels asynchronously, and a step's time read without this is only its launch time."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
