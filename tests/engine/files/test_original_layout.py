"""The original-layout (SGM) single-file writer follows docs/model-files.md, and diffusers loads its file
offline into exactly the weights of the diffusers folder (their images agree but for memory alignment)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from devtools.original_layout import (
    SINGLE_FILE_NAME,
    TE1_PREFIX,
    TE2_PREFIX,
    UNET_PREFIX,
    VAE_PREFIX,
    diffusers_to_original,
    write_single_file_checkpoint,
    write_single_file_config,
)
from devtools.sdxl_config import sdxl_config_dir
from devtools.tiny_model import DEFAULT_SPEC, TinyModelSet, tiny_vocab_and_merges
from tests.rounding import assert_equal_but_for_alignment, to_grey_levels

SPEC = DEFAULT_SPEC
PREFIXES = (UNET_PREFIX, VAE_PREFIX, TE1_PREFIX + "text_model.", TE2_PREFIX)
COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")


@pytest.fixture(scope="module")
def single_file(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_single_file_checkpoint(tiny_models, tmp_path_factory.mktemp("single") / SINGLE_FILE_NAME)


@pytest.fixture(scope="module")
def config_folder(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_single_file_config(tiny_models, tmp_path_factory.mktemp("config") / "sdxl-config")


def _header(path: Path) -> dict[str, tuple[list[int], str]]:
    with safe_open(str(path), "pt") as handle:
        return {k: (handle.get_slice(k).get_shape(), handle.get_slice(k).get_dtype()) for k in handle.keys()}  # noqa: SIM118


def _folder_states(base: Path, *, fp16: bool) -> list[dict[str, torch.Tensor]]:
    suffix = ".fp16.safetensors" if fp16 else ".safetensors"
    return [
        load_file(base / "unet" / f"diffusion_pytorch_model{suffix}"),
        load_file(base / "vae" / f"diffusion_pytorch_model{suffix}"),
        load_file(base / "text_encoder" / f"model{suffix}"),
        load_file(base / "text_encoder_2" / f"model{suffix}"),
    ]


def _generate(pipe: Any) -> np.ndarray:
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        "a photo of a cat",
        num_inference_steps=2,
        height=SPEC.image_size,
        width=SPEC.image_size,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images
    assert isinstance(images, np.ndarray)
    return images


# ---------------------------------------------------------------------------------------------
# Layout


def test_keys_and_shapes_follow_formats_md(single_file: Path) -> None:
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    header = _header(single_file)
    assert all(k.startswith(PREFIXES) for k in header)
    te2, te1, unet = SPEC.te2_hidden, SPEC.te1_hidden, SPEC.unet_channels
    expected = {
        UNET_PREFIX + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (
            [unet[1], SPEC.cross_attention_dim],
            "F16",
        ),
        UNET_PREFIX + "label_emb.0.0.weight": (
            [4 * unet[0], SPEC.projection_class_embeddings_input_dim],
            "F16",
        ),
        UNET_PREFIX + "input_blocks.0.0.weight": ([unet[0], 4, 3, 3], "F16"),
        UNET_PREFIX + "input_blocks.3.0.op.weight": ([unet[0], unet[0], 3, 3], "F16"),
        UNET_PREFIX + "input_blocks.6.0.op.weight": ([unet[1], unet[1], 3, 3], "F16"),
        UNET_PREFIX + "output_blocks.2.2.conv.weight": ([unet[2], unet[2], 3, 3], "F16"),
        UNET_PREFIX + "output_blocks.5.2.conv.weight": ([unet[1], unet[1], 3, 3], "F16"),
        UNET_PREFIX + "middle_block.1.proj_in.weight": ([unet[2], unet[2]], "F16"),
        UNET_PREFIX + "out.2.weight": ([4, unet[0], 3, 3], "F16"),
        VAE_PREFIX + "decoder.mid.attn_1.q.weight": ([SPEC.vae_channels[-1]] * 2 + [1, 1], "F16"),
        VAE_PREFIX + "encoder.mid.attn_1.proj_out.weight": ([SPEC.vae_channels[-1]] * 2 + [1, 1], "F16"),
        VAE_PREFIX + "decoder.up.3.block.0.norm1.weight": ([SPEC.vae_channels[-1]], "F16"),
        # diffusers' first decoder level is the original's last; the shortcut meets the width change.
        VAE_PREFIX + "decoder.up.1.block.0.nin_shortcut.weight": (
            [SPEC.vae_channels[1], SPEC.vae_channels[2], 1, 1],
            "F16",
        ),
        TE1_PREFIX + "text_model.embeddings.position_ids": ([1, 77], "I64"),
        TE1_PREFIX + "text_model.embeddings.token_embedding.weight": (
            [len(tiny_vocab_and_merges()[0]), te1],
            "F16",
        ),
        TE2_PREFIX + "transformer.resblocks.0.attn.in_proj_weight": ([3 * te2, te2], "F16"),
        TE2_PREFIX + "transformer.resblocks.0.attn.in_proj_bias": ([3 * te2], "F16"),
        TE2_PREFIX + "transformer.resblocks.9.mlp.c_proj.bias": ([te2], "F16"),
        TE2_PREFIX + "text_projection": ([te2, SPEC.te2_projection], "F16"),
        TE2_PREFIX + "positional_embedding": ([77, te2], "F16"),
        TE2_PREFIX + "logit_scale": ([], "F16"),
    }
    assert {k: header.get(k) for k in expected} == {k: (list(s), d) for k, (s, d) in expected.items()}
    # No diffusers or transformers module name survives outside the CLIP-L part, which keeps them (so do
    # the UNet's attention blocks, whose inner names diffusers took over).
    diffusers_names = ("down_blocks", "up_blocks", "mid_block", "resnets", "samplers", "time_embedding")
    for key in header:
        if not key.startswith(TE1_PREFIX):
            assert not any(name in key for name in (*diffusers_names, "encoder.layers", "q_proj")), key
        if key.startswith(VAE_PREFIX):
            assert not any(name in key for name in ("to_q", "to_out", "group_norm", "conv_shortcut")), key
    state = load_file(single_file)
    assert infer_diffusers_model_type(state) == "xl_base"


def test_every_tensor_is_kept_and_nothing_else_added(tiny_models: TinyModelSet, single_file: Path) -> None:
    unet, vae, te1, te2 = _folder_states(tiny_models.base, fp16=True)
    header = _header(single_file)
    counts = {prefix: sum(k.startswith(prefix) for k in header) for prefix in PREFIXES}
    layers = SPEC.te2_layers
    # Three projections become one in_proj per weight and bias; position_ids is added; logit_scale too.
    assert counts == {
        UNET_PREFIX: len(unet),
        VAE_PREFIX: len(vae),
        TE1_PREFIX + "text_model.": len(te1) + 1,
        TE2_PREFIX: len(te2) - 4 * layers + 1,
    }


def test_real_sdxl_names_and_shapes_round_trip_through_diffusers() -> None:
    """The real architecture (meta tensors, from the shipped config) through the writer and back through
    diffusers' own single-file converters gives every diffusers name and shape again."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    folder = sdxl_config_dir()
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
        te1 = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(folder / "text_encoder_2"))
    states: list[Mapping[str, torch.Tensor]] = [m.state_dict() for m in (unet, vae, te1, te2)]
    original = diffusers_to_original(*states)
    shapes = {k: list(v.shape) for k, v in original.items()}
    assert len(original) == 2515
    assert shapes[UNET_PREFIX + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight"] == [640, 2048]
    assert shapes[VAE_PREFIX + "decoder.mid.attn_1.q.weight"] == [512, 512, 1, 1]
    assert shapes[TE1_PREFIX + "text_model.embeddings.position_ids"] == [1, 77]
    assert shapes[TE2_PREFIX + "transformer.resblocks.0.attn.in_proj_weight"] == [3840, 1280]
    assert shapes[TE2_PREFIX + "text_projection"] == [1280, 1280]
    assert TE2_PREFIX + "transformer.resblocks.31.mlp.c_proj.bias" in shapes

    def same(ours: Mapping[str, torch.Tensor], theirs: Mapping[str, torch.Tensor]) -> None:
        assert {k: list(v.shape) for k, v in ours.items()} == {k: list(v.shape) for k, v in theirs.items()}

    same(convert_ldm_unet_checkpoint(original, dict(unet.config)), states[0])
    same(convert_ldm_vae_checkpoint(original, dict(vae.config)), states[1])
    clip_l = convert_ldm_clip_checkpoint(original)
    del clip_l["text_model.embeddings.position_ids"]  # a non-persistent buffer in transformers 5
    same(clip_l, {"text_model." + k: v for k, v in states[2].items()})
    same(convert_open_clip_checkpoint(te2, original, prefix=TE2_PREFIX), states[3])


def test_text_encoder_keys_with_or_without_the_wrapper(tiny_models: TinyModelSet) -> None:
    unet, vae, te1, te2 = _folder_states(tiny_models.base, fp16=True)
    bare = {k.removeprefix("text_model."): v for k, v in te1.items()}
    assert (
        diffusers_to_original(unet, vae, bare, te2).keys()
        == diffusers_to_original(unet, vae, te1, te2).keys()
    )


def test_a_key_without_a_place_is_refused(tiny_models: TinyModelSet) -> None:
    unet, vae, te1, te2 = _folder_states(tiny_models.base, fp16=True)
    # An LCM UNet's guidance embedding has no place in an SDXL base file.
    lcm = {**unet, "time_embedding.cond_proj.weight": torch.zeros(4, 4)}
    with pytest.raises(ValueError, match=r"time_embedding\.cond_proj\.weight"):
        diffusers_to_original(lcm, vae, te1, te2)
    with pytest.raises(ValueError, match="VAE key"):
        diffusers_to_original(unet, {**vae, "encoder.extra.weight": torch.zeros(1)}, te1, te2)
    with pytest.raises(ValueError, match="second text encoder"):
        diffusers_to_original(unet, vae, te1, {**te2, "vision_model.x": torch.zeros(1)})


def test_config_folder_has_no_weights(tiny_models: TinyModelSet, config_folder: Path) -> None:
    files = {p.relative_to(config_folder).as_posix() for p in config_folder.rglob("*") if p.is_file()}
    assert not any(name.endswith(".safetensors") for name in files)
    for name in (
        "model_index.json",
        "scheduler/scheduler_config.json",
        "unet/config.json",
        "vae/config.json",
        "text_encoder/config.json",
        "text_encoder_2/config.json",
    ):
        assert name in files
    for folder in ("tokenizer", "tokenizer_2"):
        for name in ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"):
            assert f"{folder}/{name}" in files
    with pytest.raises(FileExistsError):
        write_single_file_config(tiny_models, config_folder)


# ---------------------------------------------------------------------------------------------
# Loading


def test_single_file_loads_offline_as_the_folder(
    tiny_models: TinyModelSet, single_file: Path, config_folder: Path
) -> None:
    from diffusers import StableDiffusionXLPipeline

    from_file = StableDiffusionXLPipeline.from_single_file(
        str(single_file), config=str(config_folder), local_files_only=True, dtype=torch.float32
    )
    # The file is fp16: the folder's fp16 variant holds the same numbers.
    from_folder = StableDiffusionXLPipeline.from_pretrained(
        tiny_models.base, variant="fp16", local_files_only=True, dtype=torch.float32
    )
    for name in COMPONENTS:
        ours = getattr(from_file, name).state_dict()
        theirs = getattr(from_folder, name).state_dict()
        assert ours.keys() == theirs.keys(), name
        for key, value in theirs.items():
            assert ours[key].dtype == value.dtype == torch.float32 or not value.is_floating_point()
            assert torch.equal(ours[key], value), f"{name}.{key}"
    assert dict(from_file.scheduler.config) == dict(from_folder.scheduler.config)
    assert (from_file.tokenizer.pad_token, from_file.tokenizer_2.pad_token) == ("<|endoftext|>", "!")
    # Two load routes: the same numbers at other memory alignments, so the images agree within the
    # bound of tests/rounding.py (one grey level in a few pixels), not bit for bit on every CPU.
    assert_equal_but_for_alignment(
        to_grey_levels(_generate(from_file)), to_grey_levels(_generate(from_folder))
    )


def test_fp32_single_file_holds_the_fp32_weights(tiny_models: TinyModelSet, tmp_path: Path) -> None:
    path = write_single_file_checkpoint(tiny_models, tmp_path / SINGLE_FILE_NAME, dtype=torch.float32)
    written = load_file(path)
    expected = diffusers_to_original(*_folder_states(tiny_models.base, fp16=False))
    assert written.keys() == expected.keys()
    assert all(torch.equal(written[k], v) and written[k].dtype == v.dtype for k, v in expected.items())
    assert [p.name for p in tmp_path.iterdir()] == [SINGLE_FILE_NAME]
