"""What the files an engine's images are saved to say about their origin: the RunContext, with the model's
label, A1111's short file hashes, each file's SHA-256 record, and the recipe reproduce.py replays.

The recipe tells how the engine loaded its files, so that plain diffusers can load the same ones the same
way (see engine.outputs.reproduce): each file's path, whether it is a single file or a diffusers folder,
which weight variant of a folder was read, and the config folder a single file was read with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.contract.modes import MODES, ModeFile, ModelRole
from engine.files.model_files import FileKind, ModelFile, check_vae
from engine.outputs.comparison_files import RunContext
from engine.outputs.hash_cache import lora_hash, model_hash
from engine.outputs.provenance import FileRecord, StatusCallback, file_records
from engine.pocket.model import builtin_label, builtin_note
from engine.runtime.device import DevicePlan
from engine.runtime.loading import variant_for


@dataclass(frozen=True, kw_only=True)
class LoadedFiles:
    """What an engine read, and for which device: the model files by role, the --vae file (no role of
    its own), the config folder single files were read with, and each style LoRA's adapter name and file."""

    files: Mapping[str, ModelFile]
    vae: Path | None
    builtin: bool
    config_dir: Path
    styles: tuple[tuple[str, Path], ...]
    plan: DevicePlan


def label_and_note(loaded: LoadedFiles) -> tuple[str, str]:
    if loaded.builtin:
        return builtin_label(), builtin_note()
    return loaded.files[ModelRole.BASE].path.name, ""


def file_hashes(loaded: LoadedFiles) -> tuple[str | None, dict[str, str]]:
    """A1111's short hashes of the base (a single file only: a folder has none) and of each style.

    A file read once per version (engine.outputs.hash_cache): a 7 GB checkpoint costs about half a
    minute the first time. Called on the worker's or the CLI's thread, never the GUI's.
    """
    base = loaded.files[ModelRole.BASE].path
    model: str | None = None
    if not loaded.builtin and base.is_file():
        with contextlib.suppress(OSError, ValueError):
            model = model_hash(base)
    styles: dict[str, str] = {}
    for name, path in loaded.styles:
        with contextlib.suppress(OSError, ValueError):
            styles[name] = lora_hash(path)
    return model, styles


def run_context(
    loaded: LoadedFiles,
    hashes: tuple[str | None, dict[str, str]],
    on_status: StatusCallback | None = None,
) -> RunContext:
    """hashes: file_hashes(loaded), which the engine reads once. Hashes every model file the first time
    (minutes for SDXL; cached after): call it off the GUI thread."""
    label, note = label_and_note(loaded)
    model, style_hashes = hashes
    plan = loaded.plan
    return RunContext(
        model_label=label,
        device=plan.describe(),
        note=note,
        style_names={name: path.stem for name, path in loaded.styles},
        model_hash=model,
        style_hashes=style_hashes,
        device_type=plan.device.type,
        dtype=dtype_name(plan.dtype),
        model_files=model_file_records(loaded, on_status),
        replay=replay_files(loaded),
    )


def replay_files(loaded: LoadedFiles) -> dict[str, Any]:
    dtype = loaded.plan.dtype
    files = loaded.files
    base = files[ModelRole.BASE]
    single = base.kind is FileKind.SDXL_SINGLE_FILE
    recipe: dict[str, Any] = {
        "base": {
            "path": str(base.path),
            "single_file": single,
            "config": str(loaded.config_dir),
            "variant": None if single else variant_for(base.path / "unet", dtype),
        }
    }
    if loaded.vae is not None:
        vae = check_vae(loaded.vae)
        folder = vae.kind is FileKind.VAE_FOLDER
        recipe["vae"] = {
            "path": str(vae.path),
            "single_file": not folder,
            "variant": variant_for(vae.path, dtype) if folder else None,
        }
    kinds = MODES.role_files()
    for role, info in files.items():
        if role == ModelRole.BASE:
            continue
        key = replay_key(role)
        if kinds.get(role) is ModeFile.LORA:
            recipe[key] = str(info.path)
        elif info.kind in (FileKind.SDXL_FOLDER, FileKind.SDXL_SINGLE_FILE):  # a whole pipeline's UNet
            single = info.kind is FileKind.SDXL_SINGLE_FILE
            recipe[key] = {
                "path": str(info.path),
                "pipeline": True,
                "single_file": single,
                "variant": None if single else variant_for(info.path / "unet", dtype),
            }
        elif info.kind in (FileKind.LCM_UNET, FileKind.UNET_FOLDER):  # a diffusers UNet folder
            recipe[key] = {"path": str(info.path), "variant": variant_for(info.path, dtype), "folder": True}
        else:  # a bare UNet state dict, or an all-in-one checkpoint's UNet
            recipe[key] = {
                "path": str(info.path),
                "single_file": info.kind is FileKind.LIGHTNING_CHECKPOINT,
                "x0": info.x0_prediction,
            }
    return {
        "device": str(loaded.plan.device),
        "dtype": dtype_name(dtype),
        # The thread count changes CPU summation orders, so the last bit: the script uses the same.
        "threads": loaded.plan.threads,
        "files": recipe,
        "styles": {name: str(path) for name, path in loaded.styles},
    }


def replay_key(role: str) -> str:
    """A role's key in reproduce.py's recipe: "lcm_unet", "tcd_lora"."""
    return role.replace("-", "_")


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def model_file_records(
    loaded: LoadedFiles, on_status: StatusCallback | None = None
) -> tuple[FileRecord, ...]:
    """Every model file the engine read, with size and SHA-256 (hashed once per file version)."""
    models: list[tuple[str, Path]] = [(str(role), info.path) for role, info in loaded.files.items()]
    if loaded.vae is not None:
        models.append(("vae", loaded.vae))
    models += [("style", path) for _name, path in loaded.styles]
    return file_records(models, on_status)
