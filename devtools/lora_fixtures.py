"""Fixture writers for real model files: style LoRAs in every layout, files that must be refused, a
Hugging Face cache, an all-in-one Lightning checkpoint.

No real weights can be downloaded where Fewstep is tested, so the tests of issue 4 point the engine at
tiny random files that follow docs/model-files.md key for key:

- style LoRAs for the tiny set in the four layouts of the LoRA table (kohya with diffusers names, kohya
  with original SGM names plus ``lora_te1_``/``lora_te2_`` text-encoder keys and kohya's metadata, PEFT as
  diffusers' ``save_lora_weights`` writes it, old diffusers), all written from one set of matrices
  (`LoraMatrices`) so that every layout must give the same images;
- files that are not SDXL (SD 1.x and 2.x LoRAs and checkpoints, SDXL inpainting), broken files (empty,
  truncated), a pickle that proves it was never unpickled, a Lightning UNet and a LoRA of other widths;
- a Hugging Face hub cache (``models--{org}--{name}/blobs``, ``refs/main``, ``snapshots/{commit}`` of
  relative symlinks) holding the tiny set under the real repository ids.

Every writer is deterministic: the same arguments give byte-identical files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from devtools.original_layout import UNET_PREFIX, original_unet
from devtools.tiny_model import (
    LORA_TARGETS,
    TinyModelSet,
    kohya_key,
)
from engine.runtime.libraries import quiet_diffusers

__all__ = [
    "ATTENTION_TARGETS",
    "KOHYA_SDXL_METADATA",
    "STYLE_CASES",
    "TEXT_ENCODER_ATTENTION_TARGETS",
    "TEXT_ENCODER_TARGETS",
    "LoraLayout",
    "LoraMatrices",
    "StyleFile",
    "kohya_entries",
    "kohya_state_dict",
    "lora_matrices",
    "old_diffusers_state_dict",
    "peft_state_dict",
    "save_safetensors",
    "sgm_module_names",
    "sort_header_metadata",
    "write_lora",
    "write_style_files",
]

# (down, up): down [rank, in] or [rank, in, kh, kw]; up [out, rank] or [out, rank, 1, 1], as kohya stores them.
Pair = tuple[torch.Tensor, torch.Tensor]

# What kohya's sd-scripts adapt in CLIP when training the text encoders (every linear of each layer).
TEXT_ENCODER_TARGETS: tuple[str, ...] = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.out_proj",
    "mlp.fc1",
    "mlp.fc2",
)
# What the processor-era text-encoder LoRAs adapt (self_attn.to_q_lora and so on).
TEXT_ENCODER_ATTENTION_TARGETS: tuple[str, ...] = TEXT_ENCODER_TARGETS[:4]
# What diffusers' attention-processor LoRAs (LoRAAttnProcessor, diffusers 0.14 to 0.20) could adapt.
ATTENTION_TARGETS: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")

KOHYA_SDXL_METADATA: Mapping[str, str] = {
    "ss_base_model_version": "sdxl_base_v1-0",
    "modelspec.architecture": "stable-diffusion-xl-v1-base/lora",
    "modelspec.sai_model_spec": "1.0.0",
    "ss_network_module": "networks.lora",
}
_ST_METADATA = {"format": "pt"}
LORA_ADAPTER_METADATA_KEY = "lora_adapter_metadata"  # diffusers' key for the peft configs


def sort_header_metadata(path: Path) -> None:
    """Rewrite a safetensors header with its ``__metadata__`` in sorted order.

    safetensors keeps metadata in a hash map, so a file with several metadata keys comes out in a
    different byte order from one process to the next; fixtures must be byte-identical. Loaders read
    the header as JSON, so its order means nothing to them. peft's ``target_modules`` (a set, which
    diffusers writes as a list in hash order) is sorted too.
    """
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    metadata = header.pop("__metadata__", None)
    if metadata and LORA_ADAPTER_METADATA_KEY in metadata:
        adapter = json.loads(metadata[LORA_ADAPTER_METADATA_KEY])
        for key, value in adapter.items():
            if key.endswith("target_modules") and isinstance(value, list):
                adapter[key] = sorted(value)
        # As diffusers' write_lora_layers dumps it.
        metadata[LORA_ADAPTER_METADATA_KEY] = json.dumps(adapter, indent=2, sort_keys=True)
    ordered = {"__metadata__": dict(sorted(metadata.items()))} if metadata else {}
    ordered.update(header)
    text = json.dumps(ordered, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8 bytes with spaces
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + length :])


def save_safetensors(
    state: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str] | None
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(dict(state), path, metadata=dict(metadata) if metadata is not None else None)
    sort_header_metadata(path)


class LoraLayout(StrEnum):
    """The on-disk layouts of docs/model-files.md's LoRA table, plus the two variants of the older rows."""

    # lora_unet_down_blocks_1_attentions_0_proj_in.lora_down.weight
    KOHYA_DIFFUSERS = "kohya, diffusers names"
    # lora_unet_input_blocks_4_1_proj_in.lora_down.weight, lora_te1_text_model_encoder_layers_0_mlp_fc1...
    KOHYA_SGM = "kohya, original SGM names"
    PEFT = "PEFT"  # unet.down_blocks.1.attentions.0.proj_in.lora_A.weight
    # convert_state_dict_to_diffusers(get_peft_model_state_dict(unet)), the trap of pocket.md: attention
    # projections renamed to .lora.down/.lora.up, everything else left as lora_A/lora_B.
    PEFT_MIXED = "PEFT through convert_state_dict_to_diffusers"
    DIFFUSERS_OLD = "old diffusers"  # unet.down_blocks.1.attentions.0.proj_in.lora.down.weight (0.21 to 0.24)
    # LoRAAttnProcessor era: unet....attn1.processor.to_q_lora.down.weight; attention projections only.
    DIFFUSERS_OLD_PROCESSOR = "old diffusers, attention processors"


@dataclass(frozen=True)
class LoraMatrices:
    """One LoRA as matrices by module name, independent of any file layout.

    UNet names are diffusers module names; text-encoder names are CLIP's with the ``text_model.`` prefix
    that every real LoRA file carries. The scale applied is alpha / rank.
    """

    unet: Mapping[str, Pair]
    text_encoder: Mapping[str, Pair] = field(default_factory=dict)
    text_encoder_2: Mapping[str, Pair] = field(default_factory=dict)
    rank: int = 4
    alpha: float = 2.0

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    @property
    def patches_text_encoders(self) -> bool:
        return bool(self.text_encoder or self.text_encoder_2)

    def without_text_encoders(self) -> LoraMatrices:
        return replace(self, text_encoder={}, text_encoder_2={})

    @property
    def module_count(self) -> int:
        return len(self.unet) + len(self.text_encoder) + len(self.text_encoder_2)


def _matches(name: str, targets: Sequence[str]) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


def _random_pairs(
    weights: Mapping[str, torch.Tensor],
    targets: Sequence[str],
    *,
    rank: int,
    alpha: float,
    generator: torch.Generator,
    strength: float,
) -> dict[str, Pair]:
    """Matrices for each linear or conv weight whose module matches ``targets``, sized as
    tiny_model.kohya_lora_state_dict sizes them: the change has ``strength`` times the weight's RMS."""
    pairs: dict[str, Pair] = {}
    for key in sorted(weights):
        weight = weights[key].float()
        module = key.removesuffix(".weight")
        if not key.endswith(".weight") or weight.ndim not in (2, 4) or not _matches(module, targets):
            continue
        fan_in = weight[0].numel()
        down = torch.randn((rank, *weight.shape[1:]), generator=generator) / fan_in**0.5
        target_rms = strength * (float(weight.pow(2).mean().sqrt()) + 1e-3)
        up_std = target_rms / ((alpha / rank) * (rank / fan_in) ** 0.5)
        up = torch.randn((weight.shape[0], rank), generator=generator) * up_std
        if weight.ndim == 4:
            up = up[:, :, None, None]
        pairs[module] = (down.half().contiguous(), up.half().contiguous())
    if not pairs:
        raise ValueError(f"no module matches {targets}")
    return pairs


def lora_matrices(
    models: TinyModelSet,
    *,
    seed: int,
    rank: int = 4,
    alpha: float = 2.0,
    strength: float = 0.2,
    unet_targets: Sequence[str] = LORA_TARGETS,
    text_encoder_targets: Sequence[str] = (),
) -> LoraMatrices:
    """Random LoRA matrices (fp16 values) for the tiny set's base UNet and, if targets are given, both
    text encoders."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    base = models.base
    unet = _random_pairs(
        load_file(base / "unet" / "diffusion_pytorch_model.safetensors"),
        unet_targets,
        rank=rank,
        alpha=alpha,
        generator=generator,
        strength=strength,
    )
    encoders: list[dict[str, Pair]] = []
    for folder in ("text_encoder", "text_encoder_2"):
        if not text_encoder_targets:
            encoders.append({})
            continue
        state = load_file(base / folder / "model.safetensors")
        # transformers 5 may save CLIPTextModel without the wrapper; real LoRA files always name it.
        named = {k if k.startswith("text_model.") else "text_model." + k: v for k, v in state.items()}
        encoders.append(
            _random_pairs(
                named, text_encoder_targets, rank=rank, alpha=alpha, generator=generator, strength=strength
            )
        )
    return LoraMatrices(unet, encoders[0], encoders[1], rank=rank, alpha=alpha)


# ---------------------------------------------------------------------------------------------
# kohya


def sgm_module_names(unet_keys: Iterable[str]) -> dict[str, str]:
    """Original (SGM) module name of each diffusers UNet module, by original_layout's key table.

    ``unet_keys`` are every key of the UNet's state dict (the table depends on the topology).
    """
    keys = list(unet_keys)
    renamed = original_unet(dict.fromkeys(keys, torch.empty(0)))
    names: dict[str, str] = {}
    for diffusers_key, original_key in zip(keys, renamed, strict=True):
        module, _, parameter = diffusers_key.rpartition(".")
        original_module = original_key.removeprefix(UNET_PREFIX).removesuffix("." + parameter)
        names[module] = original_module
    return names


def kohya_entries(key: str, pair: Pair, alpha: float, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    down, up = pair
    return {
        f"{key}.lora_down.weight": down.to(dtype).contiguous(),
        f"{key}.lora_up.weight": up.to(dtype).contiguous(),
        f"{key}.alpha": torch.tensor(alpha, dtype=dtype),
    }


def kohya_state_dict(
    matrices: LoraMatrices,
    *,
    sgm_names: Mapping[str, str] | None = None,
    dtype: torch.dtype = torch.float16,
) -> dict[str, torch.Tensor]:
    """kohya's keys: ``lora_unet_`` + the module name with ``_`` for ``.`` (diffusers names, or the
    original SGM names where ``sgm_names`` maps them), ``lora_te1_``/``lora_te2_`` + CLIP's names, a 0-d
    ``.alpha`` per module."""
    state: dict[str, torch.Tensor] = {}
    for module, pair in matrices.unet.items():
        key = kohya_key(module) if sgm_names is None else "lora_unet_" + sgm_names[module].replace(".", "_")
        state.update(kohya_entries(key, pair, matrices.alpha, dtype))
    for prefix, encoder in (("lora_te1_", matrices.text_encoder), ("lora_te2_", matrices.text_encoder_2)):
        for module, pair in encoder.items():
            state.update(kohya_entries(prefix + module.replace(".", "_"), pair, matrices.alpha, dtype))
    return state


def _kohya_metadata(matrices: LoraMatrices) -> dict[str, str]:
    return {
        **KOHYA_SDXL_METADATA,
        "ss_network_dim": str(matrices.rank),
        "ss_network_alpha": str(matrices.alpha),
    }


# ---------------------------------------------------------------------------------------------
# PEFT (diffusers' save_lora_weights) and old diffusers


def _peft_names(pairs: Mapping[str, Pair]) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for module, (down, up) in pairs.items():
        state[f"{module}.lora_A.weight"] = down
        state[f"{module}.lora_B.weight"] = up
    return state


def _peft_unet_state(models: TinyModelSet, matrices: LoraMatrices) -> dict[str, torch.Tensor]:
    """The UNet part as peft itself names it: the matrices put into a peft-injected tiny UNet, read
    back with get_peft_model_state_dict, as diffusers' training scripts do."""
    quiet_diffusers()
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(models.base, subfolder="unet")
    config = LoraConfig(
        r=matrices.rank,
        lora_alpha=matrices.alpha,
        target_modules=sorted(matrices.unet),
        init_lora_weights=False,
    )
    unet.add_adapter(config)
    modules = dict(unet.named_modules())
    with torch.no_grad():
        for name, (down, up) in matrices.unet.items():
            module = modules[name]
            module.lora_A["default"].weight.copy_(down)
            module.lora_B["default"].weight.copy_(up)
    state: dict[str, torch.Tensor] = get_peft_model_state_dict(unet)
    expected = set(_peft_names(matrices.unet))
    if set(state) != expected:
        raise RuntimeError(f"peft named the UNet LoRA unexpectedly: {sorted(set(state) ^ expected)[:4]}")
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def _adapter_metadata(matrices: LoraMatrices, modules: Iterable[str]) -> dict[str, Any]:
    from peft import LoraConfig

    config = LoraConfig(
        r=matrices.rank, lora_alpha=matrices.alpha, target_modules=sorted(modules), init_lora_weights=False
    )
    metadata: dict[str, Any] = config.to_dict()
    return metadata


def peft_state_dict(
    models: TinyModelSet, matrices: LoraMatrices, *, through_diffusers_converter: bool = False
) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, dict[str, Any]]]:
    """The layers and adapter metadata handed to ``StableDiffusionXLPipeline.save_lora_weights``, by
    component. ``through_diffusers_converter`` first passes each through convert_state_dict_to_diffusers
    (PEFT_MIXED)."""
    quiet_diffusers()
    from diffusers.utils.state_dict_utils import convert_state_dict_to_diffusers

    layers = {
        "unet": _peft_unet_state(models, matrices),
        "text_encoder": _peft_names(matrices.text_encoder),
        "text_encoder_2": _peft_names(matrices.text_encoder_2),
    }
    metadata = {
        "unet": _adapter_metadata(matrices, matrices.unet),
        "text_encoder": _adapter_metadata(matrices, matrices.text_encoder),
        "text_encoder_2": _adapter_metadata(matrices, matrices.text_encoder_2),
    }
    layers = {name: state for name, state in layers.items() if state}
    if through_diffusers_converter:
        layers = {name: convert_state_dict_to_diffusers(state) for name, state in layers.items()}
    return layers, {name: metadata[name] for name in layers}


def _write_peft(path: Path, models: TinyModelSet, matrices: LoraMatrices, *, mixed: bool) -> None:
    quiet_diffusers()
    from diffusers import StableDiffusionXLPipeline

    layers, metadata = peft_state_dict(models, matrices, through_diffusers_converter=mixed)
    StableDiffusionXLPipeline.save_lora_weights(
        save_directory=str(path.parent),
        unet_lora_layers=layers.get("unet"),
        text_encoder_lora_layers=layers.get("text_encoder"),
        text_encoder_2_lora_layers=layers.get("text_encoder_2"),
        unet_lora_adapter_metadata=metadata.get("unet"),
        text_encoder_lora_adapter_metadata=metadata.get("text_encoder"),
        text_encoder_2_lora_adapter_metadata=metadata.get("text_encoder_2"),
        weight_name=path.name,
    )
    sort_header_metadata(path)


_PROCESSOR_NAMES = {"to_q": "to_q_lora", "to_k": "to_k_lora", "to_v": "to_v_lora", "to_out.0": "to_out_lora"}
_PROCESSOR_TEXT_NAMES = {
    "self_attn.q_proj": "self_attn.to_q_lora",
    "self_attn.k_proj": "self_attn.to_k_lora",
    "self_attn.v_proj": "self_attn.to_v_lora",
    "self_attn.out_proj": "self_attn.to_out_lora",
}


def _processor_name(module: str, renames: Mapping[str, str], *, processor: bool) -> str:
    for old, new in renames.items():
        if module.endswith("." + old):
            stem = module[: -len(old) - 1]
            return f"{stem}.processor.{new}" if processor else f"{stem}.{new}"
    raise ValueError(f"{module}: attention-processor LoRAs adapt only {', '.join(renames)}")


def old_diffusers_state_dict(matrices: LoraMatrices, *, processor: bool = False) -> dict[str, torch.Tensor]:
    """Old diffusers keys, which carry no alpha: alpha / rank is folded into the up matrices (in fp32,
    so the product is exact), giving the same LoRA at scale 1.

    ``processor=False``: LoRACompatible layers (0.21 to 0.24): ``unet.{module}.lora.down.weight`` and
    ``text_encoder.{module}.lora_linear_layer.down.weight``. ``processor=True``: attention processors
    (0.14 to 0.20): ``unet.{...}.attn1.processor.to_q_lora.down.weight`` and
    ``text_encoder.{...}.self_attn.to_q_lora.down.weight``; only attention projections can be given.
    """
    state: dict[str, torch.Tensor] = {}
    scale = matrices.scale
    for module, (down, up) in matrices.unet.items():
        if processor:
            stem = "unet." + _processor_name(module, _PROCESSOR_NAMES, processor=True)
        else:
            stem = f"unet.{module}.lora"
        state[f"{stem}.down.weight"] = down.float().contiguous()
        state[f"{stem}.up.weight"] = (up.float() * scale).contiguous()
    for prefix, encoder in (
        ("text_encoder", matrices.text_encoder),
        ("text_encoder_2", matrices.text_encoder_2),
    ):
        for module, (down, up) in encoder.items():
            if processor:
                stem = f"{prefix}." + _processor_name(module, _PROCESSOR_TEXT_NAMES, processor=False)
            else:
                stem = f"{prefix}.{module}.lora_linear_layer"
            state[f"{stem}.down.weight"] = down.float().contiguous()
            state[f"{stem}.up.weight"] = (up.float() * scale).contiguous()
    return state


# ---------------------------------------------------------------------------------------------
# One entry point per layout


def write_lora(
    path: Path,
    layout: LoraLayout,
    matrices: LoraMatrices,
    models: TinyModelSet,
    *,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``matrices`` as a LoRA file in ``layout``; returns ``path``.

    kohya layouts get kohya's SDXL metadata (``ss_network_dim``, ``ss_network_alpha``,
    ``ss_base_model_version``, ``modelspec.architecture``) unless ``metadata`` replaces it; PEFT layouts
    get what save_lora_weights writes (``format`` and the adapter configs); old diffusers ``format`` only.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout in (LoraLayout.KOHYA_DIFFUSERS, LoraLayout.KOHYA_SGM):
        sgm_names = None
        if layout is LoraLayout.KOHYA_SGM:
            unet_keys = load_file(models.base / "unet" / "diffusion_pytorch_model.safetensors").keys()
            sgm_names = sgm_module_names(unet_keys)
        state = kohya_state_dict(matrices, sgm_names=sgm_names)
        save_safetensors(state, path, metadata if metadata is not None else _kohya_metadata(matrices))
    elif layout in (LoraLayout.PEFT, LoraLayout.PEFT_MIXED):
        if metadata is not None:
            raise ValueError("PEFT files carry the metadata save_lora_weights writes")
        _write_peft(path, models, matrices, mixed=layout is LoraLayout.PEFT_MIXED)
    else:
        processor = layout is LoraLayout.DIFFUSERS_OLD_PROCESSOR
        state = old_diffusers_state_dict(matrices, processor=processor)
        save_safetensors(state, path, metadata if metadata is not None else _ST_METADATA)
    return path


@dataclass(frozen=True)
class StyleFile:
    """A style LoRA fixture: files of one ``group`` hold the same matrices in different layouts, so
    they must give bit-identical images."""

    name: str
    layout: LoraLayout
    group: str
    path: Path
    matrices: LoraMatrices


# (name, layout, group). "full": every LORA_TARGETS module of the UNet and every linear of both
# text encoders' layers; "attention": the UNet's attention projections only, no text encoder.
STYLE_CASES: tuple[tuple[str, LoraLayout, str], ...] = (
    ("kohya-diffusers", LoraLayout.KOHYA_DIFFUSERS, "full"),
    ("kohya-sgm", LoraLayout.KOHYA_SGM, "full"),
    ("peft", LoraLayout.PEFT, "full"),
    ("peft-mixed", LoraLayout.PEFT_MIXED, "full"),
    ("diffusers-old", LoraLayout.DIFFUSERS_OLD, "full"),
    ("kohya-diffusers-attention", LoraLayout.KOHYA_DIFFUSERS, "attention"),
    ("diffusers-old-processor", LoraLayout.DIFFUSERS_OLD_PROCESSOR, "attention"),
)


def write_style_files(models: TinyModelSet, folder: Path, *, seed: int = 0) -> dict[str, StyleFile]:
    """Every case of STYLE_CASES as ``folder/style_{name}.safetensors`` (names free of "lcm" and
    "lightning", which classification reads)."""
    groups = {
        "full": lora_matrices(models, seed=seed * 1009 + 31, text_encoder_targets=TEXT_ENCODER_TARGETS),
        "attention": lora_matrices(models, seed=seed * 1009 + 32, unet_targets=ATTENTION_TARGETS),
    }
    files: dict[str, StyleFile] = {}
    for name, layout, group in STYLE_CASES:
        path = write_lora(folder / f"style_{name}.safetensors", layout, groups[group], models)
        files[name] = StyleFile(name, layout, group, path, groups[group])
    return files
