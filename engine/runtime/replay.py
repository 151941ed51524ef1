"""How the engine loaded its files, told so that plain diffusers can load the same ones the same way.

The recipe reproduce.py reads (see engine.outputs.reproduce): each file's path, whether it is a
single file or a diffusers folder, which weight variant of a folder was read, and the config folder
a single file was read with.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.contract.modes import ModelRole
from engine.files.model_files import FileKind, check_vae
from engine.outputs.provenance import StatusCallback, file_records
from engine.runtime.loading import _variant_for

if TYPE_CHECKING:
    from engine.outputs.provenance import FileRecord
    from engine.runtime.engine import Engine


def replay_files(engine: Engine) -> dict[str, Any]:
    dtype = engine.plan.dtype
    files = engine.files
    base = files[ModelRole.BASE]
    single = base.kind is FileKind.SDXL_SINGLE_FILE
    recipe: dict[str, Any] = {
        "base": {
            "path": str(base.path),
            "single_file": single,
            "config": str(engine.config_dir),
            "variant": None if single else _variant_for(base.path / "unet", dtype),
        }
    }
    if engine.paths.vae is not None:
        vae = check_vae(engine.paths.vae)
        folder = vae.kind is FileKind.VAE_FOLDER
        recipe["vae"] = {
            "path": str(vae.path),
            "single_file": not folder,
            "variant": _variant_for(vae.path, dtype) if folder else None,
        }
    if (lcm := files.get(ModelRole.LCM_UNET)) is not None:
        recipe["lcm_unet"] = {"path": str(lcm.path), "variant": _variant_for(lcm.path, dtype)}
    if (lightning := files.get(ModelRole.LIGHTNING_UNET)) is not None:
        recipe["lightning_unet"] = {
            "path": str(lightning.path),
            "single_file": lightning.kind is FileKind.LIGHTNING_CHECKPOINT,
            "x0": lightning.x0_prediction,
        }
    for role, key in ((ModelRole.LCM_LORA, "lcm_lora"), (ModelRole.LIGHTNING_LORA, "lightning_lora")):
        if (lora := files.get(role)) is not None:
            recipe[key] = str(lora.path)
    return {
        "device": str(engine.plan.device),
        "dtype": dtype_name(dtype),
        # The thread count changes CPU summation orders, so the last bit: the script uses the same.
        "threads": engine.plan.threads,
        "files": recipe,
        "styles": {style.name: str(style.file.path) for style in engine.styles},
    }


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def model_file_records(engine: Engine, on_status: StatusCallback | None = None) -> tuple[FileRecord, ...]:
    """Every model file the engine read, with size and SHA-256 (hashed once per file version)."""
    models: list[tuple[str, Path]] = [(str(role), info.path) for role, info in engine.files.items()]
    if engine.paths.vae is not None:
        models.append(("vae", engine.paths.vae))
    models += [("style", style.file.path) for style in engine.styles]
    return file_records(models, on_status)
