"""Where the shipped pocket model lives, and its files' names, as the engine's ModelPaths.

The names are the contract between the exporter (``devtools.pocket.export``) and the application.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.contract.modes import ModelRole
from engine.files.model_paths import ModelPaths
from engine.files.resources import pocket_dir

BASE_DIR = "base"
LCM_DIR = "lcm-unet"
LCM_LORA_FILE = "lcm-lora/pytorch_lora_weights.safetensors"
MARKER = "pocket_model.json"  # the export writes it last, once the set is whole


def lightning_unet_file(steps: int) -> str:
    return f"sdxl_lightning_{steps}step_unet.safetensors"


def lightning_lora_file(steps: int) -> str:
    return f"sdxl_lightning_{steps}step_lora.safetensors"


def pocket_marker(root: Path | None = None) -> dict[str, Any] | None:
    """The export's record of what was trained how long; None when no pocket model is there."""
    path = (root or pocket_dir()) / MARKER
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def pocket_model_paths(root: Path | None = None, *, lightning_steps: int = 4) -> ModelPaths | None:
    """Every shipped file as the engine's paths (the files not exported yet left out); None without a base."""
    root = root or pocket_dir()
    if pocket_marker(root) is None or not (root / BASE_DIR).is_dir():
        return None

    def present(path: Path) -> Path | None:
        return path if path.exists() else None

    files = {
        ModelRole.BASE: root / BASE_DIR,
        ModelRole.LCM_UNET: present(root / LCM_DIR),
        ModelRole.LCM_LORA: present(root / LCM_LORA_FILE),
        ModelRole.LIGHTNING_UNET: present(root / lightning_unet_file(lightning_steps)),
        ModelRole.LIGHTNING_LORA: present(root / lightning_lora_file(lightning_steps)),
    }
    return ModelPaths.from_roles(files, builtin=True)
