"""The size of each model part, read from the safetensors headers without loading any weight.

A header lists every tensor's dtype and shape, so the parameter count of each part is exact. The
bytes a part takes on the device follow from the run's dtype: floating-point tensors are converted to
it when the engine loads them (an fp16 file run in fp32 doubles), integer buffers (CLIP's position
ids) keep their own width. Torch-free, so the GUI can plan before the engine loads.
"""

from __future__ import annotations

import filecmp
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError, safe_open

from engine.contract.errors import ModelInputError
from engine.contract.memory_estimates import DTYPE_BYTES
from engine.contract.modes import MODES, ModeFile, ModelRole
from engine.contract.placement import Part, own_text_part, own_vae_part, part_of_role
from engine.files.model_files import FileKind, ModelFile, check_style_lora, check_vae
from engine.files.model_paths import ModelPaths
from engine.files.resources import CONFIG_DIR_NAME, shipped

_FLOAT_DTYPES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}
_INT_BYTES = {"I64": 8, "U64": 8, "I32": 4, "U32": 4, "I16": 2, "U16": 2, "I8": 1, "U8": 1, "BOOL": 1}

# Prefixes of SDXL's original single-file layout (the base and the all-in-one Lightning checkpoints).
_SINGLE_FILE_PARTS = (
    ("model.diffusion_model.", Part.BASE_UNET),
    ("first_stage_model.", Part.VAE),
    ("conditioner.embedders.0.", Part.TEXT_ENCODER),
    ("conditioner.embedders.1.", Part.TEXT_ENCODER_2),
)
_FOLDER_PARTS = (
    ("unet", Part.BASE_UNET),
    ("vae", Part.VAE),
    ("text_encoder", Part.TEXT_ENCODER),
    ("text_encoder_2", Part.TEXT_ENCODER_2),
)
_TEXT_LORA_PREFIXES = ("lora_te", "text_encoder")  # kohya lora_te[12]_, PEFT text_encoder[_2].
# A LoRA's down and up matrices in every naming (kohya, PEFT, old diffusers, attention processors):
# down is [rank, in, (kh, kw)], up is [out, rank, (1, 1)].
_LORA_DOWN = re.compile(r"(\.lora_down|\.lora_A|\.lora\.down|\.lora_linear_layer\.down|_lora\.down)\.weight$")
_LORA_UP = re.compile(r"(\.lora_up|\.lora_B|\.lora\.up|\.lora_linear_layer\.up|_lora\.up)\.weight$")


@dataclass(frozen=True)
class PartSize:
    floats: int = 0  # floating-point elements: stored in the run's dtype
    other_bytes: int = 0  # integer tensors keep their own width

    def __add__(self, other: PartSize) -> PartSize:
        return PartSize(self.floats + other.floats, self.other_bytes + other.other_bytes)

    def bytes_in(self, dtype: str) -> int:
        return self.floats * DTYPE_BYTES[dtype] + self.other_bytes


@dataclass(frozen=True)
class ModelSizes:
    parts: Mapping[Part, PartSize]
    vae_upcast: bool  # the VAE's config says force_upcast (SDXL's own VAE overflows in fp16)

    def bytes_in(self, dtype: str) -> dict[Part, int]:
        return {part: size.bytes_in(dtype) for part, size in self.parts.items()}

    @property
    def parameters(self) -> int:
        return sum(size.floats for size in self.parts.values())


def _tensor_size(dtype: str, shape: list[int]) -> PartSize:
    count = 1
    for dim in shape:
        count *= dim
    if dtype in _FLOAT_DTYPES:
        return PartSize(floats=count)
    return PartSize(other_bytes=count * _INT_BYTES.get(dtype, 8))


def header_sizes(path: Path, part_of: Callable[[str], Part | None]) -> dict[Part, PartSize]:
    """Sum the tensors of one file by part; part_of(key) names a key's part, None skips it."""
    sizes: dict[Part, PartSize] = {}
    try:
        with safe_open(str(path), framework="numpy") as handle:
            for key in handle.keys():  # noqa: SIM118 - a safe_open handle is not a mapping
                part = part_of(key)
                if part is None:
                    continue
                tensor = handle.get_slice(key)
                size = _tensor_size(str(tensor.get_dtype()), list(tensor.get_shape()))
                sizes[part] = sizes.get(part, PartSize()) + size
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelInputError(f"{path} is not a readable safetensors file ({exc})") from None
    return sizes


def _merge(total: dict[Part, PartSize], more: Mapping[Part, PartSize]) -> None:
    for part, size in more.items():
        total[part] = total.get(part, PartSize()) + size


def _weights_of(folder: Path) -> list[Path]:
    """One variant's weight files (shards included): the full-precision ones if present, else fp16.
    Both hold the same tensors, so either gives the same count."""
    files = sorted(folder.glob("*.safetensors"))
    full = [f for f in files if ".fp16" not in f.name]
    chosen = full or files
    if not chosen:
        raise ModelInputError(f"{folder} holds no .safetensors weights")
    return chosen


def _folder_sizes(folder: Path, part: Part) -> dict[Part, PartSize]:
    sizes: dict[Part, PartSize] = {}
    for weights in _weights_of(folder):
        _merge(sizes, header_sizes(weights, lambda _key: part))
    return sizes


def _prefix_part(key: str) -> Part | None:
    if key.endswith(".logit_scale"):  # OpenCLIP's training temperature: diffusers does not keep it
        return None
    return next((part for prefix, part in _SINGLE_FILE_PARTS if key.startswith(prefix)), None)


def _is_text_lora_key(key: str) -> bool:
    return key.startswith(_TEXT_LORA_PREFIXES)


def _lora_part(unet_part: Part, text_part: Part | None) -> Callable[[str], Part | None]:
    def part_of(key: str) -> Part | None:
        if key.endswith(".alpha"):  # a scalar read into the adapter's scaling, not a tensor it keeps
            return None
        return text_part if _is_text_lora_key(key) else unet_part

    return part_of


def _force_upcast(config: Path) -> bool:
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return True  # SDXL's own VAE does, and assuming it costs only a larger plan
    return bool(data.get("force_upcast", True)) if isinstance(data, dict) else True


def _base_sizes(info: ModelFile) -> dict[Part, PartSize]:
    if info.kind is FileKind.SDXL_SINGLE_FILE:
        return header_sizes(info.path, _prefix_part)
    sizes: dict[Part, PartSize] = {}
    for sub, part in _FOLDER_PARTS:
        _merge(sizes, _folder_sizes(info.path / sub, part))
    return sizes


def _unet_only(info: ModelFile, part: Part) -> dict[Part, PartSize]:
    if info.kind in (FileKind.LCM_UNET, FileKind.UNET_FOLDER):
        return _folder_sizes(info.path, part)
    if info.kind is FileKind.SDXL_FOLDER:  # a whole pipeline (SDXL-Turbo): only its UNet is its own
        return _folder_sizes(info.path / "unet", part)
    if info.kind in (FileKind.LIGHTNING_CHECKPOINT, FileKind.SDXL_SINGLE_FILE):  # only its UNet is used
        return header_sizes(info.path, lambda k: part if k.startswith("model.diffusion_model.") else None)
    return header_sizes(info.path, lambda _key: part)


def full_unet_size(info: ModelFile) -> PartSize:
    """A full distilled UNet's (or a whole pipeline's UNet's) size, from its file's header only."""
    return _unet_only(info, Part("unet"))[Part("unet")]


def _same_files(one: Path, other: Path) -> bool:
    """Whether two component folders hold the same weight files byte for byte (the Hugging Face
    cache links equal files to one blob, which needs no reading)."""
    try:
        mine, theirs = _weights_of(one), _weights_of(other)
    except ModelInputError:
        return False
    if [p.name for p in mine] != [p.name for p in theirs]:
        return False
    return all(
        a.resolve() == b.resolve() or filecmp.cmp(a, b, shallow=False)
        for a, b in zip(mine, theirs, strict=True)
    )


def _pipeline_own_sizes(
    info: ModelFile, base: ModelFile, role: str, *, with_vae: bool
) -> dict[Part, PartSize]:
    """A whole pipeline's text encoders and VAE, as parts of its own unless shown to be the base's:
    the engine shares them only where they equal the base's bit for bit. From headers alone that shows
    only for two diffusers folders whose component files are the same bytes; anywhere else they are
    counted apart, which can only overstate the plan."""
    folders = info.kind is FileKind.SDXL_FOLDER and base.kind is FileKind.SDXL_FOLDER
    text, vae = own_text_part(role), own_vae_part(role)
    sizes: dict[Part, PartSize] = {}
    text_subs = ("text_encoder", "text_encoder_2")
    same_text = folders and all(_same_files(info.path / sub, base.path / sub) for sub in text_subs)
    same_vae = not with_vae or (folders and _same_files(info.path / "vae", base.path / "vae"))
    if info.kind is FileKind.SDXL_FOLDER:
        if not same_text:
            for sub in text_subs:
                _merge(sizes, _folder_sizes(info.path / sub, text))
        if not same_vae:
            _merge(sizes, _folder_sizes(info.path / "vae", vae))
        return sizes

    def part_of(key: str) -> Part | None:
        part = _prefix_part(key)
        if part in (Part.TEXT_ENCODER, Part.TEXT_ENCODER_2) and not same_text:
            return text
        return vae if part == Part.VAE and not same_vae else None

    return header_sizes(info.path, part_of)


def slot_size(path: Path) -> PartSize:
    """What the fused slot holds for this LoRA: the base UNet weights of the layers it touches, each
    out x in (x kh x kw), read from the shapes of its down and up matrices."""
    down: dict[str, list[int]] = {}
    up: dict[str, list[int]] = {}
    try:
        with safe_open(str(path), framework="numpy") as handle:
            for key in handle.keys():  # noqa: SIM118 - a safe_open handle is not a mapping
                if _is_text_lora_key(key):
                    continue
                for pattern, found in ((_LORA_DOWN, down), (_LORA_UP, up)):
                    if pattern.search(key):
                        found[pattern.sub("", key)] = list(handle.get_slice(key).get_shape())
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelInputError(f"{path} is not a readable safetensors file ({exc})") from None
    total = 0
    for module, shape in down.items():
        if module in up and len(shape) >= 2:
            count = up[module][0] * shape[1]
            for dim in shape[2:]:
                count *= dim
            total += count
    return PartSize(floats=total)


def model_sizes(paths: ModelPaths, config_dir: Path | None = None) -> ModelSizes:
    """Every part the engine would hold for these files; the first bad file raises ModelInputError."""
    files = paths.checked()
    base = files.get(ModelRole.BASE)
    if base is None:
        raise ModelInputError("no base model given: every mode needs the SDXL base (--base)")
    sizes = _base_sizes(base)
    config_dir = config_dir or paths.base_config
    if config_dir is None:
        config_dir = base.path if base.kind is FileKind.SDXL_FOLDER else shipped(CONFIG_DIR_NAME)
    vae_config = config_dir / "vae" / "config.json"
    if paths.vae is not None:
        vae = check_vae(paths.vae)
        sizes.pop(Part.VAE, None)
        if vae.kind is FileKind.VAE_FOLDER:
            _merge(sizes, _folder_sizes(vae.path, Part.VAE))
            vae_config = vae.path / "config.json"
        else:
            _merge(sizes, header_sizes(vae.path, lambda _key: Part.VAE))
    kinds = MODES.role_files()
    slots: list[PartSize] = []  # the fused slot's size for each LoRA role given
    for role, info in files.items():
        part = part_of_role(role)
        if kinds.get(role) in (ModeFile.UNET, ModeFile.PIPELINE):
            _merge(sizes, _unet_only(info, part))
        if kinds.get(role) is ModeFile.PIPELINE:  # and its text encoders and VAE where not the base's
            _merge(sizes, _pipeline_own_sizes(info, base, role, with_vae=paths.vae is None))
        elif kinds.get(role) is ModeFile.LORA:
            _merge(sizes, header_sizes(info.path, _lora_part(part, part)))
            slots.append(slot_size(info.path))
    if slots:
        # One slot, reused by every LoRA mode: room for the largest LoRA's layers.
        sizes[Part.LORA_SLOT] = max(slots, key=lambda size: size.floats)
    for style in paths.styles:
        info = check_style_lora(style.path)
        # Loaded once: the LoRA twins point at the base UNet's style matrices, and the text
        # encoders are shared by every pipeline.
        _merge(sizes, header_sizes(info.path, _lora_part(Part.STYLE_LORAS, Part.STYLE_TEXT)))
    return ModelSizes(parts=sizes, vae_upcast=_force_upcast(vae_config))
