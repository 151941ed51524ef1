"""The shipped pocket model: the model Fewstep runs when the user has configured none.

A small SDXL-architecture model the project trained on 64x64 drawings of one shape, with its own LCM,
LCM-LoRA, Lightning, TCD-LoRA and PCM-LoRA distillations, in the real files' layouts (``resources/pocket/``). It ships in
every install route; when it is missing the install is damaged, and the error says how to repair it.

The file names are the contract between the exporter (``devtools.pocket.export``) and the application.
Torch-free at import: the GUI asks what the built-in model is before the engine loads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.contract.modes import ModelRole
from engine.files.model_paths import ModelPaths
from engine.files.resources import REPAIR, MissingResourceError, pocket_dir

# The name a PNG's `Model:` field carries, spelled as a checkpoint is (no commas, no spaces): a value
# with a comma has to be JSON-quoted, and readers such as sd-parsers 0.6 cut it at the first comma.
POCKET_NAME = "fewstep-pocket-64"
# What the PNGs of Fewstep before 0.2 wrote in `Model:`; read as the pocket model.
OLD_POCKET_NAMES = frozenset({"built-in pocket model (64x64 shapes, trained by Fewstep)"})
# Its description, for people: the status bar, the sidecar, report.json, `fewstep info`.
POCKET_LABEL = "built-in pocket model (64x64 shapes, trained by Fewstep)"
POCKET_NOTE = (
    "Built-in pocket model: a small SDXL-architecture model trained on 64x64 drawings of one shape."
    " It understands prompts like 'a large red circle on a blue background, top left'; give real SDXL"
    " files for real pictures."
)
POCKET_EXAMPLE_PROMPTS = (
    "a large red circle on a blue background",
    "a small yellow triangle on a purple background, top left",
    "a large white square on a green background, bottom right",
    "a small orange circle on a black background, center",
)

# What the GUI shows before the engine has loaded (the engine reports the same once it has).
BUILTIN_NATIVE_SIZE = (64, 64)
BUILTIN_LIGHTNING_STEPS = 4

BASE_DIR = "base"
LCM_DIR = "lcm-unet"
LCM_LORA_FILE = "lcm-lora/pytorch_lora_weights.safetensors"
# h1t/TCD-SDXL-LoRA's file name, in a folder of its own as the LCM-LoRA's.
TCD_LORA_FILE = "tcd-lora/pytorch_lora_weights.safetensors"
# wangfuyun/PCM_Weights' 4-phase small-CFG file; the pcm-lora mode reads its step count from the name.
PCM_LORA_FILE = "pcm_sdxl_smallcfg_4step_converted.safetensors"
# The roles of the field's modes the pocket model ships a file for (resources/modes/builtin.toml's
# `role` of the tcd and pcm-lora modes), beside the five roles of ModelRole.
TCD_LORA_ROLE = "tcd-lora"
PCM_LORA_ROLE = "pcm-lora"
MARKER = "pocket_model.json"  # the export writes it last, once the set is whole


def builtin_label() -> str:
    return POCKET_LABEL


def builtin_note() -> str:
    return POCKET_NOTE


def checkpoint_name(label: str) -> str:
    """The name a PNG's `Model:` field gives a model described by label: the pocket model's own name."""
    return POCKET_NAME if label == POCKET_LABEL else label


def names_pocket_model(name: str) -> bool:
    """Whether a PNG's `Model:` field names the pocket model, as Fewstep writes it now or wrote it before."""
    return name == POCKET_NAME or name in OLD_POCKET_NAMES


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

    files: dict[str, Path | None] = {
        ModelRole.BASE: root / BASE_DIR,
        ModelRole.LCM_UNET: present(root / LCM_DIR),
        ModelRole.LCM_LORA: present(root / LCM_LORA_FILE),
        ModelRole.LIGHTNING_UNET: present(root / lightning_unet_file(lightning_steps)),
        ModelRole.LIGHTNING_LORA: present(root / lightning_lora_file(lightning_steps)),
        TCD_LORA_ROLE: present(root / TCD_LORA_FILE),
        PCM_LORA_ROLE: present(root / PCM_LORA_FILE),
    }
    return ModelPaths.from_roles(files, builtin=True)


# The roles of the files the pocket model ships (the GUI says which modes it cannot run before it loads).
BUILTIN_ROLES: tuple[str, ...] = (*ModelRole, TCD_LORA_ROLE, PCM_LORA_ROLE)


def builtin_model_paths() -> ModelPaths:
    """The pocket model's files; MissingResourceError, saying how to repair the install, when it is not there."""
    paths = pocket_model_paths(lightning_steps=BUILTIN_LIGHTNING_STEPS)
    if paths is None:
        raise MissingResourceError(
            f"Fewstep's built-in pocket model is missing from {pocket_dir()}: {REPAIR}"
        )
    return paths
