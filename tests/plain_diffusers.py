"""Each mode as its model card runs it in plain diffusers, with the base loaded by the same route as
the engine under test: a diffusers folder through ``from_pretrained``, or an original single file
through ``from_single_file`` with a config folder.

The route matters for bit-exact comparisons on a CPU. The numbers loaded are the same either way,
but not where they sit in memory: a folder's tensors stay in the mmapped file, at its byte offsets,
while a single file's converted tensors are partly fresh 64-byte-aligned copies. CPU kernels (MKL's
GEMM, oneDNN's convolutions) pick their blocking, and so the order of their sums, by alignment and
instruction set, so two routes can round differently in the last bit, which shows as one grey level
in a few pixels. The same files through the same route sit at the same offsets, and round alike.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from diffusers import (
    DDIMScheduler,
    EulerDiscreteScheduler,
    LCMScheduler,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from safetensors.torch import load_file

from devtools.tiny_model import TinyModelSet


@dataclass(frozen=True)
class BaseFiles:
    """Where the SDXL base comes from: a diffusers folder, or one single file and its config folder."""

    path: Path
    config: Path | None = None

    @property
    def configs(self) -> Path:
        """The folder holding ``unet/config.json`` and the other components' configs."""
        return self.path if self.config is None else self.config

    def pipeline(self, dtype: torch.dtype = torch.float32, **components: Any) -> Any:
        """The base pipeline in `dtype` (fp32, the CPU's, unless asked), with any component given
        replacing its own. A folder in fp16 is read from its fp16 files, as the cards say."""
        if self.config is None:
            pipe = StableDiffusionXLPipeline.from_pretrained(
                self.path, dtype=dtype, variant=fp16_variant(dtype), local_files_only=True, **components
            )
        else:
            pipe = StableDiffusionXLPipeline.from_single_file(
                str(self.path),
                config=str(self.config),
                dtype=dtype,
                local_files_only=True,
                **components,
            )
        pipe.set_progress_bar_config(disable=True)
        return pipe


def fp16_variant(dtype: torch.dtype) -> str | None:
    """The model cards' variant="fp16" for fp16 runs; float32 and bfloat16 read the full weights
    (the engine's own route: it takes a folder's fp16 files only for fp16 when both are there)."""
    return "fp16" if dtype == torch.float16 else None


def folder_base(models: TinyModelSet) -> BaseFiles:
    return BaseFiles(models.base)


def _image(pipe: Any, prompt: str, seed: int, steps: int, guidance: float) -> np.ndarray:
    generator = torch.Generator("cpu").manual_seed(seed)
    out = pipe(prompt, num_inference_steps=steps, guidance_scale=guidance, generator=generator)
    return np.asarray(out.images[0])


# Each function is the model card's own recipe, on the tiny files, by default the card's fp16
# arguments dropped as on a CPU (the fp32 weights, no variant); `dtype` runs it in half precision.
def card_ddim(
    models: TinyModelSet, base: BaseFiles, prompt: str, seed: int, *, dtype: torch.dtype = torch.float32
) -> np.ndarray:
    pipe = base.pipeline(dtype)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    return _image(pipe, prompt, seed, 30, 5.0)


def card_lcm(
    models: TinyModelSet, base: BaseFiles, prompt: str, seed: int, *, dtype: torch.dtype = torch.float32
) -> np.ndarray:
    unet = UNet2DConditionModel.from_pretrained(models.lcm_unet, dtype=dtype, variant=fp16_variant(dtype))
    pipe = base.pipeline(dtype, unet=unet)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    return _image(pipe, prompt, seed, 4, 8.0)


def with_lora(pipe: Any, lora: Path, *, fused: bool, styles: tuple[tuple[Path, float], ...] = ()) -> Any:
    """A distillation LoRA on a plain pipeline, as its model card loads it: `load_lora_weights`, then
    `fuse_lora()` (fused) or left as an adapter (unfused); then each style LoRA, unfused, at its weight.

    Fused with styles, the LoRA's wrappers are unloaded first (`unload_lora_weights()` keeps the fused
    weights): peft skips every unfused adapter of a layer that holds a fused one."""
    pipe.load_lora_weights(str(lora), adapter_name="distilled")
    names, weights = ([], []) if fused else (["distilled"], [1.0])
    if fused:
        pipe.fuse_lora()
        if styles:
            pipe.unload_lora_weights()
    for index, (path, weight) in enumerate(styles):
        with warnings.catch_warnings():
            # peft warns at each adapter after the first in one model; several are the point here.
            warnings.filterwarnings("ignore", message="Already found a `peft_config`", category=UserWarning)
            pipe.load_lora_weights(str(path), adapter_name=f"style-{index}")
        names.append(f"style-{index}")
        weights.append(weight)
    if styles:
        pipe.set_adapters(names, adapter_weights=weights)
    return pipe


def card_lcm_lora(
    models: TinyModelSet,
    base: BaseFiles,
    prompt: str,
    seed: int,
    *,
    dtype: torch.dtype = torch.float32,
    fused: bool = True,
    styles: tuple[tuple[Path, float], ...] = (),
) -> np.ndarray:
    pipe = base.pipeline(dtype)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    with_lora(pipe, models.lcm_lora, fused=fused, styles=styles)
    return _image(pipe, prompt, seed, 4, 1.0)


def lightning_unet(models: TinyModelSet, base: BaseFiles) -> Any:
    """ByteDance's recipe: the base UNet's config, the file's state dict copied in.

    The engine instead adopts the file's tensors and casts them to fp32; the file being fp16, as
    ByteDance's are, that cast is a fresh copy too, so both UNets sit in fresh 64-byte-aligned
    storage and compute alike."""
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(base.configs, subfolder="unet"))
    unet.load_state_dict(load_file(str(models.lightning_unet)))
    return unet


def card_lightning(
    models: TinyModelSet,
    base: BaseFiles,
    prompt: str,
    seed: int,
    *,
    unet: Any = None,
    dtype: torch.dtype = torch.float32,
) -> np.ndarray:
    chosen = lightning_unet(models, base).to(dtype) if unet is None else unet
    pipe = base.pipeline(dtype, unet=chosen)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
    return _image(pipe, prompt, seed, 4, 0.0)


def card_lightning_lora(
    models: TinyModelSet,
    base: BaseFiles,
    prompt: str,
    seed: int,
    *,
    dtype: torch.dtype = torch.float32,
    fused: bool = True,
    styles: tuple[tuple[Path, float], ...] = (),
) -> np.ndarray:
    pipe = base.pipeline(dtype)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
    with_lora(pipe, models.lightning_lora, fused=fused, styles=styles)
    return _image(pipe, prompt, seed, 4, 0.0)


class Card(Protocol):
    def __call__(
        self, models: TinyModelSet, base: BaseFiles, prompt: str, seed: int, *, dtype: torch.dtype = ...
    ) -> np.ndarray: ...


CARDS: dict[str, Card] = {
    "ddim": card_ddim,
    "lcm": card_lcm,
    "lcm-lora": card_lcm_lora,
    "lightning": card_lightning,
    "lightning-lora": card_lightning_lora,
}
