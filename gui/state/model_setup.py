"""Which modes the configured files allow, and what to tell the artist about missing ones.

Read from the settings alone (no weights loaded), so the mode panel is right before the engine is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from engine.contract.errors import FewstepError
from engine.contract.info import EngineInfo
from engine.contract.modes import MODES, ModelRole
from engine.files.model_files import (
    FileKind,
    ModelFile,
    check_role,
    check_style_lora,
    check_vae,
    steps_in_name,
)
from engine.pocket.model import BUILTIN_LIGHTNING_STEPS, BUILTIN_NATIVE_SIZE, BUILTIN_ROLES
from gui.state.settings import Settings

_WHERE_WEIGHTS_GO = (
    " For real pictures double-click your SDXL files in the <b>Models</b> tab or give them in"
    " <b>Settings</b>. Every mode needs the <b>SDXL base</b> (folder or single file); LCM also needs the"
    " <b>lcm-sdxl</b> UNet folder, LCM-LoRA the <b>lcm-lora-sdxl</b> file, Lightning"
    " <b>sdxl_lightning_4step_unet</b> and Lightning LoRA <b>sdxl_lightning_4step_lora</b>"
    " (.safetensors, ByteDance's file names)."
)
POCKET_HINT = (
    "<b>Built-in pocket model</b>: a small SDXL-architecture model Fewstep trained on 64×64 drawings of"
    " one shape. Try <i>a large red circle on a blue background, top left</i> (the <b>Suggest</b> button offers"
    " more)." + _WHERE_WEIGHTS_GO
)


def builtin_hint() -> str:
    return POCKET_HINT


ROLE_TITLES: Mapping[ModelRole, str] = {
    ModelRole.BASE: "SDXL base",
    ModelRole.LCM_UNET: "LCM UNet",
    ModelRole.LCM_LORA: "LCM-LoRA",
    ModelRole.LIGHTNING_UNET: "Lightning UNet",
    ModelRole.LIGHTNING_LORA: "Lightning LoRA",
}

ROLE_HINTS: Mapping[ModelRole, str] = {
    ModelRole.BASE: "an SDXL diffusers folder, a single .safetensors checkpoint or a cached hub id",
    ModelRole.LCM_UNET: "the lcm-sdxl UNet folder (config.json and weights)",
    ModelRole.LCM_LORA: "an LCM-LoRA .safetensors file",
    ModelRole.LIGHTNING_UNET: "sdxl_lightning_<N>step_unet.safetensors",
    ModelRole.LIGHTNING_LORA: "sdxl_lightning_<N>step_lora.safetensors",
}

BUILTIN_SIZE = BUILTIN_NATIVE_SIZE  # until the engine reports its own
STYLES_OFF_FOR_BUILTIN = "Styles apply once an SDXL base is set; the built-in model ignores them."


def missing_roles(settings: Settings, mode: str) -> tuple[str, ...]:
    roles = MODES[mode].required_roles
    if settings.uses_builtin_model:
        return tuple(role for role in roles if role not in BUILTIN_ROLES)
    return tuple(role for role in roles if role not in settings.model_paths)


def missing_hint(roles: tuple[str, ...]) -> str:
    # A role only a mode file names has no title here: its own name, as --model ROLE=PATH takes it.
    wanted = "; ".join(
        f"{ROLE_TITLES[ModelRole(r)]} ({ROLE_HINTS[ModelRole(r)]})"
        if r in set(ModelRole)
        else f"the {r} file"
        for r in roles
    )
    if all(r in set(ModelRole) for r in roles):
        return f"Needs {wanted}. Add it from the Models tab or in Settings."
    # Settings stores the five files of the first modes only; the field's files go on the command line.
    flags = " ".join(f"--model {r}=PATH" for r in roles if r not in set(ModelRole))
    return f"Needs {wanted}. The window cannot take it yet: run fewstep compare with {flags}."


def file_steps(settings: Settings, mode: str) -> int | None:
    """The step count a Lightning file was distilled for, read from its name."""
    spec = MODES[mode]
    if not spec.steps_fixed_by_file:
        return None
    if settings.uses_builtin_model:
        return BUILTIN_LIGHTNING_STEPS if spec.role in BUILTIN_ROLES else None
    if spec.role is None or spec.role not in set(ModelRole):
        return None  # the settings keep the five roles' files only, so far
    path: Path | None = settings.model_paths.get(ModelRole(spec.role))
    return steps_in_name(path) if path is not None else None


@dataclass(frozen=True, kw_only=True)
class ModelAvailability:
    """What the panels say of the configured files: from the settings until the engine says more."""

    builtin: bool
    missing: Mapping[str, str | None]  # mode -> what it lacks, None where it can run
    file_steps: Mapping[str, int | None]  # mode -> the step count its file was distilled for
    native_size: tuple[int, int] | None
    styles_inactive: str | None  # why the style LoRAs are not applied, or None


def model_availability(settings: Settings, info: EngineInfo | None) -> ModelAvailability:
    """info: the loaded engine's report; None while it loads, or when it failed."""
    missing: dict[str, str | None] = {}
    for mode in MODES:
        roles = missing_roles(settings, mode)
        hint = missing_hint(roles) if roles else None
        missing[mode] = hint if info is None or mode not in info.available_modes else None
    builtin = info.builtin if info is not None else settings.uses_builtin_model
    if info is not None:
        native_size: tuple[int, int] | None = info.native_size
    else:
        native_size = BUILTIN_SIZE if builtin else None
    return ModelAvailability(
        builtin=builtin,
        missing=missing,
        file_steps={
            mode: info.steps_of_file(mode) if info is not None else file_steps(settings, mode)
            for mode in MODES
        },
        native_size=native_size,
        styles_inactive=STYLES_OFF_FOR_BUILTIN if settings.uses_builtin_model and settings.styles else None,
    )


class Use(StrEnum):
    """What the artist can make of a model file: one of the engine's roles, the VAE, or a style."""

    BASE = ModelRole.BASE.value
    LCM_UNET = ModelRole.LCM_UNET.value
    LCM_LORA = ModelRole.LCM_LORA.value
    LIGHTNING_UNET = ModelRole.LIGHTNING_UNET.value
    LIGHTNING_LORA = ModelRole.LIGHTNING_LORA.value
    VAE = "vae"
    STYLE = "style"

    @property
    def role(self) -> ModelRole | None:
        return ModelRole(self.value) if self.value in set(ModelRole) else None

    @property
    def label(self) -> str:
        if (role := self.role) is not None:
            return ROLE_TITLES[role]
        return "VAE" if self is Use.VAE else "style LoRA"

    @property
    def action(self) -> str:
        return "Add as style LoRA" if self is Use.STYLE else f"Use as {self.label}"


# The use a double-click gives each kind of file; the others stay in the context menu.
NATURAL_USE: Mapping[FileKind, Use] = {
    FileKind.SDXL_FOLDER: Use.BASE,
    FileKind.SDXL_SINGLE_FILE: Use.BASE,
    FileKind.LIGHTNING_CHECKPOINT: Use.LIGHTNING_UNET,
    FileKind.LCM_UNET: Use.LCM_UNET,
    FileKind.UNET_STATE_DICT: Use.LIGHTNING_UNET,
    FileKind.LIGHTNING_UNET: Use.LIGHTNING_UNET,
    FileKind.LCM_LORA: Use.LCM_LORA,
    FileKind.LIGHTNING_LORA: Use.LIGHTNING_LORA,
    FileKind.STYLE_LORA: Use.STYLE,
    FileKind.VAE_FOLDER: Use.VAE,
    FileKind.VAE_FILE: Use.VAE,
}


def check_use(use: Use, path: Path) -> ModelFile:
    """engine.files.model_files' check for this use: ModelInputError, naming what the file is, if it does not fit."""
    if use is Use.VAE:
        return check_vae(path)
    if use is Use.STYLE:
        return check_style_lora(path)
    role = use.role
    assert role is not None
    return check_role(role, path)


def checked_use(use: Use, path: Path) -> ModelFile | FewstepError:
    """check_use with its refusal returned, not raised: for a background check, whose refusal is the
    artist's to fix and is said in the window, where a raised one would be logged as a failure."""
    try:
        return check_use(use, path)
    except FewstepError as exc:
        return exc


def in_use(settings: Settings) -> dict[Path, str]:
    """Which configured path is used as what, for the model panel's marks."""
    found: dict[Path, list[str]] = {}
    for role, path in settings.model_paths.items():
        found.setdefault(path, []).append(ROLE_TITLES[role])
    if settings.vae is not None:
        found.setdefault(settings.vae, []).append("VAE")
    for style in settings.styles:
        found.setdefault(style.path, []).append("style")
    return {path: ", ".join(uses) for path, uses in found.items()}
