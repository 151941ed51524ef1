"""The model Fewstep runs when the user has configured none.

The pocket model, when it ships in `resources/pocket/` (trained by the project on 64x64 drawings of
shapes; see docs/pocket.md): a real, if small, SDXL-architecture model whose images follow their
prompts. Otherwise a tiny random set in the same layouts, made on first use in the user's cache:
its images are noise, and every output says so.

Torch-free at import: the GUI asks what the built-in model is before the engine loads.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

from engine.model_files import ModelPaths

POCKET_DIR = Path(__file__).resolve().parent.parent / "resources" / "pocket"
_POCKET_MARKER = "pocket_model.json"  # engine.pocket.export writes it last, once the set is whole

POCKET_LABEL = "built-in pocket model (64x64 shapes, trained by Fewstep)"
POCKET_NOTE = (
    "Built-in pocket model: a small SDXL-architecture model trained on 64x64 drawings of one shape."
    " It understands prompts like 'a large red circle on a blue background, top left'; give real SDXL"
    " files for real pictures."
)
TINY_LABEL = "built-in tiny model (UNTRAINED: random weights, images are noise)"
TINY_NOTE = (
    "Built-in tiny model, UNTRAINED: random weights, so the images are noise. It shows the modes, costs and"
    " timesteps; give real SDXL files (--base, --lcm-unet, ...) for real pictures."
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


def pocket_shipped() -> bool:
    return (POCKET_DIR / _POCKET_MARKER).is_file()


def builtin_label() -> str:
    return POCKET_LABEL if pocket_shipped() else TINY_LABEL


def builtin_note() -> str:
    return POCKET_NOTE if pocket_shipped() else TINY_NOTE


def cache_root() -> Path:
    """FEWSTEP_CACHE_DIR moves it (tests use a temporary folder)."""
    return Path(os.environ.get("FEWSTEP_CACHE_DIR") or user_cache_dir("fewstep", appauthor=False))


def tiny_model_paths() -> ModelPaths:
    """The tiny random set, built in the cache the first time (a few seconds)."""
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


def builtin_model_paths() -> ModelPaths:
    """The pocket model's files when shipped (those not exported yet left out), else the tiny set."""
    if pocket_shipped():
        from engine.pocket.paths import pocket_model_paths

        paths = pocket_model_paths(POCKET_DIR, lightning_steps=BUILTIN_LIGHTNING_STEPS)
        if paths is not None:
            return paths
    return tiny_model_paths()
