"""A cheap picture of the latents at each step, without running the VAE."""

from __future__ import annotations

import numpy as np
import torch

from engine.contract.request import RGBImage

# Linear map from SDXL's four latent channels to RGB, with a bias, as ComfyUI's SDXL latent format
# uses for its previews (fitted on real SDXL latents; for other VAEs it is only a rough tint).
_FACTORS = torch.tensor(
    [
        [0.3651, 0.4232, 0.4341],
        [-0.2533, -0.0042, 0.1068],
        [0.1076, 0.1111, -0.0362],
        [-0.3165, -0.2492, -0.2188],
    ]
)
_BIAS = torch.tensor([0.1084, -0.0175, -0.0011])


def latent_preview(latents: torch.Tensor) -> RGBImage:
    """(1, 4, h, w) latents to an (h, w, 3) uint8 image."""
    rgb = torch.einsum("chw,cr->hwr", latents[0].detach().float().cpu(), _FACTORS) + _BIAS
    rgb = ((rgb + 1.0) * 127.5).clamp(0, 255).round().to(torch.uint8)
    return np.ascontiguousarray(rgb.numpy())
