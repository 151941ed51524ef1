"""The field's modes (issue 21) as their model cards run them in plain diffusers, on the tiny fixtures of
devtools/field_fixtures.py: ``load_lora_weights`` (unfused, as the engine runs a LoRA: the same load
route, so the same numbers), the card's scheduler from the base's config, and the card's call arguments.
The base comes through the same route as the engine's (tests/plain_diffusers.py says why it matters).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    LCMScheduler,
    TCDScheduler,
    UNet2DConditionModel,
)
from safetensors.torch import load_file

from tests.plain_diffusers import BaseFiles


@dataclass(frozen=True)
class CardRun:
    """One card's recipe: its file (a LoRA or a bare UNet), scheduler, and pipeline call arguments."""

    file: str  # the fixture's name in the field set
    unet: bool  # a bare UNet state dict replacing the base's, else a LoRA
    scheduler: Callable[[Any], Any] | None  # base scheduler config -> the card's; None: the pipeline's own
    # num_inference_steps, guidance_scale, eta, timesteps
    call: Mapping[str, Any] = field(default_factory=dict)
    pipeline: bool = False  # a whole pipeline folder, loaded as its card does (SDXL-Turbo)


def _trailing_ddim(config: Any) -> Any:
    return DDIMScheduler.from_config(config, timestep_spacing="trailing")


def _pcm_ddim(config: Any) -> Any:
    return DDIMScheduler.from_config(
        config, timestep_spacing="trailing", clip_sample=False, set_alpha_to_one=False
    )


AYS_SDXL = [
    999,
    845,
    730,
    587,
    443,
    310,
    193,
    116,
    53,
    13,
]  # diffusers' AysSchedules["StableDiffusionXLTimesteps"]

# mode -> its card's recipe (the card's own numbers; see resources/modes/builtin.toml for each quote)
FIELD_CARDS: dict[str, CardRun] = {
    "tcd": CardRun(
        "tcd", False, TCDScheduler.from_config, {"num_inference_steps": 4, "guidance_scale": 0.0, "eta": 0.3}
    ),
    "hyper-lora": CardRun(
        "hyper-lora-4steps", False, _trailing_ddim, {"num_inference_steps": 4, "guidance_scale": 0.0}
    ),
    "hyper-lora-1step": CardRun(
        "hyper-lora-1step",
        False,
        TCDScheduler.from_config,
        {"num_inference_steps": 1, "guidance_scale": 0.0, "eta": 1.0},
    ),
    "hyper-lora-cfg": CardRun(
        "hyper-lora-8steps-cfg", False, _trailing_ddim, {"num_inference_steps": 8, "guidance_scale": 5.0}
    ),
    "hyper-unet": CardRun(
        "hyper-unet-1step",
        True,
        LCMScheduler.from_config,
        {"num_inference_steps": 1, "guidance_scale": 0.0, "timesteps": [800]},
    ),
    "dmd2": CardRun(
        "dmd2-unet-4step",
        True,
        LCMScheduler.from_config,
        {"num_inference_steps": 4, "guidance_scale": 0.0, "timesteps": [999, 749, 499, 249]},
    ),
    "dmd2-lora": CardRun(
        "dmd2-lora-4step",
        False,
        LCMScheduler.from_config,
        {"num_inference_steps": 4, "guidance_scale": 0.0, "timesteps": [999, 749, 499, 249]},
    ),
    "pcm-lora": CardRun(
        "pcm-smallcfg-4step", False, _pcm_ddim, {"num_inference_steps": 4, "guidance_scale": 0.0}
    ),
    "pcm-normalcfg": CardRun(
        "pcm-normalcfg-8step", False, _pcm_ddim, {"num_inference_steps": 8, "guidance_scale": 3.0}
    ),
    # PCM's demo: LCMScheduler for the LCM-like file alone (LCM ignores the demo's trailing spacing).
    "pcm-lcmlike": CardRun(
        "pcm-lcmlike", False, LCMScheduler.from_config, {"num_inference_steps": 4, "guidance_scale": 0.0}
    ),
    "flash-lora": CardRun(
        "flash", False, LCMScheduler.from_config, {"num_inference_steps": 4, "guidance_scale": 0.0}
    ),
    # The card loads the whole folder, its own scheduler (EulerAncestral, trailing) with it.
    "turbo": CardRun(
        "turbo-folder", False, None, {"num_inference_steps": 1, "guidance_scale": 0.0}, pipeline=True
    ),
    "ays": CardRun(
        "",
        False,
        lambda config: DPMSolverMultistepScheduler.from_config(config, algorithm_type="sde-dpmsolver++"),
        {"guidance_scale": 5.0, "timesteps": AYS_SDXL},
    ),
}


def card_image(
    mode: str,
    path: Path | None,
    base: BaseFiles,
    prompt: str,
    negative_prompt: str,
    seed: int,
    *,
    fused: bool = False,
    lora_scale: float = 1.0,
) -> np.ndarray:
    """The card's image of `mode` from the fixture at `path` (None for a mode without a file). A LoRA
    is loaded with `load_lora_weights`, then, where `fused`, fused as the cards fuse it:
    `fuse_lora(lora_scale=...)`."""
    card = FIELD_CARDS[mode]
    if card.pipeline and path is not None:
        pipe = BaseFiles(path).pipeline()
    elif card.unet and path is not None:
        # The cards' route for a bare UNet: the base config, then the file's state dict copied in.
        unet = UNet2DConditionModel.from_config(
            UNet2DConditionModel.load_config(base.configs, subfolder="unet")
        )
        unet.load_state_dict(load_file(str(path)))
        pipe = base.pipeline(unet=unet)
    else:
        pipe = base.pipeline()
        if path is not None:
            pipe.load_lora_weights(str(path))
            if fused:
                pipe.fuse_lora(lora_scale=lora_scale)
    if card.scheduler is not None:
        pipe.scheduler = card.scheduler(pipe.scheduler.config)
    generator = torch.Generator("cpu").manual_seed(seed)
    out = pipe(prompt, negative_prompt=negative_prompt or None, generator=generator, **card.call)
    return np.asarray(out.images[0])
