"""A tiny random SDXL model set, saved in exactly the on-disk layouts of the real files.

No weights can be downloaded where the project is built and tested, so tests point the engine at
this set instead. Every file follows docs/model-files.md: JSON written as the real 2023 files
have it, text-encoder keys with their ``text_model.`` prefix, fp32 and fp16 variants, kohya LoRAs.

Like the real ones, the text-encoder configs say ``"torch_dtype": "float16"``, and transformers 5 loads
a model in its config's dtype unless told otherwise: load the pipeline with ``dtype=torch.float32``
(or float16 throughout), or its fp16 text encoders feed fp16 latents to an fp32 UNet and it fails.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from devtools.sdxl_config import (
    BOS,
    EOS,
    SDXL_MODEL_INDEX,
    SDXL_SCHEDULER_CONFIG,
    SDXL_UNET_CONFIG,
    SDXL_VAE_CONFIG,
    bytes_to_unicode,
    json_bytes,
    special_tokens_map,
    text_encoder_config,
    tokenizer_config,
)

__all__ = [
    "DEFAULT_SPEC",
    "LORA_TARGETS",
    "MARKER_NAME",
    "TinyModelSet",
    "TinySpec",
    "build_tiny_model_set",
    "kohya_key",
    "kohya_lora_state_dict",
    "lightning_lora_name",
    "lightning_unet_name",
    "lora_target_modules",
    "tiny_vocab_and_merges",
    "unet_config",
    "vae_config",
    "write_kohya_lora",
]

MARKER_NAME = "tiny_model_set.json"
_MARKER_FORMAT = 1
BASE_DIR = "stable-diffusion-xl-base-1.0"
LCM_DIR = "lcm-sdxl"
LCM_LORA_DIR = "lcm-lora-sdxl"
LCM_LORA_FILE = "pytorch_lora_weights.safetensors"
LIGHTNING_STEPS = (1, 2, 4, 8)


# Modules the LCM-LoRA training script (and SDXL-Lightning's LoRA) adapt, as diffusers name suffixes.
LORA_TARGETS: tuple[str, ...] = (
    "to_q",
    "to_k",
    "to_v",
    "to_out.0",
    "proj_in",
    "proj_out",
    "ff.net.0.proj",
    "ff.net.2",
    "conv1",
    "conv2",
    "conv_shortcut",
    "downsamplers.0.conv",
    "upsamplers.0.conv",
    "time_emb_proj",
)

# Words the tiny BPE merges into one token each, so prompts tokenize to a few readable ids.
TINY_WORDS: tuple[str, ...] = (
    "photo",
    "of",
    "cat",
    "dog",
    "red",
    "blue",
    "green",
    "circle",
    "square",
    "on",
    "the",
    "white",
    "background",
)

_ST_METADATA = {"format": "pt"}


@dataclass(frozen=True)
class TinySpec:
    """Sizes of the tiny model set; the topology is always SDXL's."""

    unet_channels: tuple[int, int, int] = (32, 64, 64)
    vae_channels: tuple[int, int, int, int] = (32, 32, 64, 64)
    te1_hidden: int = 32  # CLIP-L stand-in, quick_gelu
    te2_hidden: int = 48  # OpenCLIP bigG stand-in, gelu
    te2_layers: int = 10  # >= 10: diffusers detects SDXL single files by resblocks.9
    lora_rank: int = 4
    lcm_time_cond_proj_dim: int = 32
    image_size: int = 64  # pixels; unet sample_size = image_size // 8
    te1_layers: int = 2
    te1_heads: int = 4
    te2_heads: int = 4
    te2_projection: int = 48
    unet_heads: tuple[int, int, int] = (2, 4, 4)
    unet_transformer_layers: tuple[int, int, int] = (1, 1, 2)
    addition_time_embed_dim: int = 8
    lora_alpha: float = 2.0
    norm_num_groups: int = 32
    # Scale of the noise that makes the LCM and Lightning UNets differ from the base, relative to each tensor.
    distill_noise: float = 0.1
    # Relative size of a LoRA's change to the weight it adapts.
    lora_strength: float = 0.2

    @property
    def cross_attention_dim(self) -> int:
        """Width of the concatenated hidden states of both text encoders."""
        return self.te1_hidden + self.te2_hidden

    @property
    def projection_class_embeddings_input_dim(self) -> int:
        """Pooled text embedding plus the six embedded time ids."""
        return self.te2_projection + 6 * self.addition_time_embed_dim

    def validate(self) -> None:
        """Raise ValueError for sizes diffusers or transformers would reject or misload."""
        if self.te1_hidden == self.te2_hidden:
            # Equal widths make diffusers load the second encoder with the first one's weights.
            raise ValueError("te1_hidden and te2_hidden must differ")
        if self.te2_layers < 10:
            raise ValueError("te2_layers must be at least 10 (diffusers detects SDXL by resblocks.9)")
        if self.image_size % 8 or self.image_size < 32:
            raise ValueError("image_size must be a multiple of 8, at least 32")
        for width in (*self.unet_channels, *self.vae_channels):
            if width % self.norm_num_groups:
                raise ValueError(f"channel width {width} is not a multiple of {self.norm_num_groups} groups")
        for width, heads in zip(self.unet_channels, self.unet_heads, strict=True):
            if width % heads:
                raise ValueError(f"UNet width {width} is not divisible by {heads} heads")
        if self.te1_hidden % self.te1_heads or self.te2_hidden % self.te2_heads:
            raise ValueError("text encoder widths must be divisible by their head counts")
        if self.lora_rank < 1 or self.lora_alpha <= 0:
            raise ValueError("lora_rank must be >= 1 and lora_alpha > 0")


DEFAULT_SPEC = TinySpec()


@dataclass(frozen=True)
class TinyModelSet:
    """Paths of a built tiny set, named after the real repositories and files."""

    root: Path
    base: Path  # diffusers folder like stabilityai/stable-diffusion-xl-base-1.0
    lcm_unet: Path  # folder like latent-consistency/lcm-sdxl
    lcm_lora: Path  # file like latent-consistency/lcm-lora-sdxl/pytorch_lora_weights.safetensors
    lightning_unet: Path  # file named sdxl_lightning_{N}step_unet.safetensors
    lightning_lora: Path  # file named sdxl_lightning_{N}step_lora.safetensors


def lightning_unet_name(steps: int) -> str:
    """File name of ByteDance's full Lightning UNet for ``steps`` steps."""
    _check_steps(steps)
    if steps == 1:
        return "sdxl_lightning_1step_unet_x0.safetensors"
    return f"sdxl_lightning_{steps}step_unet.safetensors"


def lightning_lora_name(steps: int) -> str:
    """File name of the Lightning LoRA for ``steps`` steps.

    ByteDance publishes no 1-step LoRA; the tiny set still writes one under this name.
    """
    _check_steps(steps)
    return f"sdxl_lightning_{steps}step_lora.safetensors"


def _check_steps(steps: int) -> None:
    if steps not in LIGHTNING_STEPS:
        raise ValueError(f"SDXL-Lightning exists for {LIGHTNING_STEPS} steps, not {steps}")


def _paths(root: Path, lightning_steps: int) -> TinyModelSet:
    return TinyModelSet(
        root=root,
        base=root / BASE_DIR,
        lcm_unet=root / LCM_DIR,
        lcm_lora=root / LCM_LORA_DIR / LCM_LORA_FILE,
        lightning_unet=root / lightning_unet_name(lightning_steps),
        lightning_lora=root / lightning_lora_name(lightning_steps),
    )


# ---------------------------------------------------------------------------------------------
# Tokenizer


def tiny_vocab_and_merges(words: Sequence[str] = TINY_WORDS) -> tuple[dict[str, int], list[str]]:
    """A valid CLIP BPE vocabulary: bytes, their ``</w>`` forms, merges for ``words``, specials last."""
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols]
    known = set(tokens)
    merges: list[str] = []
    for word in words:
        parts = [*word[:-1], word[-1] + "</w>"]
        current = parts[0]
        for nxt in parts[1:]:
            merged = current + nxt
            if merged not in known:
                merges.append(f"{current} {nxt}")
                tokens.append(merged)
                known.add(merged)
            current = merged
    # The legacy text configs (eos_token_id 2) pool at the highest id, which must be EOS.
    tokens += [BOS, EOS]
    return {token: i for i, token in enumerate(tokens)}, merges


def write_tokenizer(folder: Path, vocab: Mapping[str, int], merges: Sequence[str], *, pad: str) -> None:
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(dict(vocab), ensure_ascii=False), encoding="utf-8")
    merges_text = "#version: 0.2\n" + "".join(m + "\n" for m in merges)
    (folder / "merges.txt").write_text(merges_text, encoding="utf-8")
    write_json(folder / "special_tokens_map.json", special_tokens_map(pad))
    write_json(folder / "tokenizer_config.json", tokenizer_config(pad))


# ---------------------------------------------------------------------------------------------
# Configs: the real SDXL files' (devtools.sdxl_config), with only the sizes made tiny


def model_index() -> dict[str, Any]:
    # The hub's hand-added "add_watermarker" key is left out: the tiny set has always been written
    # without it, and the fixtures' bytes are what every parity test was checked against.
    return {k: v for k, v in SDXL_MODEL_INDEX.items() if k != "add_watermarker"}


def scheduler_config() -> dict[str, Any]:
    return dict(SDXL_SCHEDULER_CONFIG)


def clip_text_config(spec: TinySpec, vocab_size: int, *, second: bool) -> dict[str, Any]:
    hidden = spec.te2_hidden if second else spec.te1_hidden
    return {
        **text_encoder_config(second=second),
        "hidden_size": hidden,
        "intermediate_size": 4 * hidden,
        "num_attention_heads": spec.te2_heads if second else spec.te1_heads,
        "num_hidden_layers": spec.te2_layers if second else spec.te1_layers,
        "projection_dim": spec.te2_projection if second else spec.te1_hidden,
        "vocab_size": vocab_size,
    }


def unet_config(spec: TinySpec, *, time_cond_proj_dim: int | None = None) -> dict[str, Any]:
    """The SDXL base ``unet/config.json`` with tiny widths (and LCM's ``time_cond_proj_dim`` if given)."""
    config: dict[str, Any] = {
        **copy.deepcopy(SDXL_UNET_CONFIG),
        "addition_time_embed_dim": spec.addition_time_embed_dim,
        "attention_head_dim": list(spec.unet_heads),
        "block_out_channels": list(spec.unet_channels),
        "cross_attention_dim": spec.cross_attention_dim,
        "norm_num_groups": spec.norm_num_groups,
        "projection_class_embeddings_input_dim": spec.projection_class_embeddings_input_dim,
        "sample_size": spec.image_size // 8,
        "time_cond_proj_dim": time_cond_proj_dim,
        "transformer_layers_per_block": list(spec.unet_transformer_layers),
    }
    if time_cond_proj_dim is not None:
        # lcm-sdxl was saved by diffusers 0.22 (inferred), which writes these two keys as well.
        config.update({"_diffusers_version": "0.22.0.dev0", "attention_type": "default", "dropout": 0.0})
    return dict(sorted(config.items()))


def vae_config(spec: TinySpec) -> dict[str, Any]:
    """The SDXL base ``vae/config.json`` with tiny widths."""
    return {
        **copy.deepcopy(SDXL_VAE_CONFIG),
        "block_out_channels": list(spec.vae_channels),
        "norm_num_groups": spec.norm_num_groups,
        "sample_size": spec.image_size,
    }


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_bytes(json_bytes(data))


# ---------------------------------------------------------------------------------------------
# Weights


def _config_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def _state(module: nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + k: v.detach().contiguous() for k, v in module.state_dict().items()}


def _save_variants(folder: Path, stem: str, state: Mapping[str, torch.Tensor]) -> None:
    """Write ``stem.safetensors`` (fp32) and ``stem.fp16.safetensors`` as the real repositories do."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(dict(state), folder / f"{stem}.safetensors", metadata=_ST_METADATA)
    save_file(_to(state, torch.float16), folder / f"{stem}.fp16.safetensors", metadata=_ST_METADATA)


def _to(state: Mapping[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}


def _perturbed(
    state: Mapping[str, torch.Tensor], generator: torch.Generator, scale: float
) -> dict[str, torch.Tensor]:
    """Each float tensor plus Gaussian noise sized to the tensor's own RMS (ones of a norm too)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not value.is_floating_point():
            out[key] = value
            continue
        rms = float(value.float().pow(2).mean().sqrt()) + 1e-3
        noise = torch.randn(value.shape, generator=generator, dtype=torch.float32)
        out[key] = (value.float() + scale * rms * noise).to(value.dtype).contiguous()
    return out


def _generator(seed: int, salt: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(seed * 1009 + salt)


def kohya_key(module_name: str) -> str:
    """kohya's key for a diffusers UNet module name.

    ``down_blocks.0.resnets.0.conv1`` -> ``lora_unet_down_blocks_0_resnets_0_conv1``.
    """
    return "lora_unet_" + module_name.replace(".", "_")


def lora_target_modules(
    unet: nn.Module, targets: Sequence[str] = LORA_TARGETS
) -> Iterator[tuple[str, nn.Linear | nn.Conv2d]]:
    """Every linear or conv module of ``unet`` whose name ends with one of ``targets``."""
    for name, module in unet.named_modules():
        if not isinstance(module, nn.Linear | nn.Conv2d):
            continue
        if any(name == t or name.endswith("." + t) for t in targets):
            yield name, module


def kohya_lora_state_dict(
    unet: nn.Module,
    *,
    rank: int,
    alpha: float,
    seed: int,
    dtype: torch.dtype = torch.float16,
    strength: float = 0.2,
    targets: Sequence[str] = LORA_TARGETS,
) -> dict[str, torch.Tensor]:
    """Random kohya LoRA tensors for ``unet``, shaped as kohya's trainer writes them.

    ``strength`` sets the RMS of the LoRA's weight change (alpha / rank included) relative to the RMS of
    the weight it adapts, so the adapter visibly changes images without swamping them.
    """
    generator = torch.Generator(device="cpu").manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for name, module in lora_target_modules(unet, targets):
        weight = module.weight.detach().float()
        out_features = weight.shape[0]
        fan_in = weight[0].numel()
        down = torch.randn((rank, *weight.shape[1:]), generator=generator) / fan_in**0.5
        # (alpha / rank) * up @ down then has RMS (alpha / rank) * up_std * sqrt(rank / fan_in).
        target_rms = strength * (float(weight.pow(2).mean().sqrt()) + 1e-3)
        up_std = target_rms / ((alpha / rank) * (rank / fan_in) ** 0.5)
        up = torch.randn((out_features, rank), generator=generator) * up_std
        if isinstance(module, nn.Conv2d):
            up = up[:, :, None, None]
        key = kohya_key(name)
        state[f"{key}.lora_down.weight"] = down.to(dtype).contiguous()
        state[f"{key}.lora_up.weight"] = up.to(dtype).contiguous()
        state[f"{key}.alpha"] = torch.tensor(alpha, dtype=dtype)
    if not state:
        raise ValueError("no LoRA target module found in the UNet")
    return state


def write_kohya_lora(
    path: Path,
    unet: nn.Module,
    *,
    rank: int,
    alpha: float,
    seed: int,
    metadata: Mapping[str, str] | None = None,
    dtype: torch.dtype = torch.float16,
    strength: float = 0.2,
    targets: Sequence[str] = LORA_TARGETS,
) -> list[str]:
    """Write a random kohya LoRA (diffusers module names) for ``unet``; return the adapted module names.

    ``metadata=None`` writes no metadata, as the Lightning LoRAs have none.
    """
    state = kohya_lora_state_dict(
        unet, rank=rank, alpha=alpha, seed=seed, dtype=dtype, strength=strength, targets=targets
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, path, metadata=dict(metadata) if metadata is not None else None)
    return [name for name, _ in lora_target_modules(unet, targets)]


def _build_text_encoders(
    spec: TinySpec, vocab_size: int, seed: int
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    encoders: list[dict[str, torch.Tensor]] = []
    for second in (False, True):
        raw = clip_text_config(spec, vocab_size, second=second)
        file_only = ("architectures", "torch_dtype", "transformers_version")
        config = CLIPTextConfig(**{k: v for k, v in raw.items() if k not in file_only})
        torch.manual_seed(seed * 1009 + (2 if second else 1))
        if second:
            model: nn.Module = CLIPTextModelWithProjection(config)
            # Already named text_model.* / text_projection.weight, as in the real file.
            encoders.append(_state(model))
        else:
            model = CLIPTextModel(config)
            # transformers 5 dropped the wrapper module; the real files name every key text_model.*.
            encoders.append(_state(model, prefix="text_model."))
    return encoders[0], encoders[1]


def _write_set(tmp: Path, spec: TinySpec, seed: int, lightning_steps: int) -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel

    paths = _paths(tmp, lightning_steps)
    base = paths.base
    base.mkdir(parents=True)
    write_json(base / "model_index.json", model_index())
    (base / "scheduler").mkdir()
    write_json(base / "scheduler" / "scheduler_config.json", scheduler_config())

    vocab, merges = tiny_vocab_and_merges()
    write_tokenizer(base / "tokenizer", vocab, merges, pad=EOS)
    write_tokenizer(base / "tokenizer_2", vocab, merges, pad="!")

    te1, te2 = _build_text_encoders(spec, len(vocab), seed)
    for folder, state, second in (("text_encoder", te1, False), ("text_encoder_2", te2, True)):
        (base / folder).mkdir()
        write_json(base / folder / "config.json", clip_text_config(spec, len(vocab), second=second))
        _save_variants(base / folder, "model", state)

    vae_cfg = vae_config(spec)
    torch.manual_seed(seed * 1009 + 3)
    vae = AutoencoderKL(**_config_kwargs(vae_cfg))
    (base / "vae").mkdir()
    write_json(base / "vae" / "config.json", vae_cfg)
    _save_variants(base / "vae", "diffusion_pytorch_model", _state(vae))

    base_cfg = unet_config(spec)
    torch.manual_seed(seed * 1009 + 4)
    unet = UNet2DConditionModel(**_config_kwargs(base_cfg))
    (base / "unet").mkdir()
    write_json(base / "unet" / "config.json", base_cfg)
    base_state = _state(unet)
    _save_variants(base / "unet", "diffusion_pytorch_model", base_state)

    # LCM: the base weights plus noise, and the guidance projection the distillation adds.
    lcm_cfg = unet_config(spec, time_cond_proj_dim=spec.lcm_time_cond_proj_dim)
    torch.manual_seed(seed * 1009 + 5)
    lcm = UNet2DConditionModel(**_config_kwargs(lcm_cfg))
    lcm_state = _state(lcm)
    extra = set(lcm_state) - set(base_state)
    if extra != {"time_embedding.cond_proj.weight"} or set(base_state) - set(lcm_state):
        raise RuntimeError(f"unexpected LCM UNet keys: {sorted(extra)}")
    lcm_state.update(_perturbed(base_state, _generator(seed, 6), spec.distill_noise))
    paths.lcm_unet.mkdir()
    write_json(paths.lcm_unet / "config.json", lcm_cfg)
    _save_variants(paths.lcm_unet, "diffusion_pytorch_model", lcm_state)

    lightning = _to(_perturbed(base_state, _generator(seed, 7), spec.distill_noise), torch.float16)
    save_file(lightning, paths.lightning_unet)

    write_kohya_lora(
        paths.lightning_lora,
        unet,
        rank=spec.lora_rank,
        alpha=spec.lora_alpha,
        seed=seed * 1009 + 8,
        metadata=None,
        strength=spec.lora_strength,
    )
    write_kohya_lora(
        paths.lcm_lora,
        unet,
        rank=spec.lora_rank,
        alpha=spec.lora_alpha,
        seed=seed * 1009 + 9,
        metadata=_ST_METADATA,
        strength=spec.lora_strength,
    )


def _marker(spec: TinySpec, seed: int, lightning_steps: int) -> dict[str, Any]:
    return {"format": _MARKER_FORMAT, "seed": seed, "lightning_steps": lightning_steps, "spec": asdict(spec)}


def _existing(root: Path, wanted: Mapping[str, Any]) -> bool:
    """True when ``root`` holds a complete set built as ``wanted``; ValueError when it holds another."""
    marker = root / MARKER_NAME
    if not marker.is_file():
        return False
    found = json.loads(marker.read_text(encoding="utf-8"))
    # JSON turns tuples into lists; compare through JSON on both sides.
    if found != json.loads(json.dumps(wanted)):
        raise ValueError(f"{root} holds a tiny model set built with other settings: {found}")
    return True


def build_tiny_model_set(
    root: Path, *, seed: int = 0, spec: TinySpec = DEFAULT_SPEC, lightning_steps: int = 4
) -> TinyModelSet:
    """Build (or reuse) the tiny set under ``root``; the same seed and spec give byte-identical files.

    The set is written into a temporary sibling folder and renamed into place, so ``root`` never
    holds half a set. A ``root`` that holds a complete set with the same settings is returned as is.
    """
    spec.validate()
    root = Path(root).absolute()
    paths = _paths(root, lightning_steps)
    wanted = _marker(spec, seed, lightning_steps)
    if _existing(root, wanted):
        return paths
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} exists and holds no complete tiny model set; remove it first")

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    # mkdtemp makes the folder private; the set is shared like any model folder.
    tmp.chmod(0o755)
    try:
        # The builder seeds torch's global generator; the caller's random state must not change.
        with torch.random.fork_rng(devices=[]):
            _write_set(tmp, spec, seed, lightning_steps)
        write_json(tmp / MARKER_NAME, wanted)
        try:
            # Replaces an empty root atomically; fails if another process got there first.
            tmp.replace(root)
        except OSError:
            if _existing(root, wanted):
                return paths
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return paths
