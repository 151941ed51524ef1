"""The generation modes as data: which file, which scheduler, steps, guidance, eta and timesteps.

A mode is a record (ModeSpec) read from a TOML file: the built-in ones from the shipped
``resources/modes/builtin.toml``, a user's from the config folder or ``--modes-file``
(engine.contract.mode_files reads and checks both). Each built-in record quotes its model card.
Nothing in the engine branches on a mode's name or on a fixed list of files: it reads these records.
"""

from __future__ import annotations

from engine.contract.mode_files import builtin_modes
from engine.contract.mode_spec import (
    SCHEDULERS,
    GuidanceKind,
    ModeFile,
    ModelCard,
    ModelRole,
    ModeRegistry,
    ModeSpec,
)

__all__ = [
    "DEFAULT_COMPARISON",
    "MODES",
    "SCHEDULERS",
    "GuidanceKind",
    "ModeFile",
    "ModeRegistry",
    "ModeSpec",
    "ModelCard",
    "ModelRole",
    "contract_warnings",
]

MODES: ModeRegistry = ModeRegistry(builtin_modes())

# The five modes a comparison runs when none are named.
DEFAULT_COMPARISON: tuple[str, ...] = ("ddim", "lcm", "lcm-lora", "lightning", "lightning-lora")


def contract_warnings(
    spec: ModeSpec,
    *,
    steps: int,
    guidance: float,
    negative_prompt: str,
    file_steps: int | None,
    eta: float | None = None,
    size: tuple[int, int] | None = None,
) -> tuple[str, ...]:
    """Where a setting leaves the mode's contract: said, never refused (artists experiment)."""
    warnings: list[str] = []
    if spec.steps_fixed_by_file and file_steps is not None and steps != file_steps:
        warnings.append(
            f"{spec.name}: the file was distilled for {file_steps} steps; {steps} steps gives poorer images"
        )
    low, high = spec.recommended_steps
    if not spec.steps_fixed_by_file and not low <= steps <= high:
        warnings.append(f"{spec.name}: {steps} steps is outside the usual {low} to {high}")
    if spec.timesteps and spec.timesteps_for(steps) is None:
        known = ", ".join(str(n) for n in sorted(spec.timesteps))
        warnings.append(
            f"{spec.name}: the card gives timesteps for {known} steps only; {steps} steps uses the scheduler's own spacing"
        )
    g_low, g_high = spec.recommended_guidance
    if spec.is_distilled and spec.guidance_kind is not GuidanceKind.EMBEDDING and guidance > max(2.0, g_high):
        warnings.append(
            f"{spec.name}: CFG {guidance:g} on a distilled mode doubles the cost and tends to burn the image"
        )
    elif spec.is_distilled and g_low > 1.0 and guidance < g_low:
        warnings.append(f"{spec.name}: guidance {guidance:g} is below the card's {g_low:g} to {g_high:g}")
    if negative_prompt.strip() and spec.guidance_kind is GuidanceKind.EMBEDDING:
        warnings.append(
            f"{spec.name}: the LCM UNet takes guidance as an embedding; the negative prompt is unused"
        )
    elif negative_prompt.strip() and guidance <= 1.0:
        warnings.append(f"{spec.name}: at CFG {guidance:g} the negative prompt has no effect")
    if eta is not None and spec.eta_range is not None and not spec.eta_range[0] <= eta <= spec.eta_range[1]:
        warnings.append(
            f"{spec.name}: eta {eta:g} is outside the card's {spec.eta_range[0]:g} to {spec.eta_range[1]:g}"
        )
    if size is not None and spec.native_size is not None and size != spec.native_size:
        w, h = spec.native_size
        warnings.append(f"{spec.name}: trained at {w}x{h}; {size[0]}x{size[1]} gives poorer images")
    return tuple(warnings)
