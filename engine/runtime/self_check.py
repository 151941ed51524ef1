"""What `fewstep --self-test` asks of the ML stack: does diffusers see the backends it needs?

diffusers decides from package metadata (importlib.metadata) whether torch, transformers, peft and
the others are installed. A bundle that carries a package but not its metadata imports fine and then
fails at the first LoRA or text encoder with a message about a missing package, so the check asks
diffusers itself. Runs on the engine thread; imports torch and diffusers only when called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class BackendCheck:
    name: str
    ok: bool
    detail: str


# diffusers.utils' is_*_available, by what the engine needs them for.
_BACKENDS: tuple[tuple[str, str], ...] = (
    ("torch", "every model"),
    ("transformers", "the text encoders"),
    ("peft", "LoRA files"),
    ("accelerate", "low-memory loading"),
    ("safetensors", "model files"),
)


def backend_checks() -> tuple[BackendCheck, ...]:
    """One check per backend diffusers must see, plus its PEFT backend switch and torch's device."""
    import diffusers.utils
    from diffusers.utils.constants import USE_PEFT_BACKEND

    checks = []
    for backend, needed_for in _BACKENDS:
        available = bool(getattr(diffusers.utils, f"is_{backend}_available")())
        detail = (
            f"diffusers sees {backend} ({needed_for})" if available else f"diffusers does not see {backend}"
        )
        checks.append(BackendCheck(name=f"backend {backend}", ok=available, detail=detail))
    checks.append(
        BackendCheck(
            name="backend peft-lora",
            ok=bool(USE_PEFT_BACKEND),
            detail="diffusers loads LoRAs through peft"
            if USE_PEFT_BACKEND
            else "diffusers' PEFT backend is off: LoRA modes cannot load",
        )
    )
    checks.extend(device_checks())
    return tuple(checks)


def torch_build(torch: Any) -> str:
    """Which torch this is: its version and the GPU backend it was built with."""
    cuda = torch.version.cuda
    if cuda:
        return f"torch {torch.__version__}, built with CUDA {cuda}"
    if getattr(torch.version, "hip", None):
        return f"torch {torch.__version__}, built with ROCm {torch.version.hip}"
    if torch.backends.mps.is_built():
        return f"torch {torch.__version__}, built with Apple MPS"
    return f"torch {torch.__version__}, a CPU-only build"


def device_checks() -> tuple[BackendCheck, ...]:
    """The torch build, then each GPU with its memory, or plainly that none was found and the
    engine runs on the CPU. Informational: a machine without a GPU is not a failure."""
    import torch

    checks = [BackendCheck(name="torch build", ok=True, detail=torch_build(torch))]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            checks.append(
                BackendCheck(
                    name=f"gpu {index}",
                    ok=True,
                    detail=f"{torch.cuda.get_device_name(index)}, {total / 2**30:.1f} GiB"
                    f" ({free / 2**30:.1f} GiB free); generation runs there in fp16",
                )
            )
    elif torch.backends.mps.is_available():
        checks.append(BackendCheck(name="gpu", ok=True, detail="Apple MPS; generation runs there in fp16"))
    else:
        why = (
            "no CUDA device found (no NVIDIA GPU, or its driver is missing or too old for this build)"
            if torch.version.cuda
            else "this torch build has no GPU support"
        )
        checks.append(BackendCheck(name="gpu", ok=True, detail=f"{why}: Fewstep runs on the CPU in fp32"))
    return tuple(checks)
