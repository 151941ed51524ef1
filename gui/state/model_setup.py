"""Which modes the configured files allow, and what to tell the artist about missing ones.

Read from the settings alone (no weights loaded), so the mode panel is right before the engine is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from engine.contract.errors import FewstepError
from engine.contract.info import EngineInfo
from engine.contract.modes import MODES, ModeFile, ModelRole
from engine.files.field_files import PUBLISHED_FILES
from engine.files.model_files import (
    LORA_KINDS,
    UNDECIDED_ROLES,
    FileKind,
    ModelFile,
    check_role,
    check_style_lora,
    check_vae,
    role_label,
    steps_in_name,
)
from engine.pocket.model import BUILTIN_LIGHTNING_STEPS, BUILTIN_NATIVE_SIZE, BUILTIN_ROLES
from gui.state.settings import Settings

_WHERE_WEIGHTS_GO = (
    " For real pictures double-click your SDXL files in the <b>Models</b> tab or give them in"
    " <b>Settings</b>. Every mode needs the <b>SDXL base</b> (folder or single file); LCM also needs the"
    " <b>lcm-sdxl</b> UNet folder, LCM-LoRA the <b>lcm-lora-sdxl</b> file, Lightning"
    " <b>sdxl_lightning_4step_unet</b> and Lightning LoRA <b>sdxl_lightning_4step_lora</b>"
    " (.safetensors, ByteDance's file names). TCD, Hyper-SD, DMD2, PCM, Flash and SDXL-Turbo files are"
    " known by their published names; a <b>pytorch_lora_weights.safetensors</b> whose folder does not say"
    " LCM, TCD or Flash asks you which (right-click it)."
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


def role_title(role: str) -> str:
    """A role's name in the window: the five first ones' titles, else its file's ("TCD LoRA")."""
    if role in ROLE_TITLES:
        return ROLE_TITLES[ModelRole(role)]
    return role_label(role)


def role_hint(role: str) -> str:
    """What file a role takes: its publisher's file name where Fewstep knows it, else the kind of file."""
    if role in ROLE_HINTS:
        return ROLE_HINTS[ModelRole(role)]
    if role in PUBLISHED_FILES:
        return PUBLISHED_FILES[role]
    kind = MODES.role_files().get(role)
    return {
        ModeFile.UNET: "a full SDXL UNet (.safetensors state dict or a UNet folder)",
        ModeFile.LORA: "an SDXL LoRA .safetensors file",
        ModeFile.PIPELINE: "a whole SDXL pipeline: a diffusers folder or one .safetensors file",
    }.get(kind or ModeFile.NONE, "a model file")


def missing_hint(roles: tuple[str, ...]) -> str:
    wanted = "; ".join(f"{role_title(r)} ({role_hint(r)})" for r in roles)
    return f"Needs {wanted}. Add it from the Models tab or in Settings."


def file_steps(settings: Settings, mode: str) -> int | None:
    """The step count a file was distilled for, read from its name (Lightning, Hyper-SD, DMD2, PCM)."""
    spec = MODES[mode]
    if not spec.steps_fixed_by_file:
        return None
    if settings.uses_builtin_model:
        return BUILTIN_LIGHTNING_STEPS if spec.role in BUILTIN_ROLES else None
    path = settings.model_paths.get(spec.role) if spec.role is not None else None
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


@dataclass(frozen=True)
class Use:
    """What the artist can make of a model file: a role of the loaded modes (the five first ones', or
    any a mode declares: "tcd-lora", "dmd2-unet"...), the VAE, or a style."""

    value: str

    BASE: ClassVar[Use]
    LCM_UNET: ClassVar[Use]
    LCM_LORA: ClassVar[Use]
    LIGHTNING_UNET: ClassVar[Use]
    LIGHTNING_LORA: ClassVar[Use]
    VAE: ClassVar[Use]
    STYLE: ClassVar[Use]

    @property
    def role(self) -> str | None:
        return None if self.value in (_VAE, _STYLE) else self.value

    @property
    def label(self) -> str:
        if (role := self.role) is not None:
            return role_title(role)
        return "VAE" if self.value == _VAE else "style LoRA"

    @property
    def action(self) -> str:
        return "Add as style LoRA" if self == Use.STYLE else f"Use as {self.label}"


_VAE, _STYLE = "vae", "style"
Use.BASE = Use(ModelRole.BASE)
Use.LCM_UNET = Use(ModelRole.LCM_UNET)
Use.LCM_LORA = Use(ModelRole.LCM_LORA)
Use.LIGHTNING_UNET = Use(ModelRole.LIGHTNING_UNET)
Use.LIGHTNING_LORA = Use(ModelRole.LIGHTNING_LORA)
Use.VAE = Use(_VAE)
Use.STYLE = Use(_STYLE)


def assignable_roles() -> tuple[str, ...]:
    """Every role the window can give a file: the base, then each role of the loaded modes (built-in and
    the user's mode file), in mode order."""
    roles = [str(ModelRole.BASE)]
    for spec in MODES.values():
        if spec.role is not None and spec.role not in roles:
            roles.append(spec.role)
    return tuple(roles)


def all_uses() -> tuple[Use, ...]:
    return (*(Use(role) for role in assignable_roles()), Use.VAE, Use.STYLE)


_UNET_KINDS = (
    FileKind.UNET_STATE_DICT,
    FileKind.LIGHTNING_UNET,
    FileKind.LCM_UNET,
    FileKind.UNET_FOLDER,
    FileKind.LIGHTNING_CHECKPOINT,
)
_PIPELINE_KINDS = (FileKind.SDXL_FOLDER, FileKind.SDXL_SINGLE_FILE)
_VAE_KINDS = (FileKind.VAE_FOLDER, FileKind.VAE_FILE)


def uses_for(info: ModelFile | None) -> tuple[Use, ...]:
    """The uses a file's menu offers: those of its sort of file (a LoRA's roles and the style, a UNet's
    roles...), its natural one first; every use where the file could not be read."""
    if info is None:
        return all_uses()
    files = MODES.role_files()
    if info.kind in LORA_KINDS:
        fitting = [Use(r) for r in assignable_roles() if files.get(r) is ModeFile.LORA] + [Use.STYLE]
    elif info.kind in _UNET_KINDS:
        fitting = [Use(r) for r in assignable_roles() if files.get(r) is ModeFile.UNET]
    elif info.kind in _PIPELINE_KINDS:
        fitting = [Use.BASE] + [Use(r) for r in assignable_roles() if files.get(r) is ModeFile.PIPELINE]
    elif info.kind in _VAE_KINDS:
        fitting = [Use.VAE]
    else:
        return all_uses()
    natural = natural_use(info)
    return (natural, *(u for u in fitting if u != natural)) if natural in fitting else tuple(fitting)


# The use a double-click gives each kind of file whose name, place or header names no role.
NATURAL_USE: Mapping[FileKind, Use] = {
    FileKind.SDXL_FOLDER: Use.BASE,
    FileKind.SDXL_SINGLE_FILE: Use.BASE,
    FileKind.UNET_STATE_DICT: Use.LIGHTNING_UNET,
    FileKind.STYLE_LORA: Use.STYLE,
    FileKind.VAE_FOLDER: Use.VAE,
    FileKind.VAE_FILE: Use.VAE,
}


def natural_use(info: ModelFile) -> Use | None:
    """The use a double-click gives a file: the role it is recognised for, else its kind's. None for a
    LoRA the user must say the kind of (LCM-LoRA, TCD or Flash), and for a field file no mode runs."""
    if info.kind is FileKind.UNDECIDED_LORA:
        return None
    role = info.natural_role
    if role is not None and role in assignable_roles():
        return Use(role)
    if info.label:  # recognised, but no loaded mode takes it (PCM's LCM-like LoRA)
        return None
    return NATURAL_USE.get(info.kind)


def say_which(info: ModelFile) -> str | None:
    """Why a double-click cannot choose, and how the artist says which, where that is so."""
    if info.kind is FileKind.UNDECIDED_LORA:
        named = ", ".join(role_title(r) for r in UNDECIDED_ROLES)
        return (
            f"its header and name cannot tell LCM-LoRA, TCD and Flash apart (all ship as this file):"
            f" right-click it and choose which it is ({named})"
        )
    return None


def check_use(use: Use, path: Path) -> ModelFile:
    """engine.files.model_files' check for this use: ModelInputError, naming what the file is, if it does not fit."""
    if use == Use.VAE:
        return check_vae(path)
    if use == Use.STYLE:
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
        found.setdefault(path, []).append(role_title(role))
    if settings.vae is not None:
        found.setdefault(settings.vae, []).append("VAE")
    for style in settings.styles:
        found.setdefault(style.path, []).append("style")
    return {path: ", ".join(uses) for path, uses in found.items()}
