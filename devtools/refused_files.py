"""Fixture writers for files Fewstep must refuse: not SDXL (SD 1.x and 2.x LoRAs and checkpoints, SDXL
inpainting), broken (empty, truncated), a pickle that proves it was never unpickled, and a Lightning UNet
and a LoRA of other widths; plus the all-in-one Lightning checkpoint. Deterministic, like every writer."""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from devtools.lora_fixtures import KOHYA_SDXL_METADATA, kohya_entries, save_safetensors
from devtools.original_layout import UNET_PREFIX, diffusers_to_original
from devtools.tiny_model import (
    TinyModelSet,
    TinySpec,
    kohya_lora_state_dict,
    unet_config,
)
from engine.runtime.libraries import quiet_diffusers

# ---------------------------------------------------------------------------------------------
# Files that are not SDXL, or not usable


def _tiny(
    shape: Sequence[int], generator: torch.Generator, dtype: torch.dtype = torch.float16
) -> torch.Tensor:
    return (torch.randn(tuple(shape), generator=generator) * 0.02).to(dtype).contiguous()


def write_sd15_lora(path: Path, *, seed: int = 0, metadata: bool = True, rank: int = 4) -> Path:
    """A kohya LoRA for Stable Diffusion 1.5 (tiny widths): attention at the first UNet level, one
    text encoder under ``lora_te_``, and kohya's ``ss_base_model_version`` ``sd_v1``."""
    generator = torch.Generator().manual_seed(seed)
    modules = {
        "lora_unet_down_blocks_0_attentions_0_proj_in": (32, 32),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q": (32, 32),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k": (32, 24),
        "lora_unet_up_blocks_3_attentions_2_proj_out": (32, 32),
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj": (24, 24),
        "lora_te_text_model_encoder_layers_0_mlp_fc1": (96, 24),
    }
    state: dict[str, torch.Tensor] = {}
    for key, (out_features, in_features) in modules.items():
        state.update(
            kohya_entries(
                key,
                (_tiny((rank, in_features), generator), _tiny((out_features, rank), generator)),
                2.0,
                torch.float16,
            )
        )
    meta = {
        "ss_base_model_version": "sd_v1",
        "modelspec.architecture": "stable-diffusion-v1/lora",
        "ss_network_dim": str(rank),
        "ss_network_alpha": "2.0",
    }
    save_safetensors(state, path, meta if metadata else None)
    return path


def _checkpoint(path: Path, shapes: Mapping[str, Sequence[int]], seed: int) -> Path:
    generator = torch.Generator().manual_seed(seed)
    state = {key: _tiny(shape, generator) for key, shape in shapes.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, path)
    return path


_LDM_UNET_AND_VAE: Mapping[str, Sequence[int]] = {
    "model.diffusion_model.input_blocks.0.0.weight": (32, 4, 3, 3),
    "model.diffusion_model.input_blocks.0.0.bias": (32,),
    "model.diffusion_model.input_blocks.1.1.proj_in.weight": (32, 32, 1, 1),
    "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (32, 24),
    "model.diffusion_model.out.2.weight": (4, 32, 3, 3),
    "first_stage_model.decoder.conv_in.weight": (32, 4, 3, 3),
    "first_stage_model.encoder.conv_in.weight": (32, 3, 3, 3),
}


def write_sd15_checkpoint(path: Path, *, seed: int = 0) -> Path:
    """The header of an SD 1.5 single file (tiny tensors): LDM UNet and VAE, CLIP under
    ``cond_stage_model.transformer.``."""
    return _checkpoint(
        path,
        {
            **_LDM_UNET_AND_VAE,
            "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (64, 24),
            "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight": (24, 24),
            "cond_stage_model.transformer.text_model.final_layer_norm.weight": (24,),
        },
        seed,
    )


def write_sd2_checkpoint(path: Path, *, seed: int = 0) -> Path:
    """The header of an SD 2.x single file (tiny tensors): OpenCLIP under ``cond_stage_model.model.``."""
    return _checkpoint(
        path,
        {
            **_LDM_UNET_AND_VAE,
            "cond_stage_model.model.token_embedding.weight": (64, 32),
            "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight": (96, 32),
            "cond_stage_model.model.ln_final.weight": (32,),
        },
        seed,
    )


def _original_state(models: TinyModelSet, unet_file: Path | None = None) -> dict[str, torch.Tensor]:
    base = models.base
    unet = load_file(unet_file or base / "unet" / "diffusion_pytorch_model.safetensors")
    return diffusers_to_original(
        unet,
        load_file(base / "vae" / "diffusion_pytorch_model.safetensors"),
        load_file(base / "text_encoder" / "model.safetensors"),
        load_file(base / "text_encoder_2" / "model.safetensors"),
    )


def _save_fp16(state: Mapping[str, torch.Tensor], path: Path) -> Path:
    converted = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(converted, path)
    return path


def write_sdxl_inpainting_checkpoint(models: TinyModelSet, path: Path, *, seed: int = 0) -> Path:
    """The tiny base as an original single file whose UNet takes 9 input channels, as SDXL inpainting's."""
    state = _original_state(models)
    key = UNET_PREFIX + "input_blocks.0.0.weight"
    out_channels, _, kh, kw = state[key].shape
    state[key] = _tiny((out_channels, 9, kh, kw), torch.Generator().manual_seed(seed), torch.float32)
    return _save_fp16(state, path)


def write_lightning_checkpoint(models: TinyModelSet, path: Path) -> Path:
    """An all-in-one Lightning checkpoint (``sdxl_lightning_4step.safetensors``): the original single-file
    layout, fp16, whose UNet is the set's Lightning UNet and whose other parts are the base's."""
    return _save_fp16(_original_state(models, models.lightning_unet), path)


def write_empty_safetensors(path: Path) -> Path:
    """A valid safetensors file with no tensor (what a failed export leaves)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({}, path)
    return path


def write_truncated(source: Path, path: Path, *, keep: float = 0.5) -> Path:
    """The first ``keep`` of ``source``'s bytes, as an interrupted download leaves a file."""
    data = source.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: int(len(data) * keep)])
    return path


class _Tripwire:
    """Unpickling this opens ``marker`` for writing: it creates the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def write_pickle_checkpoint(path: Path, marker: Path) -> Path:
    """A pickle (``.ckpt``, ``.pt``, ``.bin``) that creates ``marker`` if anything ever unpickles it:
    the marker's absence proves the file was refused unopened."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"state_dict": _Tripwire(marker)}, protocol=2))
    return path


OTHER_WIDTHS = TinySpec(unet_channels=(32, 32, 64))


def _other_unet(seed: int, spec: TinySpec) -> Any:
    quiet_diffusers()
    from diffusers import UNet2DConditionModel

    config = {k: v for k, v in unet_config(spec).items() if not k.startswith("_")}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet2DConditionModel(**config)


def write_wrong_shape_lightning_unet(path: Path, *, seed: int = 0, spec: TinySpec = OTHER_WIDTHS) -> Path:
    """A bare Lightning UNet (diffusers names, fp16, no metadata) of a model with other widths; name the
    file sdxl_lightning_4step_unet.safetensors so only its shapes are wrong."""
    unet = _other_unet(seed, spec)
    state = {k: v.detach().half().contiguous() for k, v in unet.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, path)
    return path


def write_foreign_lora(path: Path, *, seed: int = 0, spec: TinySpec = OTHER_WIDTHS) -> Path:
    """A kohya style LoRA (SDXL metadata, diffusers names) made for a UNet of other widths: every module
    name exists in the tiny base, no shape fits."""
    state = kohya_lora_state_dict(_other_unet(seed, spec), rank=4, alpha=2.0, seed=seed + 1)
    save_safetensors(state, path, {**KOHYA_SDXL_METADATA, "ss_network_dim": "4", "ss_network_alpha": "2.0"})
    return path
