"""The few-step field's published files, told apart by file name and place; torch-free.

model_files reads a file's header first (LoRA or bare UNet, SDXL or not); this module then says which
distillation a file is, from what its publisher named it:

- Hyper-SD, DMD2, PCM and SDXL-Lightning name each file for its family (and step count):
  ``Hyper-SDXL-4steps-lora``, ``dmd2_sdxl_4step_unet_fp16``, ``pcm_sdxl_smallcfg_2step_converted``.
- LCM-LoRA (latent-consistency/lcm-lora-sdxl), TCD (h1t/TCD-SDXL-LoRA) and Flash SDXL
  (jasperai/flash-sdxl) all ship as ``pytorch_lora_weights.safetensors``, the name diffusers' training
  scripts export. LCM-LoRA and TCD have the same header to the byte (393,854,624 bytes, same keys,
  shapes, dtype and metadata); Flash's old-diffusers attention-only keys are also what any style LoRA
  trained with diffusers' script has. So for that name only the place decides: the Hugging Face
  cache's repository id (``models--h1t--TCD-SDXL-LoRA``), or the folder the file lies in, when it names
  exactly one of the three. Otherwise the file is a distillation LoRA whose kind the user says.
- SDXL-Turbo is an SDXL pipeline like the base: its folder's model_index.json names
  EulerAncestralDiscreteScheduler (the base's names EulerDiscreteScheduler), and its single file is
  ``sd_xl_turbo_1.0_fp16.safetensors``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from engine.files.hub_cache import hub_repo_id

LORA_FILE_IN_FOLDER = "pytorch_lora_weights.safetensors"  # what diffusers' training scripts export


@dataclass(frozen=True)
class Recognised:
    """Which distillation a file is: the role a mode takes it as (None: no built-in mode runs it)."""

    role: str | None
    label: str  # what the file is, e.g. "Hyper-SD CFG LoRA"
    by: str  # what decided: "name", "folder name", "repository id" or "header"


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]  # searched in the lower-case file name
    role: str | None
    label: str


def _rule(pattern: str, role: str | None, label: str) -> _Rule:
    return _Rule(re.compile(pattern), role, label)


# First match wins: the narrower names come first (Hyper-SD's 1-step and CFG files before its others;
# PCM's lcmlike file before the "lcm" of LCM-LoRA).
_LORA_NAMES = (
    # Hyper-SDXL-1step-lora: the unified LoRA (TCD scheduler, 1 to 8 steps).
    _rule(r"hyper.*(?<![0-9])1-?step(?!s?-?cfg).*lora", "hyper-1step-lora", "Hyper-SD unified 1-step LoRA"),
    # Hyper-SDXL-{8,12}steps-CFG-lora: real CFG.
    _rule(r"hyper.*cfg", "hyper-cfg-lora", "Hyper-SD CFG LoRA"),
    # Hyper-SDXL-{2,4,8}steps-lora, and Fooocus's copy sdxl_hyper_sd_4step_lora.
    _rule(r"hyper", "hyper-lora", "Hyper-SD LoRA"),
    _rule(r"dmd2", "dmd2-lora", "DMD2 LoRA"),
    # pcm_sdxl_lcmlike_lora_converted runs with LCMScheduler (the pcm-lcmlike mode), not as LCM-LoRA.
    _rule(r"pcm.*lcmlike", "pcm-lcmlike-lora", "PCM LCM-like LoRA"),
    _rule(r"pcm.*normalcfg", "pcm-normalcfg-lora", "PCM LoRA (normal CFG)"),
    _rule(r"pcm", "pcm-lora", "PCM LoRA (small CFG)"),
    _rule(r"tcd", "tcd-lora", "TCD LoRA"),
    _rule(r"flash", "flash-lora", "Flash SDXL LoRA"),
)
_UNET_NAMES = (
    _rule(r"hyper", "hyper-unet", "Hyper-SD 1-step UNet"),
    _rule(r"dmd2", "dmd2-unet", "DMD2 UNet"),
)
# The three that ship as pytorch_lora_weights.safetensors, by the word their repository and folder
# names carry: latent-consistency/lcm-lora-sdxl, h1t/TCD-SDXL-LoRA, jasperai/flash-sdxl.
LCM_LORA_ROLE = "lcm-lora"
SAME_NAME_LORAS: tuple[tuple[str, str, str], ...] = (
    ("lcm", LCM_LORA_ROLE, "LCM-LoRA"),
    ("tcd", "tcd-lora", "TCD LoRA"),
    ("flash", "flash-lora", "Flash SDXL LoRA"),
)
TURBO_ROLE = "turbo"
# Each field role's file as its publisher names it, for the window's hints.
PUBLISHED_FILES = {
    "tcd-lora": "pytorch_lora_weights.safetensors of h1t/TCD-SDXL-LoRA",
    "hyper-lora": "Hyper-SDXL-<N>steps-lora.safetensors (2, 4 or 8)",
    "hyper-1step-lora": "Hyper-SDXL-1step-lora.safetensors",
    "hyper-cfg-lora": "Hyper-SDXL-<N>steps-CFG-lora.safetensors (8 or 12)",
    "hyper-unet": "Hyper-SDXL-1step-Unet.safetensors",
    "dmd2-unet": "dmd2_sdxl_4step_unet_fp16.safetensors",
    "dmd2-lora": "dmd2_sdxl_4step_lora_fp16.safetensors",
    "pcm-lora": "pcm_sdxl_smallcfg_<N>step_converted.safetensors",
    "pcm-normalcfg-lora": "pcm_sdxl_normalcfg_<N>step_converted.safetensors",
    "pcm-lcmlike-lora": "pcm_sdxl_lcmlike_lora_converted.safetensors",
    "flash-lora": "pytorch_lora_weights.safetensors of jasperai/flash-sdxl",
    TURBO_ROLE: "the sdxl-turbo folder, or sd_xl_turbo_1.0_fp16.safetensors",
}
# Stability's names for it: the repository sdxl-turbo, the file sd_xl_turbo_1.0(_fp16). Not "turbo"
# alone: community SDXL merges say it too (dreamshaperXL_turboDpmppSDE, a base run with DPM++ SDE at
# 4 to 8 steps and CFG 2), and such a file is an SDXL base, not a pipeline for Turbo's 1-step EulerA.
_TURBO = re.compile(r"(?<![a-z0-9])sd[-_ ]?xl[-_ ]?turbo(?![a-z])")


def lora_by_name(path: Path) -> Recognised | None:
    """A LoRA whose file name says its family; None where it says none (the name of a style LoRA, or
    ``pytorch_lora_weights.safetensors``)."""
    name = path.name.lower()
    if name == LORA_FILE_IN_FOLDER:
        return None
    for rule in _LORA_NAMES:
        if rule.pattern.search(name):
            return Recognised(rule.role, rule.label, "name")
    return None


def unet_by_name(path: Path) -> Recognised | None:
    name = path.name.lower()
    for rule in _UNET_NAMES:
        if rule.pattern.search(name):
            return Recognised(rule.role, rule.label, "name")
    return None


def same_name_lora_by_place(path: Path) -> Recognised | None:
    """LCM-LoRA, TCD or Flash for a file their shared name cannot tell: the cache's repository id
    decides, else the name of the folder holding the file; None where neither names exactly one."""
    repo = hub_repo_id(path)
    place, by = (repo, "repository id") if repo is not None else (path.parent.name, "folder name")
    found = [(role, label) for word, role, label in SAME_NAME_LORAS if word in place.lower()]
    if len(found) != 1:
        return None
    role, label = found[0]
    return Recognised(role, label, by)


def is_turbo_pipeline(path: Path, scheduler: object) -> Recognised | None:
    """SDXL-Turbo among SDXL pipelines: by its file, folder or repository name (sdxl-turbo, sd_xl_turbo),
    or by the scheduler its
    model_index.json names (``scheduler``: that entry, e.g. ["diffusers", "EulerAncestralDiscreteScheduler"];
    None for a single file)."""
    form = "single-file checkpoint" if path.is_file() else "diffusers folder"
    label = f"SDXL-Turbo ({form})"
    repo = hub_repo_id(path) or ""
    if _TURBO.search(f"{repo}/{path.name}".lower()):
        return Recognised(TURBO_ROLE, label, "name")
    if isinstance(scheduler, list) and "EulerAncestralDiscreteScheduler" in scheduler:
        return Recognised(TURBO_ROLE, label, "header")
    return None


# Pickles the field publishes beside (or instead of) safetensors, and what to use instead.
_PICKLE_INSTEAD = {
    "dmd2_sdxl_4step_unet_fp16.bin": "dmd2_sdxl_4step_unet_fp16.safetensors instead",
    "dmd2_sdxl_4step_lora_fp16.bin": "dmd2_sdxl_4step_lora_fp16.safetensors instead",
    # No safetensors copy of DMD2's 1-step UNet is published: its 4-step UNet and LoRA are.
    "dmd2_sdxl_1step_unet_fp16.bin": (
        "dmd2_sdxl_4step_unet_fp16.safetensors or dmd2_sdxl_4step_lora_fp16.safetensors instead"
        " (DMD2 publishes its 1-step UNet as a pickle only)"
    ),
}


def safetensors_instead(path: Path) -> str:
    """What to use in place of a pickle: the safetensors file its publisher ships, else the same name
    as .safetensors (the safetensors copy most repositories hold beside a .bin)."""
    known = _PICKLE_INSTEAD.get(path.name.lower())
    if known is not None:
        return known
    return f"{path.with_suffix('.safetensors').name} instead"
