"""The SDXL base config folder that original single-file checkpoints are loaded against, offline.

``StableDiffusionXLPipeline.from_single_file`` needs a diffusers-format folder with the pipeline's
``model_index.json``, each component's config, the scheduler config and both tokenizers (no weights);
without one it looks them up on the Hugging Face hub (docs/model-files.md). Fewstep ships that folder
as ``resources/sdxl-base-config``: every file byte-identical to stabilityai/stable-diffusion-xl-base-1.0 at
revision ``SDXL_BASE_REVISION`` (tests/devtools/test_sdxl_config.py checks each file's SHA-256).

The CLIP BPE vocabulary cannot be downloaded where Fewstep is built. The open-clip-torch package ships the
same BPE (``bpe_simple_vocab_16e6.txt.gz``, OpenAI's file), from which ``vocab.json`` and ``merges.txt`` are
derived exactly as transformers' ``CLIPTokenizer.save_pretrained`` wrote them for SDXL. open-clip-torch is
needed only to regenerate the folder, never at run time::

    pip download --no-deps open-clip-torch -d /tmp/oc
    python -m devtools.sdxl_config --bpe /tmp/oc/open_clip_torch-*.whl

``--bpe`` takes the wheel or the ``.gz`` itself; without it, an installed ``open_clip`` package is used.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.files.resources import CONFIG_DIR_NAME, sdxl_config_dir
from engine.outputs.atomic import replaced_folder

__all__ = [
    "BOS",
    "BPE_FILE_NAME",
    "CONFIG_DIR_NAME",
    "EOS",
    "SDXL_BASE_REPO",
    "SDXL_BASE_REVISION",
    "SDXL_MODEL_INDEX",
    "SDXL_SCHEDULER_CONFIG",
    "SDXL_UNET_CONFIG",
    "SDXL_VAE_CONFIG",
    "added_token",
    "build_sdxl_config_files",
    "bytes_to_unicode",
    "clip_merges",
    "clip_vocab",
    "find_open_clip_bpe",
    "json_bytes",
    "main",
    "read_bpe",
    "sdxl_config_dir",
    "special_tokens_map",
    "text_encoder_config",
    "tokenizer_config",
    "write_sdxl_config",
]

SDXL_BASE_REPO = "stabilityai/stable-diffusion-xl-base-1.0"
SDXL_BASE_REVISION = "462165984030d82259a11f4367a4eed129e94a7b"
BPE_FILE_NAME = "bpe_simple_vocab_16e6.txt.gz"

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
# CLIP's SimpleTokenizer reads merges[1 : 49152 - 256 - 2 + 1]: a 49152-entry budget minus the 256 byte
# symbols and the two special tokens (their </w> forms take the other 256 slots of 49408).
_MERGE_COUNT = 49152 - 256 - 2
_VOCAB_SIZE = 49408

# The hub's model_index.json was edited by hand to add "add_watermarker" after the sorted keys had been
# written, so this one file keeps its own key order instead of sort_keys.
SDXL_MODEL_INDEX: dict[str, Any] = {
    "_class_name": "StableDiffusionXLPipeline",
    "_diffusers_version": "0.19.0.dev0",
    "force_zeros_for_empty_prompt": True,
    "add_watermarker": None,
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "tokenizer_2": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}

# The SDXL scheduler config as shipped; the tiny fixtures write the same one.
SDXL_SCHEDULER_CONFIG: dict[str, Any] = {
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

SDXL_UNET_CONFIG: dict[str, Any] = {
    "_class_name": "UNet2DConditionModel",
    "_diffusers_version": "0.19.0.dev0",
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "center_input_sample": False,
    "class_embed_type": None,
    "class_embeddings_concat": False,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "cross_attention_dim": 2048,
    "cross_attention_norm": None,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "dual_cross_attention": False,
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_only_cross_attention": None,
    "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "num_attention_heads": None,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "resnet_out_scale_factor": 1.0,
    "resnet_skip_time_act": False,
    "resnet_time_scale_shift": "default",
    "sample_size": 128,
    "time_cond_proj_dim": None,
    "time_embedding_act_fn": None,
    "time_embedding_dim": None,
    "time_embedding_type": "positional",
    "timestep_post_act": None,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "upcast_attention": None,
    "use_linear_projection": True,
}

SDXL_VAE_CONFIG: dict[str, Any] = {
    "_class_name": "AutoencoderKL",
    "_diffusers_version": "0.20.0.dev0",
    "_name_or_path": "../sdxl-vae/",
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 1024,
    "scaling_factor": 0.13025,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}


def text_encoder_config(*, second: bool) -> dict[str, Any]:
    """CLIP ViT-L/14's text tower, or OpenCLIP ViT-bigG/14's with its projection."""
    hidden = 1280 if second else 768
    return {
        "architectures": ["CLIPTextModelWithProjection" if second else "CLIPTextModel"],
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "dropout": 0.0,
        "eos_token_id": 2,
        "hidden_act": "gelu" if second else "quick_gelu",
        "hidden_size": hidden,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": 4 * hidden,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 77,
        "model_type": "clip_text_model",
        "num_attention_heads": 20 if second else 12,
        "num_hidden_layers": 32 if second else 12,
        "pad_token_id": 1,
        "projection_dim": hidden,
        "torch_dtype": "float16",
        "transformers_version": "4.32.0.dev0",
        "vocab_size": _VOCAB_SIZE,
    }


def added_token(content: str, *, with_type: bool) -> dict[str, Any]:
    token: dict[str, Any] = {"__type": "AddedToken"} if with_type else {}
    token.update(
        {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
    )
    return token


def tokenizer_config(pad: str) -> dict[str, Any]:
    return {
        "add_prefix_space": False,
        "bos_token": added_token(BOS, with_type=True),
        "clean_up_tokenization_spaces": True,
        "do_lower_case": True,
        "eos_token": added_token(EOS, with_type=True),
        "errors": "replace",
        "model_max_length": 77,
        "pad_token": pad,
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": added_token(EOS, with_type=True),
    }


def special_tokens_map(pad: str) -> dict[str, Any]:
    return {
        "bos_token": added_token(BOS, with_type=False),
        "eos_token": added_token(EOS, with_type=False),
        "pad_token": pad,
        "unk_token": added_token(EOS, with_type=False),
    }


def json_bytes(data: Mapping[str, Any], *, sort_keys: bool = True) -> bytes:
    # diffusers' and transformers' save_pretrained: two-space indent, sorted keys, final newline.
    return (json.dumps(data, indent=2, sort_keys=sort_keys) + "\n").encode("utf-8")


# ---------------------------------------------------------------------------------------------
# The CLIP BPE


def read_bpe(source: Path) -> str:
    """The text of CLIP's ``bpe_simple_vocab_16e6.txt.gz``, from the ``.gz`` or an open_clip wheel."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            names = [n for n in wheel.namelist() if n.endswith("/" + BPE_FILE_NAME)]
            if not names:
                raise FileNotFoundError(f"{source} holds no {BPE_FILE_NAME}")
            data = wheel.read(names[0])
    else:
        data = source.read_bytes()
    return gzip.decompress(data).decode("utf-8")


def find_open_clip_bpe() -> Path:
    """The BPE file of an installed open_clip package, found without importing it (it imports torchvision)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "open_clip is not installed: pass --bpe with the open-clip-torch wheel"
            " (pip download --no-deps open-clip-torch) or its bpe_simple_vocab_16e6.txt.gz"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / BPE_FILE_NAME
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"the installed open_clip package has no {BPE_FILE_NAME}")


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's byte-to-symbol table: printable bytes map to themselves, the rest above 255."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    # CLIP's vocabulary order is printable bytes first, then the remapped ones.
    order = printable + [b for b in range(256) if b not in printable]
    return {b: table[b] for b in order}


def clip_merges(bpe_text: str) -> list[str]:
    """The 48,894 merges CLIP uses, in rank order, as ``"left right"`` lines."""
    lines = bpe_text.split("\n")
    # Line 0 is the file's own header ("bpe_simple_vocab_16e6.txt#version: 0.2"), not a merge.
    merges = lines[1 : 1 + _MERGE_COUNT]
    if len(merges) != _MERGE_COUNT or any(len(m.split(" ")) != 2 for m in merges):
        raise ValueError(f"not CLIP's BPE file: expected {_MERGE_COUNT} merges of two symbols after line 1")
    return merges


def clip_vocab(merges: Sequence[str]) -> dict[str, int]:
    """CLIP's token ids: 256 byte symbols, their ``</w>`` forms, one token per merge, then BOS and EOS."""
    symbols = list(bytes_to_unicode().values())
    tokens = [*symbols, *(s + "</w>" for s in symbols), *(m.replace(" ", "") for m in merges), BOS, EOS]
    vocab = {token: i for i, token in enumerate(tokens)}
    if len(vocab) != _VOCAB_SIZE or len(tokens) != _VOCAB_SIZE:
        raise ValueError(f"CLIP vocabulary has {len(vocab)} distinct tokens, expected {_VOCAB_SIZE}")
    return vocab


def _vocab_bytes(vocab: Mapping[str, int]) -> bytes:
    # CLIPTokenizer.save_vocabulary's format; sorted by token text, not by id.
    return (json.dumps(dict(vocab), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _merges_bytes(merges: Sequence[str]) -> bytes:
    return ("#version: 0.2\n" + "".join(m + "\n" for m in merges)).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# The folder


def build_sdxl_config_files(bpe_text: str) -> dict[str, bytes]:
    """Every file of the folder, by relative POSIX path, with the hub's exact bytes."""
    merges = clip_merges(bpe_text)
    vocab_bytes = _vocab_bytes(clip_vocab(merges))
    merges_bytes = _merges_bytes(merges)
    files = {
        "model_index.json": json_bytes(SDXL_MODEL_INDEX, sort_keys=False),
        "scheduler/scheduler_config.json": json_bytes(SDXL_SCHEDULER_CONFIG),
        "text_encoder/config.json": json_bytes(text_encoder_config(second=False)),
        "text_encoder_2/config.json": json_bytes(text_encoder_config(second=True)),
        "unet/config.json": json_bytes(SDXL_UNET_CONFIG),
        "vae/config.json": json_bytes(SDXL_VAE_CONFIG),
    }
    # SDXL's first tokenizer pads with EOS like CLIP ViT-L; the second pads with "!" (id 0) like OpenCLIP.
    for folder, pad in (("tokenizer", EOS), ("tokenizer_2", "!")):
        files[f"{folder}/vocab.json"] = vocab_bytes
        files[f"{folder}/merges.txt"] = merges_bytes
        files[f"{folder}/special_tokens_map.json"] = json_bytes(special_tokens_map(pad))
        files[f"{folder}/tokenizer_config.json"] = json_bytes(tokenizer_config(pad))
    return files


def write_sdxl_config(dest: Path, bpe_source: Path) -> Path:
    """Write the folder to ``dest`` (replacing it) from CLIP's BPE file or an open_clip wheel."""
    files = build_sdxl_config_files(read_bpe(bpe_source))
    dest = dest.absolute()
    with replaced_folder(dest) as tmp:
        for relative, data in files.items():
            path = tmp.joinpath(*relative.split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.sdxl_config",
        description=f"Regenerate resources/{CONFIG_DIR_NAME} ({SDXL_BASE_REPO} configs and tokenizers).",
    )
    parser.add_argument(
        "--bpe",
        type=Path,
        help=f"{BPE_FILE_NAME} or an open-clip-torch wheel; default: the installed open_clip package",
    )
    parser.add_argument("--out", type=Path, default=sdxl_config_dir(), help="default: %(default)s")
    args = parser.parse_args(argv)
    try:
        source = args.bpe if args.bpe is not None else find_open_clip_bpe()
        dest = write_sdxl_config(args.out, source)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
