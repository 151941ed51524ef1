"""Which modes the configured files allow, and what to tell the artist about missing ones.

Read from the settings alone (no weights loaded), so the mode panel is right before the engine is.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from engine.model_files import lightning_steps_from_name
from engine.modes import MODES, ModelRole
from gui.settings import Settings

BUILTIN_HINT = (
    "<b>Built-in tiny model</b>: untrained, so its pictures are noise; it shows each mode's steps,"
    " timesteps and costs. For real pictures open <b>Settings</b> and give SDXL files. Every mode"
    " needs the <b>SDXL base</b> folder (diffusers format); LCM also needs the <b>lcm-sdxl</b> UNet"
    " folder, LCM-LoRA the <b>lcm-lora-sdxl</b> file, Lightning <b>sdxl_lightning_4step_unet</b> and"
    " Lightning LoRA <b>sdxl_lightning_4step_lora</b> (.safetensors, ByteDance's file names)."
)

ROLE_TITLES: Mapping[ModelRole, str] = {
    ModelRole.BASE: "SDXL base",
    ModelRole.LCM_UNET: "LCM UNet",
    ModelRole.LCM_LORA: "LCM-LoRA",
    ModelRole.LIGHTNING_UNET: "Lightning UNet",
    ModelRole.LIGHTNING_LORA: "Lightning LoRA",
}

ROLE_HINTS: Mapping[ModelRole, str] = {
    ModelRole.BASE: "a diffusers SDXL folder with model_index.json",
    ModelRole.LCM_UNET: "the lcm-sdxl UNet folder (config.json and weights)",
    ModelRole.LCM_LORA: "an LCM-LoRA .safetensors file",
    ModelRole.LIGHTNING_UNET: "sdxl_lightning_<N>step_unet.safetensors",
    ModelRole.LIGHTNING_LORA: "sdxl_lightning_<N>step_lora.safetensors",
}

# The built-in set is built with ByteDance's 4-step names (engine.tiny_model's default) and draws
# 64 x 64 images; the engine reports both once loaded, these cover the seconds before.
_BUILTIN_LIGHTNING_STEPS = 4
BUILTIN_SIZE = (64, 64)


def missing_roles(settings: Settings, mode: str) -> tuple[ModelRole, ...]:
    if settings.uses_builtin_model:
        return ()
    return tuple(role for role in MODES[mode].required_roles if role not in settings.model_paths)


def missing_hint(roles: tuple[ModelRole, ...]) -> str:
    wanted = "; ".join(f"{ROLE_TITLES[r]} ({ROLE_HINTS[r]})" for r in roles)
    return f"Needs {wanted}. Add it in Settings."


def file_steps(settings: Settings, mode: str) -> int | None:
    """The step count a Lightning file was distilled for, read from its name."""
    spec = MODES[mode]
    if not spec.steps_fixed_by_file:
        return None
    if settings.uses_builtin_model:
        return _BUILTIN_LIGHTNING_STEPS
    role = spec.adapter if spec.adapter is not None else ModelRole.LIGHTNING_UNET
    path: Path | None = settings.model_paths.get(role)
    return lightning_steps_from_name(path) if path is not None else None
