"""Sizes of the pocket model and its configs, written as the real SDXL files have them.

The topology is SDXL's (devtools.tiny_model writes the JSON); only the widths are small. The VAE has
SDXL's 4 levels, so 64x64 images become 8x8x4 latents, the same factor 8 as SDXL's 1024 -> 128: the
pipeline's ``vae_scale_factor`` and default size then come out right with no change anywhere.
"""

from __future__ import annotations

from typing import Any

from devtools.tiny_model import TinySpec, unet_config, vae_config

POCKET_SPEC = TinySpec(
    unet_channels=(32, 64, 64),
    unet_heads=(1, 2, 2),
    unet_transformer_layers=(1, 1, 2),
    vae_channels=(32, 32, 64, 64),
    te1_hidden=64,
    te1_layers=3,
    te1_heads=4,
    te2_hidden=80,
    te2_layers=10,
    te2_heads=4,
    te2_projection=80,
    addition_time_embed_dim=16,
    lcm_time_cond_proj_dim=32,
    lora_rank=8,
    lora_alpha=8.0,
    image_size=64,
    # 8 groups, not 32: with one channel per group GroupNorm is an instance norm, which erases a flat
    # colour (a plain background) from the features, and the VAE decoder then cannot draw it.
    norm_num_groups=8,
)
# Tokens a prompt is padded to: the grammar's longest sentence is 13 tokens with BOS and EOS.
MAX_TOKENS = 16
IMAGE_SIZE = POCKET_SPEC.image_size
LATENT_SIZE = IMAGE_SIZE // 8


def config_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """A config file's entries as constructor arguments (no ``_class_name`` and the like)."""
    return {k: v for k, v in config.items() if not k.startswith("_")}


def pocket_vae_config(scaling_factor: float = 0.13025) -> dict[str, Any]:
    config = vae_config(POCKET_SPEC)
    config["scaling_factor"] = scaling_factor
    return config


def pocket_unet_config(*, time_cond_proj_dim: int | None = None) -> dict[str, Any]:
    return unet_config(POCKET_SPEC, time_cond_proj_dim=time_cond_proj_dim)


def build_vae(scaling_factor: float = 0.13025) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(**config_kwargs(pocket_vae_config(scaling_factor)))


def build_unet(*, time_cond_proj_dim: int | None = None) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**config_kwargs(pocket_unet_config(time_cond_proj_dim=time_cond_proj_dim)))
