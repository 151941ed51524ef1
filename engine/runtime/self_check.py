"""What `fewstep --self-test` asks of the ML stack: does diffusers see the backends it needs?

diffusers decides from package metadata (importlib.metadata) whether torch, transformers, peft and
the others are installed. A bundle that carries a package but not its metadata imports fine and then
fails at the first LoRA or text encoder with a message about a missing package, so the check asks
diffusers itself. Runs on the engine thread; imports torch and diffusers only when called.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    import torch
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
    accelerators = []
    if torch.cuda.is_available():
        accelerators.append(f"cuda ({torch.cuda.get_device_name(0)})")
    if torch.backends.mps.is_available():
        accelerators.append("mps")
    checks.append(
        BackendCheck(
            name="torch devices",
            ok=True,
            detail=f"torch {torch.__version__}: cpu" + "".join(f", {a}" for a in accelerators),
        )
    )
    return tuple(checks)
