"""Estimates of the device memory SDXL's steps need beyond their weights (activations), in bytes.

These are estimates from SDXL's architecture, not measurements: they count the tensors alive at the
worst moment of each step and add a stated margin. The GPU benchmark's peak-VRAM figures are what
checks them. They assume diffusers' default attention processor on torch 2 (scaled dot-product
attention), which never materialises an attention matrix; with the classic processor the level-1
attention scores alone would take tokens^2 x heads elements (10 x 4096^2 per image at 1024x1024).
"""

from __future__ import annotations

DTYPE_BYTES = {"fp16": 2, "bf16": 2, "fp32": 4}
MIB = 1024**2

# --- the UNet's denoising step ------------------------------------------------------------------
# Elements per image in the batch, per latent pixel n0 = (H/8) x (W/8). SDXL's UNet has three
# levels: 320 channels on n0, 640 on n0/4, 1280 on n0/16.
# Kept for the up path (the skip connections): conv_in and two resnets at 320 on n0 (960 n0), the
# first downsample at 320 on n0/4 (80 n0), two resnets at 640 on n0/4 (320 n0), the second
# downsample at 640 on n0/16 (40 n0) and two transformer blocks' outputs at 1280 on n0/16 (160 n0):
# 1560 n0 in all.
UNET_SKIP_ELEMENTS = 1560
# The working set of the largest block on top of that: the last up block at full resolution
# concatenates 640 + 320 channels (960 n0) and its resnet holds its input, the normalised and the
# activated copies and the convolution's output (about 4 x 320 n0); the level-1 transformer's GEGLU
# holds 2 x 2560 + 2560 + 640 channels on n0/4 (2080 n0), which is smaller than 960 + 1280 n0.
UNET_WORKING_ELEMENTS = 960 + 4 * 320
# Doubled: the caching allocator's fragmentation and cuDNN's convolution workspaces are not counted
# above, and an out-of-memory error mid-comparison costs the artist far more than a tighter plan.
UNET_MARGIN = 2
# cuBLAS and cuDNN workspaces and the small tensors of a step (time and text embeddings, the
# scheduler's state), fixed.
STEP_FIXED_BYTES = 256 * MIB

# --- the VAE decode -----------------------------------------------------------------------------
# SDXL's decoder ends at full resolution: its last upsampler turns 256 channels at H/2 x W/2 into
# 256 channels at H x W (interpolated input and convolution output), then the first full-resolution
# resnet normalises and activates that 256-channel tensor. At most three 256 x H x W tensors are alive
# together; a fourth is counted for the allocator's slack.
DECODE_ELEMENTS_PER_PIXEL = 4 * 256
# The decoded image (3 channels) and, when tiled, every decoded tile kept for blending (tiles
# overlap by a quarter, so about 1.8 times the image) and the concatenated rows: about 3 copies.
DECODE_IMAGE_COPIES = 3
TILE_SIZES = (512, 256)  # output pixels per tile edge, tried largest first

# --- the text encoders --------------------------------------------------------------------------
# 77 tokens, a batch of 2 with a negative prompt: every hidden state of bigG's 32 layers is kept
# (SDXL takes the penultimate one), 33 x 77 x 1280 x 2 elements; rounded up generously.
ENCODE_FIXED_BYTES = 128 * MIB


def unet_step_bytes(width: int, height: int, dtype: str, batch: int) -> int:
    """Activations of one UNet call at this image size; batch 2 when classifier-free guidance runs."""
    latent_pixels = (width // 8) * (height // 8)
    elements = (UNET_SKIP_ELEMENTS + UNET_WORKING_ELEMENTS) * latent_pixels * batch * UNET_MARGIN
    return elements * DTYPE_BYTES[dtype] + STEP_FIXED_BYTES


def decode_bytes(width: int, height: int, decode_dtype: str, tile: int | None) -> int:
    """Activations of the VAE decode of one image, whole or in tiles of `tile` output pixels."""
    edge_w, edge_h = (min(tile, width), min(tile, height)) if tile else (width, height)
    elements = DECODE_ELEMENTS_PER_PIXEL * edge_w * edge_h + DECODE_IMAGE_COPIES * 3 * width * height
    return elements * DTYPE_BYTES[decode_dtype] + STEP_FIXED_BYTES


def encode_bytes() -> int:
    return ENCODE_FIXED_BYTES
