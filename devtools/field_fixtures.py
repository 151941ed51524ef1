"""Tiny files in the real layouts of the rest of the few-step SDXL field (issue 21): TCD, Hyper-SD,
DMD2, PCM, Flash SDXL and SDXL-Turbo.

Each writer mirrors one published file: its name, its folder as the model's repository lays it out,
its key format, dtypes, rank and ``__metadata__``, on top of the tiny SDXL set of tiny_model.py.
docs/field-layouts.md says, fact by fact, what each layout was checked against and what is still
unverified. Widths are the tiny set's; ranks are the real files' (64), so a header reads as the real
one does. Where a real alpha value is unknown the fixture says so in its docstring.

The LoRA matrices come from lora_fixtures.lora_matrices (each adapter changes its weight by a fixed
fraction of the weight's RMS, whatever alpha and rank), written by lora_fixtures' kohya and
old-diffusers writers. Every writer is deterministic: the same arguments give byte-identical files.
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from devtools.lora_fixtures import (
    ATTENTION_TARGETS,
    LoraMatrices,
    kohya_state_dict,
    lora_matrices,
    old_diffusers_state_dict,
    save_safetensors,
)
from devtools.original_layout import write_single_file_checkpoint
from devtools.tiny_model import LORA_TARGETS, TinyModelSet, _perturbed, write_json

__all__ = [
    "DMD2_ALPHA",
    "FIELD_RANK",
    "HYPER_LORA_NAMES",
    "PCM_LORA_NAMES",
    "ST_FORMAT_PT",
    "FieldFile",
    "FieldSet",
    "KeyStyle",
    "LoraLayoutSpec",
    "Shape",
    "build_field_set",
    "hyper_lora_fixture_name",
    "pcm_fixture_name",
    "safetensors_file_size",
    "write_dmd2_1step_unet_bin",
    "write_dmd2_4step_lora",
    "write_dmd2_4step_unet",
    "write_flash_lora",
    "write_hyper_lora",
    "write_hyper_unet",
    "write_pcm_lora",
    "write_tcd_lora",
    "write_turbo_apart",
    "write_turbo_folder",
    "write_turbo_single_file",
]

FIELD_RANK = 64  # every LoRA of the field is rank 64 (see docs/field-layouts.md for each)
DMD2_ALPHA = 8.0  # tianweiy/DMD2 main/sdxl/extract_lora_module.py: --lora_alpha default 8, --lora_rank 64
# Flash SDXL trains LoraConfig(r=LORA_RANK, lora_alpha=LORA_RANK): scale 1, and its file carries no alpha.
FLASH_ALPHA = float(FIELD_RANK)
# The alpha of the TCD, Hyper-SD and PCM files is not known (no export script is public for TCD and
# Hyper-SD, none for PCM's "_converted" files). The fixtures use DMD2's, which PCM's own kohya exporter
# (peft's default lora_alpha 8) would also write. Unverified.
UNVERIFIED_ALPHA = 8.0
ST_FORMAT_PT: Mapping[str, str] = {"format": "pt"}  # what diffusers' save_lora_weights writes

HYPER_LORA_NAMES: tuple[str, ...] = (
    "Hyper-SDXL-1step-lora.safetensors",
    "Hyper-SDXL-2steps-lora.safetensors",
    "Hyper-SDXL-4steps-lora.safetensors",
    "Hyper-SDXL-8steps-lora.safetensors",
    "Hyper-SDXL-8steps-CFG-lora.safetensors",
    "Hyper-SDXL-12steps-CFG-lora.safetensors",
)
PCM_LORA_NAMES: tuple[str, ...] = (
    "pcm_sdxl_smallcfg_2step_converted.safetensors",
    "pcm_sdxl_smallcfg_4step_converted.safetensors",
    "pcm_sdxl_smallcfg_8step_converted.safetensors",
    "pcm_sdxl_smallcfg_16step_converted.safetensors",
    "pcm_sdxl_normalcfg_4step_converted.safetensors",
    "pcm_sdxl_normalcfg_8step_converted.safetensors",
    "pcm_sdxl_normalcfg_16step_converted.safetensors",
    "pcm_sdxl_lcmlike_lora_converted.safetensors",
)

# Folders named as the repositories are (a user who keeps the repository's layout has these).
TCD_DIR = "TCD-SDXL-LoRA"
HYPER_DIR = "Hyper-SD"
DMD2_DIR = "DMD2"
PCM_DIR = "PCM_Weights"
FLASH_DIR = "flash-sdxl"
TURBO_DIR = "sdxl-turbo"
LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
TURBO_SINGLE_FILE = "sd_xl_turbo_1.0_fp16.safetensors"


class Shape(StrEnum):
    """What kind of file a fixture is."""

    LORA = "LoRA"
    UNET = "bare UNet state dict"
    PIPELINE_FOLDER = "diffusers pipeline folder"
    SINGLE_FILE = "original (SGM) single-file checkpoint"


@dataclass(frozen=True)
class FieldFile:
    """One fixture: the family, the file (or folder), its shape and, for a LoRA, its matrices."""

    name: str  # e.g. "tcd", "hyper-lora-4steps", "dmd2-unet-4step"
    family: str  # tcd, hyper-sd, dmd2, pcm, flash, turbo
    shape: Shape
    path: Path
    matrices: LoraMatrices | None = None  # the UNet matrices a LoRA file holds (diffusers module names)


@dataclass(frozen=True)
class FieldSet:
    root: Path
    files: Mapping[str, FieldFile] = field(default_factory=dict)

    def __getitem__(self, name: str) -> FieldFile:
        return self.files[name]


# ---------------------------------------------------------------------------------------------
# LoRAs


def _matrices(
    models: TinyModelSet, seed: int, *, alpha: float, targets: Sequence[str] = LORA_TARGETS
) -> LoraMatrices:
    return lora_matrices(models, seed=seed, rank=FIELD_RANK, alpha=alpha, unet_targets=targets)


def _write_kohya(
    path: Path,
    matrices: LoraMatrices,
    *,
    dtype: torch.dtype,
    metadata: Mapping[str, str] | None,
) -> Path:
    save_safetensors(kohya_state_dict(matrices, dtype=dtype), path, metadata)
    return path


def write_tcd_lora(models: TinyModelSet, folder: Path, *, seed: int = 0) -> tuple[Path, LoraMatrices]:
    """h1t/TCD-SDXL-LoRA ``pytorch_lora_weights.safetensors``.

    Mirrors: kohya keys with diffusers module names (``lora_unet_down_blocks_0_resnets_0_conv1.lora_down
    .weight``, ``.lora_up.weight``, a 0-d ``.alpha``), the 14 module kinds of diffusers' LCM-LoRA training
    script (788 modules on SDXL, 2,364 tensors), rank 64, fp16 throughout, no text-encoder keys, metadata
    ``{"format": "pt"}``: byte for byte the layout of latent-consistency/lcm-lora-sdxl's file. Checked by
    reproducing the published size, 393,854,624 bytes, exactly from that layout (docs/field-layouts.md,
    "How sizes were checked"). The alpha value is unverified.
    """
    matrices = _matrices(models, seed * 1009 + 101, alpha=UNVERIFIED_ALPHA)
    path = _write_kohya(folder / TCD_DIR / LORA_WEIGHTS, matrices, dtype=torch.float16, metadata=ST_FORMAT_PT)
    return path, matrices


def write_hyper_lora(
    models: TinyModelSet, folder: Path, name: str, *, seed: int = 0
) -> tuple[Path, LoraMatrices]:
    """ByteDance/Hyper-SD ``Hyper-SDXL-{1step,2steps,4steps,8steps}-lora.safetensors`` and
    ``Hyper-SDXL-{8steps,12steps}-CFG-lora.safetensors`` (all at the repository's root).

    Mirrors: kohya keys with diffusers module names over the same 788 modules as LCM-LoRA, metadata
    ``{"format": "pt"}``, no text-encoder keys; 787,359,648 bytes, reproduced exactly by that layout
    either in fp32 at rank 64 or in fp16 at rank 128 (the byte count cannot tell the two apart). The
    fixture takes fp32 at rank 64; dtype, rank and alpha are unverified.
    """
    if name not in HYPER_LORA_NAMES:
        raise ValueError(f"not a Hyper-SD SDXL LoRA name: {name}")
    salt = 200 + HYPER_LORA_NAMES.index(name)
    matrices = _matrices(models, seed * 1009 + salt, alpha=UNVERIFIED_ALPHA)
    path = _write_kohya(folder / HYPER_DIR / name, matrices, dtype=torch.float32, metadata=ST_FORMAT_PT)
    return path, matrices


def write_dmd2_4step_lora(models: TinyModelSet, folder: Path, *, seed: int = 0) -> tuple[Path, LoraMatrices]:
    """tianweiy/DMD2 ``dmd2_sdxl_4step_lora_fp16.safetensors``.

    Mirrors DMD2's own exporter, main/sdxl/extract_lora_module.py: peft's state dict renamed to kohya keys
    with diffusers module names (``lora_A`` -> ``lora_down``, ``lora_B`` -> ``lora_up``, ``lora_unet_`` +
    the module path with ``_``), a 0-d ``.alpha`` of 8 per module in fp16, rank 64, the LCM target list,
    ``save_file`` with no metadata. Its published size, 393,854,592 bytes, is that layout's exactly (the
    same as sdxl_lightning_4step_lora.safetensors).
    """
    matrices = _matrices(models, seed * 1009 + 301, alpha=DMD2_ALPHA)
    path = folder / DMD2_DIR / "dmd2_sdxl_4step_lora_fp16.safetensors"
    return _write_kohya(path, matrices, dtype=torch.float16, metadata=None), matrices


def write_pcm_lora(
    models: TinyModelSet, folder: Path, name: str, *, seed: int = 0
) -> tuple[Path, LoraMatrices]:
    """wangfuyun/PCM_Weights ``sdxl/pcm_sdxl_{smallcfg,normalcfg}_{N}step_converted.safetensors`` (and
    ``pcm_sdxl_lcmlike_lora_converted.safetensors``).

    Mirrors: kohya keys with diffusers module names (2,364 tensors, 788 ``.alpha``; smallcfg and
    normalcfg share one key set), the LCM target list of PCM's training script, rank 64, fp16, no
    metadata: the published 393,854,592 bytes are exactly that layout's. The "_converted" files replaced
    the first upload, whose ``unet.base_model.model.*.lora_A.weight`` keys diffusers refused
    (G-U-N/Phased-Consistency-Model issue 2). Alpha unverified.
    """
    if name not in PCM_LORA_NAMES:
        raise ValueError(f"not a PCM SDXL LoRA name: {name}")
    salt = 400 + PCM_LORA_NAMES.index(name)
    matrices = _matrices(models, seed * 1009 + salt, alpha=UNVERIFIED_ALPHA)
    path = folder / PCM_DIR / "sdxl" / name
    return _write_kohya(path, matrices, dtype=torch.float16, metadata=None), matrices


def write_flash_lora(models: TinyModelSet, folder: Path, *, seed: int = 0) -> tuple[Path, LoraMatrices]:
    """jasperai/flash-sdxl ``pytorch_lora_weights.safetensors``.

    Mirrors: the attention projections only (``to_q``, ``to_k``, ``to_v``, ``to_out.0``: 560 modules on
    SDXL), as gojasper/flash-diffusion examples/train_flash_sdxl.py adapts them, rank 64 with alpha 64
    (scale 1, no alpha key), in the old diffusers key format ``unet.{module}.lora.down.weight`` /
    ``.lora.up.weight``, fp32, metadata ``{"format": "pt"}`` (1,120 tensors). That layout gives
    371,758,976 bytes exactly, the size a third-party size table lists for an SDXL LoRA it tags "FLD";
    that this entry is jasperai's file, and so the key style, are inferred, not read.
    """
    matrices = _matrices(models, seed * 1009 + 501, alpha=FLASH_ALPHA, targets=ATTENTION_TARGETS)
    state = old_diffusers_state_dict(matrices)  # alpha / rank = 1: the up matrices are as they are
    path = folder / FLASH_DIR / LORA_WEIGHTS
    save_safetensors(state, path, ST_FORMAT_PT)
    return path, matrices


# ---------------------------------------------------------------------------------------------
# Bare UNets


def _distilled_unet(
    models: TinyModelSet, seed: int, salt: int, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """The tiny base UNet, perturbed as the set's Lightning UNet is, in ``dtype``: a stand-in for a
    distilled UNet with the base's keys and shapes."""
    base = load_file(models.base / "unet" / "diffusion_pytorch_model.safetensors")
    generator = torch.Generator(device="cpu").manual_seed(seed * 1009 + salt)
    return {k: v.to(dtype).contiguous() for k, v in _perturbed(base, generator, 0.1).items()}


def write_hyper_unet(models: TinyModelSet, folder: Path, *, seed: int = 0) -> Path:
    """ByteDance/Hyper-SD ``Hyper-SDXL-1step-Unet.safetensors``: a bare diffusers UNet state dict (the
    card loads it with ``unet.load_state_dict(load_file(...))`` into a UNet from the base config), fp32
    (10.3 GB for SDXL's 2.57 billion parameters). Metadata unverified; the fixture writes none."""
    path = folder / HYPER_DIR / "Hyper-SDXL-1step-Unet.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(_distilled_unet(models, seed, 601, torch.float32), path)
    return path


def write_dmd2_4step_unet(models: TinyModelSet, folder: Path, *, seed: int = 0) -> Path:
    """tianweiy/DMD2 ``dmd2_sdxl_4step_unet_fp16.safetensors``: a bare diffusers UNet state dict in fp16
    (5.14 GB), loaded into a UNet from the base config as the README loads its ``.bin`` twin. Metadata
    unverified; the fixture writes none."""
    path = folder / DMD2_DIR / "dmd2_sdxl_4step_unet_fp16.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(_distilled_unet(models, seed, 602, torch.float16), path)
    return path


def write_dmd2_1step_unet_bin(models: TinyModelSet, folder: Path, *, seed: int = 0) -> Path:
    """tianweiy/DMD2 ``dmd2_sdxl_1step_unet_fp16.bin``: a pickled (``torch.save``) diffusers UNet state
    dict in fp16, which the README loads with ``torch.load``. No safetensors copy of the 1-step UNet
    was found; Fewstep must refuse this file. The fixture holds tensors only (``weights_only`` loads it)."""
    path = folder / DMD2_DIR / "dmd2_sdxl_1step_unet_fp16.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_distilled_unet(models, seed, 603, torch.float16), path)
    return path


# ---------------------------------------------------------------------------------------------
# SDXL-Turbo


def write_turbo_folder(models: TinyModelSet, folder: Path, *, seed: int = 0) -> Path:
    """stabilityai/sdxl-turbo as a diffusers folder: the tiny base's layout (model_index.json
    ``StableDiffusionXLPipeline``, fp32 and ``.fp16`` weight variants, as diffusers' docs load it with
    ``variant="fp16"``), a distilled UNet, and ``EulerAncestralDiscreteScheduler`` with
    ``timestep_spacing: "trailing"`` in model_index.json and the scheduler config (the scheduler that
    diffusers' SDXL-Turbo docs set by hand for the single file, and that the repository's config holds).

    Unverified: the rest of the real scheduler and UNet configs (``sample_size``), and whether the real
    text encoders and VAE equal the base's bit for bit; the fixture copies the base's, so they are equal.
    """
    dest = folder / TURBO_DIR
    if dest.exists():
        raise FileExistsError(f"{dest} exists")
    shutil.copytree(models.base, dest)
    scheduler_config = dest / "scheduler" / "scheduler_config.json"
    config = json.loads(scheduler_config.read_text(encoding="utf-8"))
    config.update({"_class_name": "EulerAncestralDiscreteScheduler", "timestep_spacing": "trailing"})
    write_json(scheduler_config, config)
    index = json.loads((dest / "model_index.json").read_text(encoding="utf-8"))
    index["scheduler"] = ["diffusers", "EulerAncestralDiscreteScheduler"]
    write_json(dest / "model_index.json", index)
    unet = _distilled_unet(models, seed, 701, torch.float32)
    for variant, dtype in (("", torch.float32), (".fp16", torch.float16)):
        out = {k: v.to(dtype).contiguous() for k, v in unet.items()}
        save_file(
            out, dest / "unet" / f"diffusion_pytorch_model{variant}.safetensors", metadata=dict(ST_FORMAT_PT)
        )
    return dest


def write_turbo_single_file(models: TinyModelSet, turbo_folder: Path) -> Path:
    """stabilityai/sdxl-turbo ``sd_xl_turbo_1.0_fp16.safetensors`` (at the repository's root, beside
    the diffusers folders): the original (SGM) single-file layout of ``sd_xl_base_1.0.safetensors`` in
    fp16, which diffusers' single-file loader takes for SDXL base (it keys on
    ``conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias``; diffusers' SDXL-Turbo docs
    load it with ``from_single_file`` and set the trailing scheduler by hand). Made from
    ``turbo_folder``'s weights. Metadata unverified; the fixture writes none."""
    turbo = TinyModelSet(
        root=turbo_folder.parent,
        base=turbo_folder,
        lcm_unet=models.lcm_unet,
        lcm_lora=models.lcm_lora,
        lightning_unet=models.lightning_unet,
        lightning_lora=models.lightning_lora,
    )
    return write_single_file_checkpoint(turbo, turbo_folder / TURBO_SINGLE_FILE, dtype=torch.float16)


TURBO_APART_DIR = "own-parts"  # holds an sdxl-turbo folder whose text encoders and VAE are its own
_TURBO_OWN_PARTS = ("text_encoder", "text_encoder_2", "vae")


def write_turbo_apart(models: TinyModelSet, folder: Path, *, seed: int = 0) -> tuple[Path, Path]:
    """An SDXL-Turbo folder and its single file (``folder/own-parts/sdxl-turbo`` and the
    ``sd_xl_turbo_1.0_fp16.safetensors`` in it), laid out as write_turbo_folder's, but whose text
    encoders and VAE differ from the base's: every float tensor of ``text_encoder``, ``text_encoder_2``
    and ``vae`` moved by seeded noise of 5% of its RMS, the ``.fp16`` variant the perturbed fp32 weights
    in fp16. The case the engine loads apart; whether the real files differ from SDXL base's is
    unverified."""
    turbo = write_turbo_folder(models, folder / TURBO_APART_DIR, seed=seed)
    for index, sub in enumerate(_TURBO_OWN_PARTS):
        files = sorted((turbo / sub).glob("*.safetensors"))
        full = next(f for f in files if ".fp16." not in f.name)
        generator = torch.Generator(device="cpu").manual_seed(seed * 1009 + 711 + index)
        moved = _perturbed(load_file(full), generator, 0.05)
        save_file(moved, full, metadata=dict(ST_FORMAT_PT))
        for half in (f for f in files if ".fp16." in f.name):
            in_fp16 = {k: v.half() if v.is_floating_point() else v for k, v in moved.items()}
            save_file(in_fp16, half, metadata=dict(ST_FORMAT_PT))
    return turbo, write_turbo_single_file(models, turbo)


# ---------------------------------------------------------------------------------------------
# Published byte counts, reproduced from a layout


class KeyStyle(StrEnum):
    KOHYA = "kohya, diffusers names"  # lora_unet_{module with _}.lora_down.weight / .lora_up.weight / .alpha
    OLD_DIFFUSERS = "old diffusers"  # unet.{module}.lora.down.weight / .lora.up.weight, no alpha
    PEFT = "PEFT"  # unet.{module}.lora_A.weight / .lora_B.weight, no alpha


@dataclass(frozen=True)
class LoraLayoutSpec:
    """A LoRA file's layout on the full-size SDXL UNet, enough to compute its exact size."""

    keys: KeyStyle
    rank: int
    dtype: str  # safetensors' name: "F16" or "F32" (matrices and alphas alike)
    metadata: Mapping[str, str] | None
    targets: tuple[str, ...] = LORA_TARGETS


_DTYPE_BYTES = {"F16": 2, "F32": 4}
_DTYPE_ORDER = {"F32": 0, "F16": 1}  # safetensors lays larger alignments first, then by name


@functools.cache
def _target_shapes(targets: tuple[str, ...], config_dir: Path) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The weight shape of each module of the full-size UNet (``config_dir``) a LoRA on ``targets`` adapts."""
    from diffusers import UNet2DConditionModel

    from devtools.tiny_model import lora_target_modules

    config = json.loads((config_dir / "unet" / "config.json").read_text(encoding="utf-8"))
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    return tuple((name, tuple(module.weight.shape)) for name, module in lora_target_modules(unet, targets))


def _sdxl_lora_tensors(spec: LoraLayoutSpec, config_dir: Path) -> list[tuple[str, list[int]]]:
    tensors: list[tuple[str, list[int]]] = []
    for name, shape in _target_shapes(spec.targets, config_dir):
        down, up = [spec.rank, *shape[1:]], [shape[0], spec.rank] + ([1, 1] if len(shape) == 4 else [])
        if spec.keys is KeyStyle.KOHYA:
            key = "lora_unet_" + name.replace(".", "_")
            tensors += [
                (f"{key}.lora_down.weight", down),
                (f"{key}.lora_up.weight", up),
                (f"{key}.alpha", []),
            ]
        elif spec.keys is KeyStyle.OLD_DIFFUSERS:
            tensors += [(f"unet.{name}.lora.down.weight", down), (f"unet.{name}.lora.up.weight", up)]
        else:
            tensors += [(f"unet.{name}.lora_A.weight", down), (f"unet.{name}.lora_B.weight", up)]
    return tensors


def safetensors_file_size(spec: LoraLayoutSpec, config_dir: Path) -> int:
    """The exact byte count of a LoRA file in ``spec``'s layout for the full-size SDXL UNet of
    ``config_dir``, as the safetensors library writes it: 8 bytes of header length, the JSON header
    (``__metadata__`` first, then each tensor's dtype, shape and data offsets, in storage order), padded
    with spaces to 8 bytes, then the data. No weight is made: the UNet is built on the meta device."""
    tensors = _sdxl_lora_tensors(spec, config_dir)
    header: dict[str, object] = {}
    if spec.metadata:
        header["__metadata__"] = dict(spec.metadata)
    offset = 0
    for key, shape in sorted(tensors, key=lambda t: (_DTYPE_ORDER[spec.dtype], t[0])):
        size = _DTYPE_BYTES[spec.dtype]
        for dim in shape:
            size *= dim
        header[key] = {"dtype": spec.dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":"))
    return 8 + len(text) + (-len(text) % 8) + offset


# ---------------------------------------------------------------------------------------------
# The whole field


def hyper_lora_fixture_name(file_name: str) -> str:
    """``Hyper-SDXL-8steps-CFG-lora.safetensors`` -> ``hyper-lora-8steps-cfg``."""
    return "hyper-lora-" + file_name.removeprefix("Hyper-SDXL-").removesuffix("-lora.safetensors").lower()


def pcm_fixture_name(file_name: str) -> str:
    """``pcm_sdxl_smallcfg_2step_converted.safetensors`` -> ``pcm-smallcfg-2step``."""
    stem = file_name.removeprefix("pcm_sdxl_").removesuffix("_converted.safetensors").removesuffix("_lora")
    return "pcm-" + stem.replace("_", "-")


def build_field_set(models: TinyModelSet, folder: Path, *, seed: int = 0) -> FieldSet:
    """Every fixture of this module under ``folder`` (which must not exist or be empty), by name."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty")
    files: dict[str, FieldFile] = {}

    def lora(name: str, family: str, written: tuple[Path, LoraMatrices]) -> None:
        files[name] = FieldFile(name, family, Shape.LORA, written[0], written[1])

    lora("tcd", "tcd", write_tcd_lora(models, folder, seed=seed))
    for hyper in HYPER_LORA_NAMES:
        lora(hyper_lora_fixture_name(hyper), "hyper-sd", write_hyper_lora(models, folder, hyper, seed=seed))
    lora("dmd2-lora-4step", "dmd2", write_dmd2_4step_lora(models, folder, seed=seed))
    for pcm in PCM_LORA_NAMES:
        lora(pcm_fixture_name(pcm), "pcm", write_pcm_lora(models, folder, pcm, seed=seed))
    lora("flash", "flash", write_flash_lora(models, folder, seed=seed))
    for name, family, shape, path in (
        ("hyper-unet-1step", "hyper-sd", Shape.UNET, write_hyper_unet(models, folder, seed=seed)),
        ("dmd2-unet-4step", "dmd2", Shape.UNET, write_dmd2_4step_unet(models, folder, seed=seed)),
        ("dmd2-unet-1step-bin", "dmd2", Shape.UNET, write_dmd2_1step_unet_bin(models, folder, seed=seed)),
    ):
        files[name] = FieldFile(name, family, shape, path)
    turbo = write_turbo_folder(models, folder, seed=seed)
    files["turbo-folder"] = FieldFile("turbo-folder", "turbo", Shape.PIPELINE_FOLDER, turbo)
    single = write_turbo_single_file(models, turbo)
    files["turbo-single-file"] = FieldFile("turbo-single-file", "turbo", Shape.SINGLE_FILE, single)
    return FieldSet(folder, files)
