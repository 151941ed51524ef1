"""What a model path is, told from its name and its safetensors header, without loading weights.

Torch-free, so the GUI can check a path the moment the user picks it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from safetensors import SafetensorError, safe_open

from engine.errors import ModelInputError
from engine.modes import ModelRole

_PICKLE_SUFFIXES = {".ckpt", ".pt", ".pth", ".bin", ".pkl"}
_LIGHTNING_NAME = re.compile(r"sdxl_lightning_(\d+)step", re.IGNORECASE)
_LORA_FILE_IN_FOLDER = "pytorch_lora_weights.safetensors"  # what diffusers' training scripts export
_KOHYA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")


class FileKind(StrEnum):
    DIFFUSERS_PIPELINE = "diffusers SDXL pipeline folder"
    DIFFUSERS_UNET = "diffusers UNet folder"
    UNET_STATE_DICT = "diffusers UNet state dict"
    LORA = "LoRA"
    SINGLE_FILE_CHECKPOINT = "single-file checkpoint"
    OTHER = "unrecognised file"


@dataclass(frozen=True)
class ModelFile:
    """A checked model path: what it is and what the engine needs to know to load it."""

    path: Path  # the file or folder to load
    kind: FileKind
    lightning_steps: int | None = None  # from a Lightning file's name
    x0_prediction: bool = False  # Lightning's 1-step file predicts the clean sample


def lightning_steps_from_name(path: Path) -> int | None:
    """ByteDance names each file for its step count: sdxl_lightning_{N}step_{unet,lora}.safetensors."""
    match = _LIGHTNING_NAME.search(path.name)
    return int(match.group(1)) if match else None


def _read_header(path: Path) -> tuple[list[str], Mapping[str, str]]:
    try:
        with safe_open(str(path), framework="numpy") as handle:
            return list(handle.keys()), dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelInputError(
            f"{path} is not a readable safetensors file ({exc}); it may be truncated or still downloading"
        ) from None


def _classify_keys(keys: list[str]) -> FileKind:
    if not keys:
        return FileKind.OTHER
    if all(k.startswith(_KOHYA_PREFIXES) for k in keys) or any(
        ".lora_A." in k or ".lora.down." in k or ".lora_down." in k for k in keys
    ):
        return FileKind.LORA
    if any(k.startswith("model.diffusion_model.") for k in keys):
        return FileKind.SINGLE_FILE_CHECKPOINT
    if "conv_in.weight" in keys and any(k.startswith("down_blocks.") for k in keys):
        return FileKind.UNET_STATE_DICT
    return FileKind.OTHER


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelInputError(f"{path} cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelInputError(f"{path} is not a JSON object")
    return data


def _folder_kind(path: Path) -> FileKind:
    if (path / "model_index.json").is_file():
        return FileKind.DIFFUSERS_PIPELINE
    config = path / "config.json"
    if config.is_file() and _read_json(config).get("_class_name") == "UNet2DConditionModel":
        return FileKind.DIFFUSERS_UNET
    if (path / _LORA_FILE_IN_FOLDER).is_file():
        return FileKind.LORA
    return FileKind.OTHER


def inspect_path(path: Path) -> ModelFile:
    """Classify a path; ModelInputError if it is missing, unreadable or pickled."""
    if not path.exists():
        raise ModelInputError(f"{path} does not exist: check the path")
    if path.is_dir():
        kind = _folder_kind(path)
        if kind is FileKind.LORA:
            path = path / _LORA_FILE_IN_FOLDER
            _read_header(path)
        return ModelFile(path=path, kind=kind)
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise ModelInputError(
            f"{path} is a pickle checkpoint ({path.suffix}); Fewstep never unpickles files, as they can"
            " run code: use the .safetensors version"
        )
    if path.suffix.lower() != ".safetensors":
        raise ModelInputError(f"{path} is not a .safetensors file")
    keys, _metadata = _read_header(path)
    kind = _classify_keys(keys)
    steps = lightning_steps_from_name(path)
    return ModelFile(path=path, kind=kind, lightning_steps=steps, x0_prediction="_x0" in path.stem.lower())


_EXPECTED: Mapping[ModelRole, tuple[FileKind, str]] = {
    ModelRole.BASE: (FileKind.DIFFUSERS_PIPELINE, "an SDXL diffusers folder (with model_index.json)"),
    ModelRole.LCM_UNET: (
        FileKind.DIFFUSERS_UNET,
        "an LCM UNet folder like lcm-sdxl (config.json and weights)",
    ),
    ModelRole.LCM_LORA: (FileKind.LORA, "an LCM-LoRA .safetensors file"),
    ModelRole.LIGHTNING_UNET: (FileKind.UNET_STATE_DICT, "a file like sdxl_lightning_4step_unet.safetensors"),
    ModelRole.LIGHTNING_LORA: (FileKind.LORA, "a file like sdxl_lightning_4step_lora.safetensors"),
}


def check_role(role: ModelRole, path: Path) -> ModelFile:
    """Inspect a path given for one option and refuse it, naming what it is, if it does not fit."""
    info = inspect_path(path)
    expected, description = _EXPECTED[role]
    if info.kind is not expected:
        raise ModelInputError(f"--{role} {path}: this is a {info.kind}, but --{role} takes {description}")
    if role is ModelRole.LCM_UNET:
        config = _read_json(info.path / "config.json")
        if config.get("time_cond_proj_dim") is None:
            raise ModelInputError(
                f"--{role} {path}: this UNet has no guidance embedding (time_cond_proj_dim),"
                " so it is not an LCM UNet"
            )
    if role in (ModelRole.LIGHTNING_UNET, ModelRole.LIGHTNING_LORA) and info.lightning_steps is None:
        raise ModelInputError(
            f"--{role} {path}: cannot tell the step count; keep ByteDance's file name, e.g."
            " sdxl_lightning_4step_unet.safetensors"
        )
    return info


@dataclass(frozen=True)
class ModelPaths:
    """The files the user gave, by role; None where not given."""

    base: Path | None = None
    lcm_unet: Path | None = None
    lcm_lora: Path | None = None
    lightning_unet: Path | None = None
    lightning_lora: Path | None = None
    builtin: bool = False  # the project's own model, not the user's

    def get(self, role: ModelRole) -> Path | None:
        path: Path | None = getattr(self, role.replace("-", "_"))
        return path

    def checked(self) -> dict[ModelRole, ModelFile]:
        """Every given path checked for its role; the first problem raises ModelInputError."""
        return {role: check_role(role, path) for role in ModelRole if (path := self.get(role)) is not None}
