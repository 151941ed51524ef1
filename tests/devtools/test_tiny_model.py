"""The tiny SDXL set must match the real files' layouts (docs/model-files.md) and load in the stack."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from devtools.tiny_model import (
    DEFAULT_SPEC,
    MARKER_NAME,
    TinyModelSet,
    build_tiny_model_set,
    kohya_key,
    lightning_lora_name,
    lightning_unet_name,
)

SPEC = DEFAULT_SPEC
PROMPT = "a photo of a cat"
DIFFUSERS_FP32 = "diffusion_pytorch_model.safetensors"
DIFFUSERS_FP16 = "diffusion_pytorch_model.fp16.safetensors"

# Written out here, not imported, so that a change in the builder cannot change the expectation.
REAL_MODEL_INDEX: dict[str, Any] = {
    "_class_name": "StableDiffusionXLPipeline",
    "_diffusers_version": "0.19.0.dev0",
    "force_zeros_for_empty_prompt": True,
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "tokenizer_2": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
REAL_SCHEDULER: dict[str, Any] = {
    "_class_name": "EulerDiscreteScheduler",
    "_diffusers_version": "0.19.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}
# Diffusers names of every module the LCM-LoRA training script adapts.
TARGET_SUFFIXES = (
    ".to_q",
    ".to_k",
    ".to_v",
    ".to_out.0",
    ".proj_in",
    ".proj_out",
    ".ff.net.0.proj",
    ".ff.net.2",
    ".conv1",
    ".conv2",
    ".conv_shortcut",
    ".downsamplers.0.conv",
    ".upsamplers.0.conv",
    ".time_emb_proj",
)


def _json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _header(path: Path) -> tuple[dict[str, str] | None, list[str]]:
    with safe_open(str(path), "pt") as f:
        metadata: dict[str, str] | None = f.metadata()
        keys: list[str] = list(f.keys())
    return metadata, keys


def _dtypes(path: Path) -> set[torch.dtype]:
    return {t.dtype for t in load_file(path).values()}


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyModelSet]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    yield build_tiny_model_set(tmp_path_factory.mktemp("tiny") / "models")
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pipe(tiny: TinyModelSet) -> Any:
    from diffusers import StableDiffusionXLPipeline

    # The text-encoder configs say float16 as the real ones do (test_text_encoders_default_to_fp16).
    pipeline = StableDiffusionXLPipeline.from_pretrained(
        tiny.base, local_files_only=True, dtype=torch.float32
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _generate(pipe: Any, *, prompt: str = PROMPT, steps: int = 2, guidance: float = 5.0) -> np.ndarray:
    images = pipe(
        prompt,
        num_inference_steps=steps,
        guidance_scale=guidance,
        height=SPEC.image_size,
        width=SPEC.image_size,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images
    assert isinstance(images, np.ndarray)
    return images


@pytest.fixture(scope="module")
def base_image(pipe: Any) -> np.ndarray:
    return _generate(pipe)


# ---------------------------------------------------------------------------------------------
# Layout


def test_layout_and_names(tiny: TinyModelSet) -> None:
    assert tiny.base == tiny.root / "stable-diffusion-xl-base-1.0"
    assert tiny.lcm_unet == tiny.root / "lcm-sdxl"
    assert tiny.lcm_lora == tiny.root / "lcm-lora-sdxl" / "pytorch_lora_weights.safetensors"
    assert tiny.lightning_unet.name == "sdxl_lightning_4step_unet.safetensors"
    assert tiny.lightning_lora.name == "sdxl_lightning_4step_lora.safetensors"
    diffusers_files = ("config.json", DIFFUSERS_FP32, DIFFUSERS_FP16)
    for component in ("unet", "vae"):
        for name in diffusers_files:
            assert (tiny.base / component / name).is_file()
    for component in ("text_encoder", "text_encoder_2"):
        for name in ("config.json", "model.safetensors", "model.fp16.safetensors"):
            assert (tiny.base / component / name).is_file()
    for name in diffusers_files:
        assert (tiny.lcm_unet / name).is_file()
    assert tiny.lightning_unet.is_file() and tiny.lightning_lora.is_file() and tiny.lcm_lora.is_file()
    # No half-built temporary folder is left beside the set.
    assert [p.name for p in tiny.root.parent.iterdir()] == [tiny.root.name]


def test_model_index_and_scheduler_are_the_real_files(tiny: TinyModelSet) -> None:
    model_index = _json(tiny.base / "model_index.json")
    assert model_index == REAL_MODEL_INDEX
    assert "feature_extractor" not in model_index and "image_encoder" not in model_index
    assert _json(tiny.base / "scheduler" / "scheduler_config.json") == REAL_SCHEDULER


def test_unet_and_vae_configs(tiny: TinyModelSet) -> None:
    unet = _json(tiny.base / "unet" / "config.json")
    assert unet["down_block_types"] == ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"]
    assert unet["up_block_types"] == ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]
    assert unet["layers_per_block"] == 2 and unet["use_linear_projection"] is True
    assert unet["addition_embed_type"] == "text_time"
    assert unet["cross_attention_dim"] == SPEC.te1_hidden + SPEC.te2_hidden
    assert SPEC.te1_hidden != SPEC.te2_hidden
    te2 = _json(tiny.base / "text_encoder_2" / "config.json")
    time_ids_width = 6 * unet["addition_time_embed_dim"]
    assert unet["projection_class_embeddings_input_dim"] == te2["projection_dim"] + time_ids_width
    assert unet["sample_size"] == SPEC.image_size // 8
    assert unet["time_cond_proj_dim"] is None
    assert all(isinstance(h, int) for h in unet["attention_head_dim"])
    vae = _json(tiny.base / "vae" / "config.json")
    assert vae["_class_name"] == "AutoencoderKL" and len(vae["block_out_channels"]) == 4
    assert vae["latent_channels"] == 4 and vae["scaling_factor"] == 0.13025
    assert vae["force_upcast"] is True and vae["sample_size"] == SPEC.image_size


def test_weight_files_fp32_fp16_and_metadata(tiny: TinyModelSet) -> None:
    for component, stem in (
        ("unet", "diffusion_pytorch_model"),
        ("vae", "diffusion_pytorch_model"),
        ("text_encoder", "model"),
        ("text_encoder_2", "model"),
    ):
        full = tiny.base / component / f"{stem}.safetensors"
        half = tiny.base / component / f"{stem}.fp16.safetensors"
        full_meta, full_keys = _header(full)
        half_meta, half_keys = _header(half)
        assert full_meta == {"format": "pt"} and half_meta == {"format": "pt"}, component
        assert sorted(full_keys) == sorted(half_keys), component
        assert _dtypes(full) == {torch.float32} and _dtypes(half) == {torch.float16}, component


def test_text_encoder_files_keep_the_text_model_prefix(tiny: TinyModelSet) -> None:
    _, te1_keys = _header(tiny.base / "text_encoder" / "model.safetensors")
    _, te2_keys = _header(tiny.base / "text_encoder_2" / "model.safetensors")
    assert te1_keys and all(k.startswith("text_model.") for k in te1_keys)
    assert "text_model.embeddings.token_embedding.weight" in te1_keys
    assert set(te2_keys) - {k for k in te2_keys if k.startswith("text_model.")} == {"text_projection.weight"}
    # diffusers recognises an SDXL single file by the tenth layer of the second encoder.
    assert "text_model.encoder.layers.9.mlp.fc2.bias" in te2_keys
    vocab = _json(tiny.base / "tokenizer" / "vocab.json")
    for folder, act, hidden in (
        ("text_encoder", "quick_gelu", SPEC.te1_hidden),
        ("text_encoder_2", "gelu", SPEC.te2_hidden),
    ):
        config = _json(tiny.base / folder / "config.json")
        assert "dtype" not in config and config["torch_dtype"] == "float16"
        assert config["architectures"] == [REAL_MODEL_INDEX[folder][1]]
        assert config["hidden_act"] == act and config["hidden_size"] == hidden
        assert config["eos_token_id"] == 2 and config["max_position_embeddings"] == 77
        assert config["vocab_size"] == len(vocab)


def test_text_encoders_load_without_missing_or_unexpected_keys(tiny: TinyModelSet) -> None:
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    for folder, cls in (("text_encoder", CLIPTextModel), ("text_encoder_2", CLIPTextModelWithProjection)):
        for variant, dtype in ((None, torch.float32), ("fp16", torch.float16)):
            model, info = cls.from_pretrained(
                tiny.base / folder, variant=variant, dtype=dtype, output_loading_info=True
            )
            assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
            stem = "model.fp16" if variant else "model"
            on_disk = load_file(tiny.base / folder / f"{stem}.safetensors")
            loaded = model.state_dict()
            prefix = "text_model." if cls is CLIPTextModel else ""
            for key, value in on_disk.items():
                assert torch.equal(loaded[key.removeprefix("text_model.") if prefix else key], value), key


def test_text_encoders_default_to_fp16(tiny: TinyModelSet) -> None:
    """transformers 5 loads in the config's torch_dtype: the engine must pass a dtype explicitly."""
    from transformers import CLIPTextModel

    assert CLIPTextModel.from_pretrained(tiny.base / "text_encoder").dtype == torch.float16


def test_tokenizers(tiny: TinyModelSet) -> None:
    from transformers import CLIPTokenizer

    vocab = _json(tiny.base / "tokenizer" / "vocab.json")
    assert vocab == _json(tiny.base / "tokenizer_2" / "vocab.json")
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    assert (bos, eos) == (len(vocab) - 2, len(vocab) - 1)
    assert vocab["!"] == 0 and len(vocab) > 512
    for folder in ("tokenizer", "tokenizer_2"):
        lines = (tiny.base / folder / "merges.txt").read_text(encoding="utf-8").splitlines()
        assert lines[0] == "#version: 0.2"
        for line in lines[1:]:
            left, right = line.split(" ")
            assert left in vocab and right in vocab and left + right in vocab, line
        config = _json(tiny.base / folder / "tokenizer_config.json")
        assert config["model_max_length"] == 77 and config["do_lower_case"] is True
        assert config["tokenizer_class"] == "CLIPTokenizer"
        assert (tiny.base / folder / "special_tokens_map.json").is_file()

    words = ["a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>"]
    expected = [bos, *(vocab[w] for w in words), eos]
    tok = CLIPTokenizer.from_pretrained(tiny.base / "tokenizer")
    tok2 = CLIPTokenizer.from_pretrained(tiny.base / "tokenizer_2")
    for tokenizer, pad in ((tok, eos), (tok2, vocab["!"])):
        ids = tokenizer(PROMPT, padding="max_length", max_length=77).input_ids
        assert ids[: len(expected)] == expected
        assert ids[len(expected) :] == [pad] * (77 - len(expected))
        assert tokenizer.pad_token_id == pad
    unknown = tok("xyz").input_ids
    assert unknown == [bos, vocab["x"], vocab["y"], vocab["z</w>"], eos]


# ---------------------------------------------------------------------------------------------
# Pipeline, LCM and Lightning UNets


def test_pipeline_generates_64px(pipe: Any, base_image: np.ndarray) -> None:
    assert pipe.text_encoder.dtype == torch.float32 and pipe.unet.dtype == torch.float32
    assert base_image.shape == (1, SPEC.image_size, SPEC.image_size, 3)
    assert np.isfinite(base_image).all() and base_image.std() > 0.01
    other = _generate(pipe, prompt="a red circle")
    assert np.abs(other - base_image).max() > 1e-3
    assert np.array_equal(_generate(pipe), base_image)


def test_lcm_unet_folder(tiny: TinyModelSet, pipe: Any, base_image: np.ndarray) -> None:
    from diffusers import LCMScheduler, UNet2DConditionModel

    config = _json(tiny.lcm_unet / "config.json")
    base_config = _json(tiny.base / "unet" / "config.json")
    assert config["time_cond_proj_dim"] == SPEC.lcm_time_cond_proj_dim
    differ = ("time_cond_proj_dim", "_diffusers_version")
    assert {k: v for k, v in config.items() if k in base_config and k not in differ} == {
        k: v for k, v in base_config.items() if k not in differ
    }
    for name, dtype in ((DIFFUSERS_FP32, torch.float32), (DIFFUSERS_FP16, torch.float16)):
        metadata, keys = _header(tiny.lcm_unet / name)
        assert metadata == {"format": "pt"} and "time_embedding.cond_proj.weight" in keys
        assert _dtypes(tiny.lcm_unet / name) == {dtype}
    unet, info = UNet2DConditionModel.from_pretrained(tiny.lcm_unet, variant="fp16", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert unet.config.time_cond_proj_dim == SPEC.lcm_time_cond_proj_dim
    cond_proj = unet.time_embedding.cond_proj.weight
    assert tuple(cond_proj.shape) == (SPEC.unet_channels[0], SPEC.lcm_time_cond_proj_dim)

    base_unet = pipe.unet
    base_scheduler = pipe.scheduler
    try:
        pipe.unet = unet.to(torch.float32)
        pipe.scheduler = LCMScheduler.from_config(base_scheduler.config)
        image = _generate(pipe, steps=2, guidance=8.0)
    finally:
        pipe.unet, pipe.scheduler = base_unet, base_scheduler
    assert np.isfinite(image).all() and np.abs(image - base_image).max() > 1e-2


def test_lightning_unet_file(tiny: TinyModelSet, pipe: Any, base_image: np.ndarray) -> None:
    from diffusers import UNet2DConditionModel

    metadata, keys = _header(tiny.lightning_unet)
    assert metadata is None
    state = load_file(tiny.lightning_unet)
    assert {t.dtype for t in state.values()} == {torch.float16}
    unet = UNet2DConditionModel.from_config(pipe.unet.config)
    unet.load_state_dict(state, strict=True)
    base_state = pipe.unet.state_dict()
    assert sorted(keys) == sorted(base_state)
    assert not all(torch.equal(state[k], base_state[k].half()) for k in keys)
    base_unet = pipe.unet
    try:
        pipe.unet = unet
        image = _generate(pipe, guidance=0.0)
    finally:
        pipe.unet = base_unet
    assert np.isfinite(image).all() and np.abs(image - _generate(pipe, guidance=0.0)).max() > 1e-2
    assert np.array_equal(_generate(pipe), base_image)


# ---------------------------------------------------------------------------------------------
# LoRAs


def _lora_modules(path: Path) -> set[str]:
    _, keys = _header(path)
    return {k.split(".")[0] for k in keys}


@pytest.mark.parametrize("which", ["lightning_lora", "lcm_lora"])
def test_lora_file_layout(tiny: TinyModelSet, pipe: Any, which: str) -> None:
    path: Path = getattr(tiny, which)
    metadata, keys = _header(path)
    assert metadata == ({"format": "pt"} if which == "lcm_lora" else None)
    state = load_file(path)
    assert all(k.startswith("lora_unet_") for k in keys)
    assert {t.dtype for t in state.values()} == {torch.float16}

    modules = dict(pipe.unet.named_modules())
    targets = {kohya_key(name): module for name, module in modules.items() if name.endswith(TARGET_SUFFIXES)}
    # Every targeted module of the UNet, and nothing else (no conv_in, conv_out, text encoders).
    assert _lora_modules(path) == set(targets)
    for example in (
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0",
        "lora_unet_down_blocks_0_resnets_0_conv1",
        "lora_unet_down_blocks_0_resnets_0_time_emb_proj",
        "lora_unet_down_blocks_0_downsamplers_0_conv",
        "lora_unet_down_blocks_1_resnets_0_conv_shortcut",
        "lora_unet_up_blocks_0_upsamplers_0_conv",
        "lora_unet_mid_block_attentions_0_transformer_blocks_1_ff_net_0_proj",
        "lora_unet_up_blocks_1_attentions_2_proj_out",
    ):
        assert example in targets
    for key, module in targets.items():
        down, up = state[f"{key}.lora_down.weight"], state[f"{key}.lora_up.weight"]
        alpha = state[f"{key}.alpha"]
        assert alpha.dim() == 0 and float(alpha) == SPEC.lora_alpha != SPEC.lora_rank
        assert float(up.float().abs().max()) > 0
        weight = module.weight
        if isinstance(module, torch.nn.Conv2d):
            assert tuple(down.shape) == (SPEC.lora_rank, *weight.shape[1:])
            assert tuple(up.shape) == (weight.shape[0], SPEC.lora_rank, 1, 1)
        else:
            assert tuple(down.shape) == (SPEC.lora_rank, weight.shape[1])
            assert tuple(up.shape) == (weight.shape[0], SPEC.lora_rank)


def test_the_two_loras_differ(tiny: TinyModelSet) -> None:
    a, b = load_file(tiny.lightning_lora), load_file(tiny.lcm_lora)
    assert a.keys() == b.keys()
    ups = [k for k in a if k.endswith("lora_up.weight")]
    assert ups and not any(torch.equal(a[k], b[k]) for k in ups)


@pytest.mark.parametrize("which", ["lightning_lora", "lcm_lora"])
def test_lora_loads_on_every_module_and_changes_the_image(
    tiny: TinyModelSet, pipe: Any, base_image: np.ndarray, which: str
) -> None:
    from peft.tuners.tuners_utils import BaseTunerLayer

    path: Path = getattr(tiny, which)
    pipe.load_lora_weights(str(path), adapter_name="x")
    try:
        layers = [m for m in pipe.unet.modules() if isinstance(m, BaseTunerLayer) and "x" in m.lora_A]
        assert len(layers) == len(_lora_modules(path))
        assert {m.scaling["x"] for m in layers} == {SPEC.lora_alpha / SPEC.lora_rank}
        assert not any(isinstance(m, BaseTunerLayer) for m in pipe.text_encoder.modules())
        image = _generate(pipe)
        assert np.isfinite(image).all() and np.abs(image - base_image).max() > 1e-2
    finally:
        pipe.delete_adapters("x")
    assert np.allclose(_generate(pipe), base_image, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Building


def test_same_seed_gives_byte_identical_files(tiny: TinyModelSet, tmp_path: Path) -> None:
    again = build_tiny_model_set(tmp_path / "again")
    assert _tree_hashes(again.root) == _tree_hashes(tiny.root)


def test_existing_set_is_reused_and_mismatches_refused(tiny: TinyModelSet, tmp_path: Path) -> None:
    marker = tiny.root / MARKER_NAME
    before = marker.stat().st_mtime_ns
    assert build_tiny_model_set(tiny.root) == tiny
    assert marker.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="other settings"):
        build_tiny_model_set(tiny.root, seed=1)
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "file.txt").write_text("not a model set", encoding="utf-8")
    with pytest.raises(FileExistsError):
        build_tiny_model_set(stray)
    assert [p.name for p in tmp_path.iterdir()] == ["stray"]


def test_names_and_kohya_key() -> None:
    assert lightning_unet_name(1) == "sdxl_lightning_1step_unet_x0.safetensors"
    assert lightning_unet_name(8) == "sdxl_lightning_8step_unet.safetensors"
    assert lightning_lora_name(2) == "sdxl_lightning_2step_lora.safetensors"
    with pytest.raises(ValueError):
        lightning_unet_name(3)
    assert (
        kohya_key("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0")
        == "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0"
    )
