"""The model Fewstep runs when the user has configured none: the shipped pocket model.

A small SDXL-architecture model the project trained on 64x64 drawings of one shape, with its own LCM,
LCM-LoRA and Lightning distillations, in the real files' layouts (``resources/pocket/``). It ships in
every install route; when it is missing the install is damaged, and the error says how to repair it.

Torch-free at import: the GUI asks what the built-in model is before the engine loads.
"""

from __future__ import annotations

from engine.files.model_paths import ModelPaths
from engine.files.pocket import pocket_model_paths
from engine.files.resources import REPAIR, MissingResourceError, pocket_dir

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


def builtin_label() -> str:
    return POCKET_LABEL


def builtin_note() -> str:
    return POCKET_NOTE


def builtin_model_paths() -> ModelPaths:
    """The pocket model's files; MissingResourceError, saying how to repair the install, when it is not there."""
    paths = pocket_model_paths(lightning_steps=BUILTIN_LIGHTNING_STEPS)
    if paths is None:
        raise MissingResourceError(
            f"Fewstep's built-in pocket model is missing from {pocket_dir()}: {REPAIR}"
        )
    return paths
