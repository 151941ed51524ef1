"""The few-step SDXL field's files as tiny fixtures (devtools/field_fixtures.py, issue 21): plain diffusers
loads each as its model card does, without a missing or unexpected key, and each changes the UNet;
each header has the documented layout (docs/field-layouts.md); and what Fewstep's file recognizer
says of each today is recorded, row by row, for the engineer who adds recognition to flip."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch
from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
from peft.tuners.lora import LoraLayer
from safetensors import safe_open
from safetensors.torch import load_file

from devtools.field_fixtures import (
    DMD2_ALPHA,
    FIELD_RANK,
    HYPER_LORA_NAMES,
    PCM_DIR,
    PCM_LORA_NAMES,
    ST_FORMAT_PT,
    FieldSet,
    KeyStyle,
    LoraLayoutSpec,
    build_field_set,
    hyper_lora_fixture_name,
    pcm_fixture_name,
    safetensors_file_size,
)
from devtools.tiny_model import LORA_TARGETS, TinyModelSet
from engine.files.resources import sdxl_config_dir

HYPER_LORAS = tuple(hyper_lora_fixture_name(n) for n in HYPER_LORA_NAMES)
PCM_LORAS = tuple(pcm_fixture_name(n) for n in PCM_LORA_NAMES)
LORAS = ("tcd", *HYPER_LORAS, "dmd2-lora-4step", *PCM_LORAS, "flash")


@pytest.fixture(scope="module")
def field(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> FieldSet:
    return build_field_set(tiny_models, tmp_path_factory.mktemp("field") / "models")


def base_pipeline(models: TinyModelSet) -> Any:
    pipe = StableDiffusionXLPipeline.from_pretrained(models.base, dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def unet_output(unet: Any) -> torch.Tensor:
    """The UNet's prediction for fixed random inputs."""
    generator = torch.Generator().manual_seed(7)
    config = unet.config
    pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
    sample = torch.randn((1, 4, 8, 8), generator=generator)
    hidden = torch.randn((1, 6, config.cross_attention_dim), generator=generator)
    added = {
        "text_embeds": torch.randn((1, pooled), generator=generator),
        "time_ids": torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]]),
    }
    with torch.no_grad():
        out: torch.Tensor = unet(sample, 500, hidden, added_cond_kwargs=added).sample
    return out


def assert_changes(before: torch.Tensor, after: torch.Tensor) -> None:
    change = float((after - before).abs().max())
    assert change > 1e-3 * float(before.abs().max()), f"the adapter changed the output by only {change}"


@pytest.fixture
def diffusers_warnings() -> Iterator[list[str]]:
    """Every warning diffusers logs meanwhile (a LoRA with unmatched keys is only warned about)."""
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("diffusers")
    handler, level = Collect(logging.WARNING), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# ---------------------------------------------------------------------------------------------
# LoRAs: load_lora_weights then fuse_lora, as the cards do


def card_load(pipe: Any, field: FieldSet, name: str) -> None:
    """``load_lora_weights`` called as each card (or the official demo) calls it."""
    path = field[name].path
    if name in ("tcd", "flash"):  # the repository id: its default pytorch_lora_weights.safetensors
        pipe.load_lora_weights(str(path.parent))
    elif name in PCM_LORAS:  # the PCM demo: weight_name=..., subfolder="sdxl"
        pipe.load_lora_weights(str(field.root / PCM_DIR), weight_name=path.name, subfolder="sdxl")
    else:  # Hyper-SD and DMD2: the downloaded file's path
        pipe.load_lora_weights(str(path))


def lora_modules(model: Any) -> set[str]:
    return {name for name, module in model.named_modules() if isinstance(module, LoraLayer)}


@pytest.mark.parametrize("name", LORAS)
def test_lora_loads_fully_and_fuses_as_the_card_does(
    name: str, field: FieldSet, tiny_models: TinyModelSet, diffusers_warnings: list[str]
) -> None:
    matrices = field[name].matrices
    assert matrices is not None
    pipe = base_pipeline(tiny_models)
    modules = dict(pipe.unet.named_modules())
    weights = {m: modules[m].weight.detach().clone() for m in matrices.unet}
    before = unet_output(pipe.unet)

    card_load(pipe, field, name)
    assert lora_modules(pipe.unet) == set(matrices.unet), (
        "every module in the file, and only those, is adapted"
    )
    assert not lora_modules(pipe.text_encoder) and not lora_modules(pipe.text_encoder_2)
    # diffusers warns that no key is for the text encoders: true of every file here, as of the real ones.
    other = [w for w in diffusers_warnings if not w.startswith("No LoRA keys associated to CLIPTextModel")]
    assert not other, other
    pipe.fuse_lora(lora_scale=1.0)

    modules = dict(pipe.unet.named_modules())
    for module, (down, up) in matrices.unet.items():
        fused = modules[module].get_base_layer().weight.detach()
        delta = matrices.scale * (up.float().flatten(1) @ down.float().flatten(1)).reshape(fused.shape)
        torch.testing.assert_close(fused - weights[module], delta, atol=1e-5, rtol=1e-3, msg=module)
    assert_changes(before, unet_output(pipe.unet))


# ---------------------------------------------------------------------------------------------
# Bare UNets: a UNet from the base config, then load_state_dict


def base_unet(models: TinyModelSet, *, meta: bool = False) -> Any:
    config = UNet2DConditionModel.load_config(models.base, subfolder="unet")
    if meta:
        with torch.device("meta"):
            return UNet2DConditionModel.from_config(config)
    return UNet2DConditionModel.from_config(config)


@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        ("hyper-unet-1step", torch.float32),
        ("dmd2-unet-4step", torch.float16),
        ("dmd2-unet-1step-bin", torch.float16),
    ],
)
def test_bare_unet_loads_strictly_as_the_card_does(
    name: str, dtype: torch.dtype, field: FieldSet, tiny_models: TinyModelSet
) -> None:
    path = field[name].path
    if path.suffix == ".bin":  # DMD2's README: torch.load; ours holds tensors only
        state = torch.load(path, map_location="cpu", weights_only=True)
    else:
        state = load_file(path)
    assert {v.dtype for v in state.values()} == {dtype}
    if name.startswith("dmd2"):  # the DMD2 README: a meta UNet, load_state_dict(..., assign=True)
        unet = base_unet(tiny_models, meta=True).to(dtype)
        result = unet.load_state_dict(state, assign=True)
    else:  # the Hyper-SD card: a UNet from the base config, load_state_dict (strict)
        unet = base_unet(tiny_models)
        result = unet.load_state_dict(state)
    assert not result.missing_keys and not result.unexpected_keys
    reference = base_unet(tiny_models)
    reference.load_state_dict(load_file(tiny_models.base / "unet" / "diffusion_pytorch_model.safetensors"))
    assert_changes(unet_output(reference), unet_output(unet.float()))


# ---------------------------------------------------------------------------------------------
# SDXL-Turbo: a whole pipeline, as a folder or one file


def test_turbo_folder_loads_with_its_trailing_euler_ancestral(
    field: FieldSet, tiny_models: TinyModelSet
) -> None:
    folder = field["turbo-folder"].path
    pipe = StableDiffusionXLPipeline.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    assert type(pipe.scheduler).__name__ == "EulerAncestralDiscreteScheduler"
    assert pipe.scheduler.config.timestep_spacing == "trailing"
    fp16 = StableDiffusionXLPipeline.from_pretrained(
        folder, dtype=torch.float16, variant="fp16", local_files_only=True
    )
    assert fp16.unet.dtype == torch.float16
    base = base_pipeline(tiny_models)
    assert_changes(unet_output(base.unet), unet_output(pipe.unet))
    # The fixture's text encoders and VAE are the base's, bit for bit (unverified for the real files).
    for part in ("text_encoder", "text_encoder_2", "vae"):
        ours, theirs = getattr(pipe, part).state_dict(), getattr(base, part).state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs), part


def test_turbo_single_file_loads_as_sdxl_base_with_the_folders_weights(
    field: FieldSet, tmp_path: Path
) -> None:
    folder = field["turbo-folder"].path
    config = shutil.copytree(folder, tmp_path / "config", ignore=shutil.ignore_patterns("*.safetensors"))
    pipe = StableDiffusionXLPipeline.from_single_file(
        str(field["turbo-single-file"].path), config=str(config), dtype=torch.float32, local_files_only=True
    )
    expected = load_file(folder / "unet" / "diffusion_pytorch_model.fp16.safetensors")
    loaded = pipe.unet.state_dict()
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], expected[k].float()) for k in expected)


# ---------------------------------------------------------------------------------------------
# Headers: the documented layout of each (docs/field-layouts.md)


class Layout(NamedTuple):
    keys: str  # "kohya" (lora_unet_*, lora_down/lora_up/alpha) or "old-diffusers" (unet.*.lora.down.weight)
    dtype: str  # of the matrices
    alpha: float | None  # the value of every .alpha key, or None for none
    metadata: dict[str, str]
    attention_only: bool


_KOHYA_FP16_PT = Layout("kohya", "F16", 8.0, dict(ST_FORMAT_PT), False)
_KOHYA_FP16 = Layout("kohya", "F16", DMD2_ALPHA, {}, False)
LAYOUTS: dict[str, Layout] = {
    "tcd": _KOHYA_FP16_PT,
    **dict.fromkeys(HYPER_LORAS, Layout("kohya", "F32", 8.0, dict(ST_FORMAT_PT), False)),
    "dmd2-lora-4step": _KOHYA_FP16,
    **dict.fromkeys(PCM_LORAS, _KOHYA_FP16),
    "flash": Layout("old-diffusers", "F32", None, dict(ST_FORMAT_PT), True),
}


def header(path: Path) -> tuple[dict[str, str], dict[str, str], dict[str, list[int]], dict[str, float]]:
    with safe_open(str(path), framework="pt") as handle:
        keys = list(handle.keys())
        dtypes = {k: str(handle.get_slice(k).get_dtype()) for k in keys}
        shapes = {k: list(handle.get_slice(k).get_shape()) for k in keys}
        alphas = {k: float(handle.get_tensor(k)) for k in keys if k.endswith(".alpha")}
        return dict(handle.metadata() or {}), dtypes, shapes, alphas


ATTENTION = ("to_q", "to_k", "to_v", "to_out_0")
_SUFFIXES = (".lora_down.weight", ".lora_up.weight", ".alpha", ".lora.down.weight", ".lora.up.weight")


def module_of(key: str) -> str:
    return next(key.removesuffix(s) for s in _SUFFIXES if key.endswith(s))


@pytest.mark.parametrize("name", LORAS)
def test_lora_header_has_the_documented_layout(name: str, field: FieldSet) -> None:
    expected = LAYOUTS[name]
    metadata, dtypes, shapes, alphas = header(field[name].path)
    assert metadata == expected.metadata
    matrices = [k for k in dtypes if not k.endswith(".alpha")]
    assert {dtypes[k] for k in matrices} == {expected.dtype}
    if expected.keys == "kohya":
        assert all(k.startswith("lora_unet_") for k in dtypes)
        assert all(k.endswith((".lora_down.weight", ".lora_up.weight", ".alpha")) for k in dtypes)
        assert len(alphas) * 3 == len(dtypes) and set(alphas.values()) == {expected.alpha}
        assert {dtypes[k] for k in alphas} == {expected.dtype} and all(shapes[k] == [] for k in alphas)
        ranks = {shapes[k][0] for k in matrices if k.endswith(".lora_down.weight")}
    else:
        assert all(
            k.startswith("unet.") and k.endswith((".lora.down.weight", ".lora.up.weight")) for k in dtypes
        )
        assert not alphas
        ranks = {shapes[k][0] for k in matrices if k.endswith(".lora.down.weight")}
    assert ranks == {FIELD_RANK}
    attention = all(module_of(k).replace(".", "_").endswith(ATTENTION) for k in dtypes)
    assert attention == expected.attention_only
    assert not any(k.startswith(("lora_te", "text_encoder")) for k in dtypes)


def test_pcm_smallcfg_and_normalcfg_share_one_key_set(field: FieldSet) -> None:
    """As the real files do (2,364 keys each, 788 alphas): only the weights differ."""
    sets = {name: header(field[name].path)[2] for name in PCM_LORAS}
    assert len({json.dumps(s, sort_keys=True) for s in sets.values()}) == 1


# How Fewstep's recognizer tells each of these files: tests/engine/files/test_field_recognition.py.


# ---------------------------------------------------------------------------------------------
# The layouts reproduce the real files' published byte counts exactly (docs/field-layouts.md)

ATTENTION_ONLY = ("to_q", "to_k", "to_v", "to_out.0")
KOHYA_FP16 = LoraLayoutSpec(KeyStyle.KOHYA, FIELD_RANK, "F16", None)
KOHYA_FP16_PT = LoraLayoutSpec(KeyStyle.KOHYA, FIELD_RANK, "F16", ST_FORMAT_PT)
HYPER_FP32 = LoraLayoutSpec(KeyStyle.KOHYA, FIELD_RANK, "F32", ST_FORMAT_PT)
HYPER_RANK_128 = LoraLayoutSpec(KeyStyle.KOHYA, 128, "F16", ST_FORMAT_PT)
FLASH = LoraLayoutSpec(KeyStyle.OLD_DIFFUSERS, FIELD_RANK, "F32", ST_FORMAT_PT, ATTENTION_ONLY)

# (file, its published size in bytes, the layout the fixture gives it). Sources in docs/field-layouts.md.
PUBLISHED_SIZES: tuple[tuple[str, int, LoraLayoutSpec], ...] = (
    ("sdxl_lightning_4step_lora.safetensors (control: its layout is known)", 393_854_592, KOHYA_FP16),
    ("lcm-lora-sdxl pytorch_lora_weights.safetensors", 393_854_624, KOHYA_FP16_PT),
    ("TCD-SDXL-LoRA pytorch_lora_weights.safetensors", 393_854_624, KOHYA_FP16_PT),
    ("dmd2_sdxl_4step_lora_fp16.safetensors", 393_854_592, KOHYA_FP16),
    ("pcm_sdxl_*_converted.safetensors", 393_854_592, KOHYA_FP16),
    ("Hyper-SDXL-*-lora.safetensors, as fp32 rank 64", 787_359_648, HYPER_FP32),
    ("Hyper-SDXL-*-lora.safetensors, as fp16 rank 128", 787_359_648, HYPER_RANK_128),
    ("flash-sdxl pytorch_lora_weights.safetensors (if the size table's FLD entry is it)", 371_758_976, FLASH),
)


@pytest.mark.parametrize(("file", "size", "spec"), PUBLISHED_SIZES, ids=[p[0] for p in PUBLISHED_SIZES])
def test_layout_reproduces_the_published_size(file: str, size: int, spec: LoraLayoutSpec) -> None:
    assert safetensors_file_size(spec, sdxl_config_dir()) == size


@pytest.mark.parametrize(
    "other",
    [
        LoraLayoutSpec(KeyStyle.PEFT, FIELD_RANK, "F32", ST_FORMAT_PT, ATTENTION_ONLY),
        LoraLayoutSpec(KeyStyle.KOHYA, FIELD_RANK, "F32", ST_FORMAT_PT, ATTENTION_ONLY),
        LoraLayoutSpec(KeyStyle.OLD_DIFFUSERS, FIELD_RANK, "F32", None, ATTENTION_ONLY),
        LoraLayoutSpec(KeyStyle.KOHYA, FIELD_RANK, "F16", ST_FORMAT_PT, LORA_TARGETS),
    ],
    ids=["peft-keys", "kohya-keys", "no-metadata", "lcm-layout"],
)
def test_flash_size_rules_out_the_other_layouts(other: LoraLayoutSpec) -> None:
    """The byte count pins Flash's key style and metadata: every neighbouring layout misses it."""
    assert safetensors_file_size(other, sdxl_config_dir()) != 371_758_976


def test_every_writer_is_deterministic(field: FieldSet, tiny_models: TinyModelSet, tmp_path: Path) -> None:
    again = build_field_set(tiny_models, tmp_path / "again")

    def digests(root: Path) -> dict[str, str]:
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    assert digests(again.root) == digests(field.root)
