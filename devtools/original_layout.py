"""Writes SDXL weights in the original (SGM) single-file layout of ``sd_xl_base_1.0.safetensors``.

Artists bring that file, community checkpoints and the all-in-one SDXL-Lightning files, all in this
layout; no real one can be downloaded where Fewstep is tested, so fixtures are converted from the tiny
diffusers set by the inverse of the key table in docs/model-files.md. Every tensor of the four
components must land under a name of the table: a key the table does not cover raises, so a fixture
never silently differs from the real layout.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from devtools.tiny_model import TinyModelSet
from engine.outputs.atomic import atomic_write

__all__ = [
    "SINGLE_FILE_NAME",
    "TE1_PREFIX",
    "TE2_PREFIX",
    "UNET_PREFIX",
    "VAE_PREFIX",
    "diffusers_to_original",
    "original_te1",
    "original_te2",
    "original_unet",
    "original_vae",
    "write_single_file_checkpoint",
    "write_single_file_config",
]

SINGLE_FILE_NAME = "sd_xl_base_1.0.safetensors"
UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TE1_PREFIX = "conditioner.embedders.0.transformer."  # Hugging Face CLIPTextModel names follow
TE2_PREFIX = "conditioner.embedders.1.model."  # open_clip names follow

_RESNET_UNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_VAE_ATTENTION = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}
_OPEN_CLIP_LAYER = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}
# Read by no SDXL pipeline, but the real file carries it (0-d); ln 100 is the clamp a trained CLIP sits at.
_LOGIT_SCALE = math.log(100.0)

# (diffusers module prefix, original module prefix, renames of the names inside that module)
_Table = list[tuple[str, str, Mapping[str, str]]]


def _count(keys: Mapping[str, torch.Tensor], pattern: str) -> int:
    """How many distinct values the single ``(\\d+)`` group of ``pattern`` takes over ``keys``."""
    regex = re.compile(pattern)
    return len({m.group(1) for k in keys if (m := regex.match(k))})


def _unet_table(keys: Mapping[str, torch.Tensor]) -> _Table:
    """The UNet's modules, for its number of levels and layers per block (SDXL: 3 and 2)."""
    levels = _count(keys, r"down_blocks\.(\d+)\.")
    per_block = _count(keys, r"down_blocks\.0\.resnets\.(\d+)\.")
    if levels == 0 or per_block == 0:
        raise ValueError("not a diffusers UNet state dict: no down_blocks.N.resnets.M keys")
    table: _Table = [
        ("time_embedding.linear_1.", "time_embed.0.", {}),
        ("time_embedding.linear_2.", "time_embed.2.", {}),
        ("add_embedding.linear_1.", "label_emb.0.0.", {}),
        ("add_embedding.linear_2.", "label_emb.0.2.", {}),
        ("conv_in.", "input_blocks.0.0.", {}),
        ("conv_norm_out.", "out.0.", {}),
        ("conv_out.", "out.2.", {}),
        ("mid_block.resnets.0.", "middle_block.0.", _RESNET_UNET),
        ("mid_block.attentions.0.", "middle_block.1.", {}),
        ("mid_block.resnets.1.", "middle_block.2.", _RESNET_UNET),
    ]
    # Each down level holds per_block (resnet, attention) pairs then a downsampler: per_block + 1 inputs.
    for i in range(levels):
        for j in range(per_block):
            block = (per_block + 1) * i + j + 1
            table.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{block}.0.", _RESNET_UNET))
            table.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{block}.1.", {}))
        downsampler = f"input_blocks.{(per_block + 1) * (i + 1)}.0.op."
        table.append((f"down_blocks.{i}.downsamplers.0.conv.", downsampler, {}))
    # Each up level holds per_block + 1 (resnet, attention) pairs; its upsampler follows the last pair's
    # attention (".2.conv") or, in a level without attention, its resnet (".1.conv").
    for i in range(levels):
        for j in range(per_block + 1):
            block = (per_block + 1) * i + j
            table.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{block}.0.", _RESNET_UNET))
            table.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{block}.1.", {}))
        last = (per_block + 1) * i + per_block
        slot = 2 if any(k.startswith(f"up_blocks.{i}.attentions.") for k in keys) else 1
        table.append((f"up_blocks.{i}.upsamplers.0.conv.", f"output_blocks.{last}.{slot}.conv.", {}))
    return table


def _rename_by_table(key: str, table: _Table, what: str) -> str:
    for diffusers_prefix, original_prefix, inner in table:
        if key.startswith(diffusers_prefix):
            rest = key[len(diffusers_prefix) :]
            for old, new in inner.items():
                if rest.startswith(old + "."):
                    rest = new + rest[len(old) :]
                    break
            return original_prefix + rest
    raise ValueError(f"{what} key {key!r} has no place in the original layout")


def original_unet(unet_sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The diffusers UNet's tensors under their original names (``model.diffusion_model.`` included)."""
    table = _unet_table(unet_sd)
    return {UNET_PREFIX + _rename_by_table(k, table, "UNet"): v for k, v in unet_sd.items()}


def original_vae(vae_sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The diffusers VAE's tensors under their original names, mid-attention projections as 1x1 convs."""
    levels = _count(vae_sd, r"decoder\.up_blocks\.(\d+)\.")
    table: _Table = []
    for part in ("encoder", "decoder"):
        table += [
            (f"{part}.conv_in.", f"{part}.conv_in.", {}),
            (f"{part}.conv_out.", f"{part}.conv_out.", {}),
            (f"{part}.conv_norm_out.", f"{part}.norm_out.", {}),
            (f"{part}.mid_block.resnets.0.", f"{part}.mid.block_1.", {}),
            (f"{part}.mid_block.resnets.1.", f"{part}.mid.block_2.", {}),
            (f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1.", _VAE_ATTENTION),
        ]
    for i in range(levels):
        table += [
            (f"encoder.down_blocks.{i}.resnets.", f"encoder.down.{i}.block.", {}),
            (f"encoder.down_blocks.{i}.downsamplers.0.conv.", f"encoder.down.{i}.downsample.conv.", {}),
            # The original decoder counts its levels from the lowest resolution up.
            (f"decoder.up_blocks.{i}.resnets.", f"decoder.up.{levels - 1 - i}.block.", {}),
            (f"decoder.up_blocks.{i}.upsamplers.0.conv.", f"decoder.up.{levels - 1 - i}.upsample.conv.", {}),
        ]
    table += [("quant_conv.", "quant_conv.", {}), ("post_quant_conv.", "post_quant_conv.", {})]
    out: dict[str, torch.Tensor] = {}
    for key, value in vae_sd.items():
        name = _rename_by_table(key, table, "VAE")
        # VAE resnets keep diffusers' inner names but for the shortcut.
        name = name.replace(".conv_shortcut.", ".nin_shortcut.")
        if ".mid.attn_1." in name and name.endswith(".weight") and value.ndim == 2:
            value = value[:, :, None, None]
        out[VAE_PREFIX + name] = value.contiguous()
    return out


def _text_model_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # transformers 5 saves CLIPTextModel without the text_model. wrapper; the real files have it.
    return {
        k if k.startswith("text_model.") or k == "text_projection.weight" else "text_model." + k: v
        for k, v in state.items()
    }


def original_te1(te1_sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CLIP ViT-L's tensors as SGM stores them: Hugging Face names, plus int64 ``position_ids`` [1, 77]."""
    state = _text_model_keys(te1_sd)
    unexpected = [k for k in state if not k.startswith("text_model.")]
    if unexpected:
        raise ValueError(f"first text encoder key {unexpected[0]!r} has no place in the original layout")
    positions = state["text_model.embeddings.position_embedding.weight"].shape[0]
    state["text_model.embeddings.position_ids"] = torch.arange(positions, dtype=torch.int64)[None, :]
    return {TE1_PREFIX + k: v for k, v in state.items()}


def original_te2(te2_sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenCLIP bigG's tensors under open_clip's names: q, k, v stacked, the projection transposed."""
    state = _text_model_keys(te2_sd)
    out: dict[str, torch.Tensor] = {}
    stacked: dict[str, dict[str, torch.Tensor]] = {}
    layer = re.compile(r"text_model\.encoder\.layers\.(\d+)\.(.+)$")
    fixed = {
        "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
        "text_model.embeddings.position_embedding.weight": "positional_embedding",
        "text_model.final_layer_norm.weight": "ln_final.weight",
        "text_model.final_layer_norm.bias": "ln_final.bias",
    }
    for key, value in state.items():
        if key in fixed:
            out[fixed[key]] = value
        elif key == "text_projection.weight":
            # nn.Linear stores [out, in]; open_clip multiplies x @ text_projection, so [in, out].
            out["text_projection"] = value.T.contiguous()
        elif key == "text_model.embeddings.position_ids":
            continue  # open_clip has no such buffer
        elif match := layer.match(key):
            index, rest = match.groups()
            qkv = re.fullmatch(r"self_attn\.([qkv])_proj\.(weight|bias)", rest)
            if qkv:
                stacked.setdefault(f"{index}.{qkv.group(2)}", {})[qkv.group(1)] = value
                continue
            for old, new in _OPEN_CLIP_LAYER.items():
                if rest.startswith(old + "."):
                    out[f"transformer.resblocks.{index}.{new}{rest[len(old) :]}"] = value
                    break
            else:
                raise ValueError(f"second text encoder key {key!r} has no place in the original layout")
        else:
            raise ValueError(f"second text encoder key {key!r} has no place in the original layout")
    for name, parts in stacked.items():
        index, kind = name.split(".")
        if set(parts) != {"q", "k", "v"}:
            raise ValueError(f"second text encoder layer {index} lacks one of q, k, v {kind}")
        out[f"transformer.resblocks.{index}.attn.in_proj_{kind}"] = torch.cat(
            [parts["q"], parts["k"], parts["v"]], dim=0
        )
    reference = out["ln_final.weight"]
    out["logit_scale"] = torch.tensor(_LOGIT_SCALE, dtype=reference.dtype)
    return {TE2_PREFIX + k: v for k, v in out.items()}


def diffusers_to_original(
    unet_sd: Mapping[str, torch.Tensor],
    vae_sd: Mapping[str, torch.Tensor],
    te1_sd: Mapping[str, torch.Tensor],
    te2_sd: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """The four diffusers/transformers state dicts as one ``sd_xl_base_1.0.safetensors`` state dict.

    Text-encoder keys may come with or without transformers' ``text_model.`` wrapper. Tensors keep
    their dtype (``position_ids`` is always int64).
    """
    merged: dict[str, torch.Tensor] = {}
    for part in (original_unet(unet_sd), original_vae(vae_sd), original_te1(te1_sd), original_te2(te2_sd)):
        merged.update(part)
    return merged


def _to(state: Mapping[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in state.items()}


def write_single_file_checkpoint(
    models: TinyModelSet,
    path: Path,
    *,
    dtype: torch.dtype = torch.float16,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write the tiny set's base model as one original-layout file (like ``sd_xl_base_1.0.safetensors``).

    Made from the fp32 weights, so fp16 gives exactly the tensors of the set's ``.fp16`` variant files.
    """
    base = models.base
    merged = diffusers_to_original(
        load_file(base / "unet" / "diffusion_pytorch_model.safetensors"),
        load_file(base / "vae" / "diffusion_pytorch_model.safetensors"),
        load_file(base / "text_encoder" / "model.safetensors"),
        load_file(base / "text_encoder_2" / "model.safetensors"),
    )
    data = save(_to(merged, dtype), metadata=dict(metadata) if metadata is not None else None)
    atomic_write(path, lambda handle: handle.write(data))
    return path


def write_single_file_config(models: TinyModelSet, dest: Path) -> Path:
    """The tiny set's ``config=`` folder for ``from_single_file``: its base folder without weights."""
    if dest.exists():
        raise FileExistsError(f"{dest} exists")
    shutil.copytree(models.base, dest, ignore=shutil.ignore_patterns("*.safetensors"))
    return dest
