"""The model Fewstep runs when the user has configured none.

Until the trained pocket model ships, this is a tiny random SDXL-architecture model set, made on
first use in the user's cache folder. Its images are noise: every output says so.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

from engine.model_files import ModelPaths

BUILTIN_LABEL = "built-in tiny model (UNTRAINED: random weights, images are noise)"
BUILTIN_NOTE = (
    "Built-in tiny model, UNTRAINED: random weights, so the images are noise. It shows the modes, costs and"
    " timesteps; give real SDXL files (--base, --lcm-unet, ...) for real pictures."
)


# What the GUI shows before the engine has loaded (the engine reports the same once it has).
BUILTIN_NATIVE_SIZE = (64, 64)
BUILTIN_LIGHTNING_STEPS = 4


def cache_root() -> Path:
    """FEWSTEP_CACHE_DIR moves it (tests use a temporary folder)."""
    return Path(os.environ.get("FEWSTEP_CACHE_DIR") or user_cache_dir("fewstep", appauthor=False))


def builtin_model_paths() -> ModelPaths:
    """Paths of the built-in model set, building it the first time (a few seconds)."""
    from engine.tiny_model import build_tiny_model_set

    models = build_tiny_model_set(cache_root() / "tiny-untrained-v1")
    return ModelPaths(
        base=models.base,
        lcm_unet=models.lcm_unet,
        lcm_lora=models.lcm_lora,
        lightning_unet=models.lightning_unet,
        lightning_lora=models.lightning_lora,
        builtin=True,
    )
