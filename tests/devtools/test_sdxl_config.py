"""The shipped SDXL config folder is the hub's, byte for byte, and its tokenizers give CLIP's ids."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from devtools.sdxl_config import (
    BPE_FILE_NAME,
    SDXL_BASE_REVISION,
    build_sdxl_config_files,
    bytes_to_unicode,
    clip_merges,
    clip_vocab,
    main,
    sdxl_config_dir,
    write_sdxl_config,
)
from devtools.tiny_model import DEFAULT_SPEC, unet_config, vae_config

# Size and SHA-256 of each file of stabilityai/stable-diffusion-xl-base-1.0 at SDXL_BASE_REVISION, as two
# independent public download manifests list them. Written out here so that no builder change can move them.
HUB_FILES: dict[str, tuple[int, str]] = {
    "model_index.json": (609, "6d7b93508390ab91ac5bfbe4aeb4dc2d83f7bb1b05fb069d714b5b0c75f70d44"),
    "scheduler/scheduler_config.json": (
        479,
        "af3e45a949aff8b8341ab8b811429ec03fee857a700a1d9477363e4fff9666e2",
    ),
    "text_encoder/config.json": (565, "39b8b2e4b1949e36969caa425b6c81c68bace99198dd9078ce05d16ad401fe7f"),
    "text_encoder_2/config.json": (575, "a892d1c3a69a7e9247a24de2bc1d5891e3109a54696e53be20093af671072c34"),
    "tokenizer/merges.txt": (524619, "9fd691f7c8039210e0fced15865466c65820d09b63988b0174bfe25de299051a"),
    "tokenizer/special_tokens_map.json": (
        472,
        "c4864a9376a8401918425bed71fc14fc0e81f9b59ec45c1cf96cccb2df508eac",
    ),
    "tokenizer/tokenizer_config.json": (
        737,
        "19d7b034cb0cc3ce9766c2231373ab8aa8991fc72e2c8f76558bfaae3de0d563",
    ),
    "tokenizer/vocab.json": (1059962, "e089ad92ba36837a0d31433e555c8f45fe601ab5c221d4f607ded32d9f7a4349"),
    "tokenizer_2/merges.txt": (524619, "9fd691f7c8039210e0fced15865466c65820d09b63988b0174bfe25de299051a"),
    "tokenizer_2/special_tokens_map.json": (
        460,
        "f118ab3a983206e4f32583448de6bd6aae4ee21869135cef1f5848a753cdaab6",
    ),
    "tokenizer_2/tokenizer_config.json": (
        725,
        "c9d23941f76a41cbd50eda9290f57be7828f0a7a677939e9ef181f7e12bd1bdf",
    ),
    "tokenizer_2/vocab.json": (1059962, "e089ad92ba36837a0d31433e555c8f45fe601ab5c221d4f607ded32d9f7a4349"),
    "unet/config.json": (1680, "30ebc70750223e59006f7f2b4e1e6c102570aa19a9c4ae3e1fbe7591332dbae6"),
    "vae/config.json": (642, "0b331c8ac22ded5f9997a144a575c1d113d6169aff262c353f39015bd24a6264"),
}

# Token ids between BOS and EOS from open_clip's own SimpleTokenizer (OpenAI's code, run on the same BPE
# file): an oracle independent of transformers.
KNOWN_IDS: dict[str, list[int]] = {
    "a photo of a cat": [320, 1125, 539, 320, 2368],
    "an astronaut riding a horse on mars, highly detailed, 8k": (
        [550, 18376, 6765, 320, 4558, 525, 7496, 267, 5302, 12609, 267, 279, 330]
    ),
    "portrait of an old woman, oil painting by Rembrandt": (
        [5352, 539, 550, 896, 2308, 267, 2870, 3086, 638, 45972]
    ),
    "cyberpunk city at night, neon lights, rain": [36896, 1305, 536, 930, 267, 13919, 3073, 267, 2443],
    "café naïve résumé": [15304, 1097, 35689, 563, 29106, 7054, 4166],
    "emoji 🐱 and 🚀": [16327, 22979, 537, 13542],
    # "jekyll" is the result of the last merge used, id 49405.
    "jekyll and hyde": [49405, 537, 16343],
    "日本語のテキスト": [39121, 44353, 34002, 252, 21575, 2429, 228, 47121, 32421, 486],
}
# The issue's own example, whole.
CAT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]

BOS_ID, EOS_ID = 49406, 49407


@pytest.fixture(scope="module")
def folder() -> Path:
    return sdxl_config_dir()


def _json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _bpe_gz_from(folder: Path, path: Path) -> Path:
    """A stand-in for open_clip's BPE file, rebuilt from the shipped merges: header line, then merges."""
    merges = (folder / "tokenizer" / "merges.txt").read_text(encoding="utf-8").splitlines()[1:]
    # The real file goes on with merges CLIP never uses; the builder must stop at 48,894.
    text = "bpe_simple_vocab_16e6.txt#version: 0.2\n" + "\n".join([*merges, "un used", "never used"]) + "\n"
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    return path


# ---------------------------------------------------------------------------------------------
# The files


def test_every_file_is_the_hub_file(folder: Path) -> None:
    assert folder.is_dir() and folder.name == "sdxl-base-config"
    files = _files(folder)
    assert set(files) == set(HUB_FILES), "no weights, nothing missing, nothing extra"
    for name, data in files.items():
        size, sha256 = HUB_FILES[name]
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, sha256), name
    assert len(SDXL_BASE_REVISION) == 40


def test_builder_regenerates_the_folder_from_the_bpe_file(folder: Path, tmp_path: Path) -> None:
    gz = _bpe_gz_from(folder, tmp_path / BPE_FILE_NAME)
    out = write_sdxl_config(tmp_path / "out", gz)
    assert _files(out) == _files(folder)
    # Regenerating replaces the folder, leaving nothing beside it.
    write_sdxl_config(out, gz)
    assert _files(out) == _files(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([BPE_FILE_NAME, "out"])


def test_command_line_takes_an_open_clip_wheel(folder: Path, tmp_path: Path) -> None:
    gz = _bpe_gz_from(folder, tmp_path / BPE_FILE_NAME)
    wheel = tmp_path / "open_clip_torch-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(gz, f"open_clip/{BPE_FILE_NAME}")
    assert main(["--bpe", str(wheel), "--out", str(tmp_path / "cli")]) == 0
    assert _files(tmp_path / "cli") == _files(folder)
    (tmp_path / "empty.whl").write_bytes(b"not a zip")
    assert main(["--bpe", str(tmp_path / "empty.whl"), "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


def test_a_wrong_bpe_file_is_refused() -> None:
    with pytest.raises(ValueError, match="not CLIP's BPE file"):
        clip_merges("header\na b\nc d\n")
    with pytest.raises(ValueError, match="not CLIP's BPE file"):
        build_sdxl_config_files("header\n" + "abc\n" * 48894)


# ---------------------------------------------------------------------------------------------
# The vocabulary


def test_vocabulary_is_clips(folder: Path) -> None:
    vocab: dict[str, int] = _json(folder / "tokenizer" / "vocab.json")
    merges = (folder / "tokenizer" / "merges.txt").read_text(encoding="utf-8").split("\n")
    assert merges[0] == "#version: 0.2" and merges[-1] == ""
    merges = merges[1:-1]
    assert len(merges) == 48894 and len(vocab) == 49408
    assert sorted(vocab.values()) == list(range(49408))
    by_id = {i: token for token, i in vocab.items()}
    symbols = list(bytes_to_unicode().values())
    assert [by_id[i] for i in range(256)] == symbols
    assert [by_id[i] for i in range(256, 512)] == [s + "</w>" for s in symbols]
    assert [by_id[512 + n] for n in range(len(merges))] == [m.replace(" ", "") for m in merges]
    assert (by_id[BOS_ID], by_id[EOS_ID]) == ("<|startoftext|>", "<|endoftext|>")
    assert by_id[0] == "!" and by_id[256] == "!</w>"
    assert clip_vocab(merges) == vocab


def test_tokenizers_give_clips_ids(folder: Path) -> None:
    from transformers import CLIPTokenizer

    for name in ("tokenizer", "tokenizer_2"):
        tokenizer = CLIPTokenizer.from_pretrained(folder / name, local_files_only=True)
        assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (BOS_ID, EOS_ID)
        assert len(tokenizer) == 49408 and tokenizer.model_max_length == 77
        assert tokenizer("a photo of a cat").input_ids == CAT_IDS
        for text, ids in KNOWN_IDS.items():
            assert tokenizer(text).input_ids == [BOS_ID, *ids, EOS_ID], (name, text)


def test_padding_tokens_differ_as_in_sdxl(folder: Path) -> None:
    from transformers import CLIPTokenizer

    first = CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
    second = CLIPTokenizer.from_pretrained(folder / "tokenizer_2", local_files_only=True)
    cat = CAT_IDS
    padded = first("a photo of a cat", padding="max_length", max_length=77).input_ids
    assert padded == cat + [EOS_ID] * (77 - len(cat))
    padded = second("a photo of a cat", padding="max_length", max_length=77).input_ids
    assert padded == cat + [0] * (77 - len(cat))
    assert (first.pad_token, first.pad_token_id, second.pad_token, second.pad_token_id) == (
        "<|endoftext|>",
        EOS_ID,
        "!",
        0,
    )
    # The real SDXL quirk: "!" is the second tokenizer's pad token, so transformers makes it a special
    # token there and a prompt's "!" becomes id 0 in one encoder and 256 ("!</w>") in the other.
    assert first("wow!").input_ids == [BOS_ID, 2781, 256, EOS_ID]
    assert second("wow!").input_ids == [BOS_ID, 2781, 0, EOS_ID]


# ---------------------------------------------------------------------------------------------
# The configs


def test_configs_say_what_formats_md_says(folder: Path) -> None:
    index = _json(folder / "model_index.json")
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    assert index["force_zeros_for_empty_prompt"] is True
    assert index["scheduler"] == ["diffusers", "EulerDiscreteScheduler"]
    assert index["text_encoder"] == ["transformers", "CLIPTextModel"]
    assert index["text_encoder_2"] == ["transformers", "CLIPTextModelWithProjection"]
    assert index["tokenizer"] == index["tokenizer_2"] == ["transformers", "CLIPTokenizer"]
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert index["vae"] == ["diffusers", "AutoencoderKL"]
    assert "feature_extractor" not in index and "image_encoder" not in index

    unet = _json(folder / "unet" / "config.json")
    expected_unet = {
        "sample_size": 128,
        "layers_per_block": 2,
        "block_out_channels": [320, 640, 1280],
        "attention_head_dim": [5, 10, 20],
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "transformer_layers_per_block": [1, 2, 10],
        "cross_attention_dim": 2048,
        "use_linear_projection": True,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": 256,
        "projection_class_embeddings_input_dim": 2816,
        "time_cond_proj_dim": None,
    }
    assert {k: unet[k] for k in expected_unet} == expected_unet
    assert unet["projection_class_embeddings_input_dim"] == 1280 + 6 * unet["addition_time_embed_dim"]

    te1 = _json(folder / "text_encoder" / "config.json")
    te2 = _json(folder / "text_encoder_2" / "config.json")
    assert (te1["hidden_size"], te1["num_hidden_layers"], te1["hidden_act"]) == (768, 12, "quick_gelu")
    assert (te2["hidden_size"], te2["num_hidden_layers"], te2["hidden_act"]) == (1280, 32, "gelu")
    assert te2["projection_dim"] == 1280 and te1["hidden_size"] + te2["hidden_size"] == 2048
    for te in (te1, te2):
        assert (te["vocab_size"], te["max_position_embeddings"]) == (49408, 77)
        assert te["torch_dtype"] == "float16" and "dtype" not in te

    vae = _json(folder / "vae" / "config.json")
    assert vae["block_out_channels"] == [128, 256, 512, 512]
    assert vae["scaling_factor"] == 0.13025 and vae["force_upcast"] is True
    scheduler = _json(folder / "scheduler" / "scheduler_config.json")
    assert scheduler["_class_name"] == "EulerDiscreteScheduler"
    assert scheduler["timestep_spacing"] == "leading" and scheduler["prediction_type"] == "epsilon"


def test_configs_load_in_the_stack(folder: Path) -> None:
    from accelerate import init_empty_weights
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig

    assert StableDiffusionXLPipeline.load_config(folder)["_class_name"] == "StableDiffusionXLPipeline"
    scheduler = EulerDiscreteScheduler.from_pretrained(folder, subfolder="scheduler", local_files_only=True)
    assert scheduler.config.num_train_timesteps == 1000
    assert CLIPTextConfig.from_pretrained(folder / "text_encoder_2").projection_dim == 1280
    # Meta tensors: the real architecture without 10 GB of memory.
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
    assert sum(p.numel() for p in unet.parameters()) == 2_567_463_684
    assert len(unet.state_dict()) == 1680  # the tensor count of the Lightning UNet files


def test_tiny_fixture_configs_follow_the_real_ones(folder: Path) -> None:
    """The tiny set's config writers, given the real sizes, write the real files' JSON."""
    real = dataclasses.replace(
        DEFAULT_SPEC,
        unet_channels=(320, 640, 1280),
        unet_heads=(5, 10, 20),
        unet_transformer_layers=(1, 2, 10),
        vae_channels=(128, 256, 512, 512),
        te1_hidden=768,
        te2_hidden=1280,
        te2_projection=1280,
        addition_time_embed_dim=256,
        image_size=1024,
    )
    assert unet_config(real) == _json(folder / "unet" / "config.json")
    assert vae_config(real) == _json(folder / "vae" / "config.json")


def test_folder_is_found_without_importing_torch() -> None:
    """The GUI side, which never imports torch, can point at the folder."""
    code = "import sys; from devtools.sdxl_config import sdxl_config_dir as d; d(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
