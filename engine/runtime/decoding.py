"""The fallback decode for VAEs that overflow in fp16.

SDXL's original VAE gives NaN (a black image) in fp16; diffusers upcasts it only when its config
says `force_upcast`. A VAE whose config says otherwise but still overflows (a mislabelled fix, a
community VAE) would hand the artist a black tile: the engine detects that and decodes the same
final latents again in fp32, mirroring the pipeline's own decode step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from engine.contract.request import RGBImage


def looks_failed(image: RGBImage) -> bool:
    """NaN becomes 0 on the way to uint8: an all-black image is the trace of an fp16 overflow."""
    return int(image.max()) == 0


def decode_upcast(pipe: Any, latents: torch.Tensor) -> RGBImage:
    """Decode final latents with the VAE in fp32, then put the VAE back in its dtype."""
    vae = pipe.vae
    dtype = vae.dtype
    vae.to(torch.float32)
    try:
        latents = latents.to(torch.float32)
        config = vae.config
        mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
        if mean is not None and std is not None:
            # Made where the latents are: a CPU tensor of four dims cannot meet a CUDA one.
            shape = (1, len(mean), 1, 1)
            std_t = torch.tensor(std, device=latents.device).view(shape)
            mean_t = torch.tensor(mean, device=latents.device).view(shape)
            latents = latents * std_t / config.scaling_factor + mean_t
        else:
            latents = latents / config.scaling_factor
        with torch.inference_mode():
            decoded = vae.decode(latents.to(vae.device), return_dict=False)[0]
        picture = pipe.image_processor.postprocess(decoded, output_type="pil")[0]
    finally:
        vae.to(dtype)
    return np.asarray(picture.convert("RGB"), dtype=np.uint8)
