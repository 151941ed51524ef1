"""reproduce.py in every comparison folder: the recipe of each image for plain diffusers.

The script itself ships as a resource (resources/replay/reproduce.py) and imports nothing from
Fewstep; this module fills in its RECIPE: the model files (from the engine's RunContext.replay), and
per image the mode's UNet, distillation LoRA, scheduler class and overrides, steps, guidance, seed and
style LoRAs. A mode it cannot replay is listed with the reason, never left out silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.contract.modes import MODES, ModelRole
from engine.contract.request import ComparisonResult
from engine.files.resources import shipped

SCRIPT_NAME = "reproduce.py"
_RECIPE_LINE = 'RECIPE: dict[str, Any] = json.loads("{}")'
VAE_RETRY_MARK = "decoded again in fp32"


def replay_recipe(
    comparison: ComparisonResult, replay: Mapping[str, Any], files: Mapping[str, str]
) -> dict[str, Any]:
    """Everything the script needs, as plain JSON values. `files` names each image's PNG by (mode, seed)
    as "mode/seed"."""
    cannot = [
        {"mode": s.mode, "reason": f"it did not run in Fewstep ({s.reason})"} for s in comparison.skipped
    ]
    images = []
    # Mode by mode: the script then loads each pipeline once.
    order = {s.mode: i for i, s in enumerate(comparison.request.modes)}
    for result in sorted(comparison.results, key=lambda r: (order.get(r.mode, 0), r.seed)):
        spec = MODES[result.mode]
        if any(VAE_RETRY_MARK in warning for warning in result.warnings):
            cannot.append(
                {
                    "mode": f"{result.mode} (seed {result.seed})",
                    "reason": "the fp16 VAE overflowed and Fewstep decoded again in fp32; plain diffusers"
                    " returns the black image",
                }
            )
            continue
        overrides = dict(spec.scheduler_overrides)
        unet = _key(spec.unet_role) if spec.unet_role is not None else str(ModelRole.BASE)
        if spec.unet_role is not None and replay["files"].get(unet, {}).get("x0"):
            overrides["prediction_type"] = "sample"  # Lightning's 1-step UNet predicts the clean image
        # Only where the mode has them, so the other images' recipes are as they were.
        extra: dict[str, Any] = {}
        if (timesteps := spec.timesteps_for(result.steps)) is not None:
            extra["timesteps"] = list(timesteps)
        if result.eta is not None:
            extra["eta"] = result.eta
        if spec.adapter is not None and spec.lora_scale != 1.0:
            extra["lora_scale"] = spec.lora_scale
        images.append(
            {
                "mode": result.mode,
                "seed": result.seed,
                "steps": result.steps,
                "guidance": result.guidance,
                "unet": unet,
                "adapter": _key(spec.adapter) if spec.adapter is not None else None,
                # "fused": load_lora_weights + fuse_lora, as Fewstep's slot ran it; "unfused": an adapter.
                "lora_route": result.lora_route,
                "scheduler": spec.scheduler,
                "scheduler_overrides": overrides,
                "styles": [[replay["styles"][name], weight] for name, weight in result.styles],
                "file": files[f"{result.mode}/{result.seed}"],
                **extra,
            }
        )
    return {
        "prompt": comparison.request.prompt,
        "negative_prompt": comparison.request.negative_prompt,
        "width": comparison.width,
        "height": comparison.height,
        "device": replay["device"],
        "dtype": replay["dtype"],
        "threads": replay.get("threads"),
        "files": replay["files"],
        "images": images,
        "cannot_replay": cannot,
    }


def _key(role: str) -> str:
    """A role's key in the recipe's files (engine.runtime.run_context.replay_key)."""
    return role.replace("-", "_")


def script_text(recipe: Mapping[str, Any]) -> str:
    template = shipped("replay/reproduce.py").read_text(encoding="utf-8")
    if template.count(_RECIPE_LINE) != 1:
        raise RuntimeError("the shipped reproduce.py template has no RECIPE line to fill in")
    payload = json.dumps(recipe, indent=1, sort_keys=True)
    return template.replace(_RECIPE_LINE, f"RECIPE: dict[str, Any] = json.loads({payload!r})")


def write_reproduce(out_dir: Path, recipe: Mapping[str, Any]) -> Path:
    from engine.outputs.atomic import atomic_write_text

    path = out_dir / SCRIPT_NAME
    atomic_write_text(path, script_text(recipe))
    return path
