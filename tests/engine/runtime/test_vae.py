"""A replacement VAE, and the fp32 retry when a VAE overflows in fp16."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from devtools.tiny_model import TinyModelSet
from engine.contract.errors import ModelInputError
from engine.contract.request import GenerationRequest, ModeSettings
from engine.files.model_paths import ModelPaths
from engine.runtime.device import plan_device
from engine.runtime.engine import Engine

REQUEST = GenerationRequest(prompt="a red circle", seeds=(2,), modes=(ModeSettings(mode="ddim", steps=3),))


def overflowing_vae(models: TinyModelSet, dest: Path, *, force_upcast: bool) -> Path:
    """The tiny VAE with its decoder input scaled far past fp16's range (65504). A GroupNorm follows,
    so in fp32 the scale cancels and the image is the same; in fp16 it becomes inf, then NaN."""
    shutil.copytree(models.base / "vae", dest)
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"):
        state = load_file(str(dest / name))
        dtype = state["decoder.conv_in.weight"].dtype
        for key in ("decoder.conv_in.weight", "decoder.conv_in.bias"):
            state[key] = (state[key].float() * 1e5).to(dtype)  # fp16 files hold inf: as broken as real ones
        save_file(state, str(dest / name), metadata={"format": "pt"})
    config = json.loads((dest / "config.json").read_text())
    config["force_upcast"] = force_upcast  # the fp16-fix VAE says false; here it is a lie
    (dest / "config.json").write_text(json.dumps(config))
    return dest


def test_vae_override_replaces_the_vae_in_every_mode(tiny_models: TinyModelSet, tmp_path: Path) -> None:
    vae = overflowing_vae(tiny_models, tmp_path / "vae", force_upcast=True)
    paths = ModelPaths(base=tiny_models.base, lcm_unet=tiny_models.lcm_unet, vae=vae)
    engine = Engine(paths)
    assert all(pipe.vae is engine.base.vae for pipe in engine.pipes.values())
    scaled = engine.base.vae.decoder.conv_in.bias.detach()
    assert float(scaled.abs().max()) > 1e3


def test_black_fp16_output_is_decoded_again_in_fp32(tiny_models: TinyModelSet, tmp_path: Path) -> None:
    plan = plan_device("cpu", "float16", 1)
    lying = Engine(
        ModelPaths(
            base=tiny_models.base, vae=overflowing_vae(tiny_models, tmp_path / "a", force_upcast=False)
        ),
        plan,
    )
    honest = Engine(
        ModelPaths(
            base=tiny_models.base, vae=overflowing_vae(tiny_models, tmp_path / "b", force_upcast=True)
        ),
        plan,
    )
    retried = lying.run(REQUEST).results[0]
    upcast_by_diffusers = honest.run(REQUEST).results[0]
    assert retried.image.max() > 0
    assert any("decoded again in fp32" in w for w in retried.warnings)
    np.testing.assert_array_equal(retried.image, upcast_by_diffusers.image)
    assert lying.base.vae.dtype == torch.float16  # put back after the retry


def test_a_unet_given_as_vae_is_refused(tiny_models: TinyModelSet) -> None:
    with pytest.raises(ModelInputError, match="not a VAE"):
        Engine(replace(ModelPaths(base=tiny_models.base), vae=tiny_models.lightning_unet))
