"""What report.json adds for a record anyone can check and replay: the trilemma, the runtime, the
model files with their hashes, and reproduce.py beside the images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.contract.request import ComparisonResult
from engine.outputs.comparison_files import RunContext
from engine.outputs.reproduce import SCRIPT_NAME, replay_recipe, write_reproduce
from engine.outputs.trilemma import Trilemma, trilemma_of


def record_additions(
    out_dir: Path,
    comparison: ComparisonResult,
    context: RunContext,
    files: dict[str, str],
    trilemma: Trilemma | None = None,
) -> dict[str, Any]:
    """report.json's new keys; writes reproduce.py when the context says how to load the files.

    `files` maps "mode/seed" to each image's file name; `trilemma`, when already measured (the GUI
    measures it as tiles finish), is not measured again."""
    measured = trilemma if trilemma is not None else trilemma_of(comparison)
    additions: dict[str, Any] = {
        "trilemma": measured.as_json(),
        "device_type": context.device_type,
        "dtype": context.dtype,
        "model_files": [record.as_json() for record in context.model_files],
    }
    if context.replay is not None:
        recipe = replay_recipe(comparison, context.replay, files)
        write_reproduce(out_dir, recipe)
        additions["reproduce"] = {"script": SCRIPT_NAME, "cannot_replay": recipe["cannot_replay"]}
    else:
        additions["reproduce"] = None
    return additions
