#!/usr/bin/env python3
"""Rebuild every image of this comparison with plain diffusers; Fewstep is not needed.

    python reproduce.py --out DIR [--device cpu] [--dtype float32]

It loads the same model files (paths below; they must still be there), builds each mode's scheduler
from the base model's own scheduler config with the same overrides, and calls diffusers'
StableDiffusionXLPipeline with the same prompt, size, steps, guidance and seed. The pipeline draws
the initial latents from torch.Generator("cpu").manual_seed(seed), as Fewstep does, so every image
starts from the same noise. On the CPU in float32, with Fewstep's number of torch threads (the
default here), the images equal Fewstep's bit for bit: the same files read by the same loading
route sit at the same memory alignment, so CPU kernels sum in the same order. On a GPU in float16
they are not promised to: its kernels may round differently from run to run.

Needs: torch, diffusers, transformers, safetensors, pillow, and peft when a LoRA is used.
A mode it cannot replay is listed with the reason, and the script exits with code 3.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# Written by Fewstep when the comparison was saved: the files, settings and images to rebuild.
RECIPE: dict[str, Any] = json.loads("{}")


def load_base(files: dict[str, Any], dtype: Any, device: str) -> Any:
    """The SDXL base pipeline as Fewstep loads it: a diffusers folder, or one file with a config folder."""
    from diffusers import StableDiffusionXLPipeline

    base = files["base"]
    if base["single_file"]:
        pipe = StableDiffusionXLPipeline.from_single_file(
            base["path"], config=base["config"], local_files_only=True, dtype=dtype
        )
    else:
        pipe = StableDiffusionXLPipeline.from_pretrained(
            base["path"], dtype=dtype, variant=base["variant"], use_safetensors=True, local_files_only=True
        )
    replace_vae(pipe, files, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def replace_vae(pipe: Any, files: dict[str, Any], dtype: Any) -> None:
    """A replacement VAE (--vae), where the run had one: it serves every pipeline, as in Fewstep."""
    from diffusers import AutoencoderKL

    vae = files.get("vae")
    if vae is None:
        return
    if vae["single_file"]:
        pipe.vae = AutoencoderKL.from_single_file(
            vae["path"], config=files["base"]["config"], subfolder="vae", local_files_only=True, dtype=dtype
        )
    else:
        pipe.vae = AutoencoderKL.from_pretrained(
            vae["path"], dtype=dtype, variant=vae["variant"], local_files_only=True
        )


def with_unet(base: Any, unet: Any) -> Any:
    """A pipeline over the base's text encoders, tokenizers and VAE with another UNet."""
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(
        vae=base.vae,
        text_encoder=base.text_encoder,
        text_encoder_2=base.text_encoder_2,
        tokenizer=base.tokenizer,
        tokenizer_2=base.tokenizer_2,
        unet=unet,
        scheduler=base.scheduler,
        force_zeros_for_empty_prompt=base.config.force_zeros_for_empty_prompt,
        add_watermarker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def whole_pipeline(files: dict[str, Any], which: str, dtype: Any, device: str) -> Any:
    """A whole pipeline (SDXL-Turbo) loaded whole, as its card loads it: its own text encoders, VAE and
    scheduler config with its UNet (a single file takes the base's config folder). A replacement VAE
    serves it too, as in Fewstep."""
    from diffusers import AutoPipelineForText2Image, StableDiffusionXLPipeline

    whole = files[which]
    if whole["single_file"]:
        pipe = StableDiffusionXLPipeline.from_single_file(
            whole["path"], config=files["base"]["config"], local_files_only=True, dtype=dtype
        )
    else:
        pipe = AutoPipelineForText2Image.from_pretrained(
            whole["path"], dtype=dtype, variant=whole["variant"], use_safetensors=True, local_files_only=True
        )
    replace_vae(pipe, files, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def distilled_unet(files: dict[str, Any], which: str, base: Any, dtype: Any, device: str) -> Any:
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file

    unet_file = files[which]
    if unet_file.get("folder") or which == "lcm_unet":  # a diffusers UNet folder, as lcm-sdxl
        unet = UNet2DConditionModel.from_pretrained(
            unet_file["path"], dtype=dtype, variant=unet_file["variant"], local_files_only=True
        )
    elif unet_file["single_file"]:  # an all-in-one checkpoint (Lightning's): its UNet only
        unet = UNet2DConditionModel.from_single_file(
            unet_file["path"],
            config=files["base"]["config"],
            subfolder="unet",
            local_files_only=True,
            dtype=dtype,
        )
    else:  # a bare UNet state dict in the base UNet's layout (Lightning, Hyper-SD, DMD2), as the cards load it
        unet = UNet2DConditionModel.from_config(base.unet.config)
        unet.load_state_dict(load_file(unet_file["path"], device="cpu"))
    return unet.to(device=device, dtype=dtype)


def unfreeze(unet: Any) -> None:
    """peft freezes each weight it wraps. The reference UNet keeps requires_grad as a plain pipeline
    has it, as Fewstep does: torch's matmul can round some products differently by that flag."""
    for name, parameter in unet.named_parameters():
        if "lora_" not in name:
            parameter.requires_grad_(True)


def build(key: tuple[str, str, bool, tuple[tuple[str, float], ...], float], dtype: Any, device: str) -> Any:
    """One pipeline per (UNet, distillation LoRA, fused, styles, LoRA scale) combination, each from
    freshly loaded files. A fused LoRA is loaded and fused at its scale as its model card does
    (`fuse_lora(lora_scale=...)`); with styles, its wrappers are then unloaded (the fused weights
    stay), because peft skips every unfused adapter of a layer that holds a fused one. An unfused
    LoRA stays an adapter, weighted by its scale."""
    files = RECIPE["files"]
    unet_kind, adapter, fused, styles, lora_scale = key
    if unet_kind != "base" and files[unet_kind].get("pipeline"):
        return whole_pipeline(files, unet_kind, dtype, device)
    base = load_base(files, dtype, device)
    if unet_kind != "base":
        return with_unet(base, distilled_unet(files, unet_kind, base, dtype, device))
    pipe = base if not adapter else with_unet(base, base.unet)
    names: list[str] = []
    weights: list[float] = []
    if adapter:
        pipe.load_lora_weights(files[adapter], adapter_name=adapter)
        if fused:
            pipe.fuse_lora(lora_scale=lora_scale)
            if styles:
                pipe.unload_lora_weights()
        else:
            names.append(adapter)
            weights.append(lora_scale)
    for style_path, weight in styles:
        name = f"style-{len(names)}"
        pipe.load_lora_weights(style_path, adapter_name=name)
        names.append(name)
        weights.append(weight)
    if styles or (lora_scale != 1.0 and not fused):
        pipe.set_adapters(names, adapter_weights=weights)
        if not adapter:
            unfreeze(pipe.unet)
    return pipe


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the rebuilt images")
    parser.add_argument("--device", default=RECIPE["device"], help=f"default: {RECIPE['device']}")
    parser.add_argument("--dtype", default=RECIPE["dtype"], help=f"default: {RECIPE['dtype']}")
    parser.add_argument(
        "--threads",
        type=int,
        default=RECIPE.get("threads"),
        help=f"torch CPU threads (default: {RECIPE.get('threads')}, as Fewstep ran; others may change the last bit)",
    )
    parser.add_argument("--only", help="rebuild only this mode")
    args = parser.parse_args()

    import diffusers
    import numpy as np
    import torch
    import transformers
    from PIL import Image

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    dtype = getattr(torch, args.dtype)
    if args.threads:
        torch.set_num_threads(args.threads)
    for skipped in RECIPE["cannot_replay"]:
        print(f"cannot replay {skipped['mode']}: {skipped['reason']}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    pipes: dict[Any, Any] = {}
    originals: dict[Any, Any] = {}
    for image in RECIPE["images"]:
        if args.only and image["mode"] != args.only:
            continue
        styles = tuple((path, weight) for path, weight in image["styles"])
        key = (
            image["unet"],
            image["adapter"] or "",
            image.get("lora_route") == "fused",
            styles,
            image.get("lora_scale", 1.0),
        )
        if key not in pipes:
            pipes.clear()  # one pipeline in memory at a time: an SDXL pipeline is 7 GB
            pipes[key] = build(key, dtype, args.device)
            # Kept as loaded: each scheduler is built from the files' own config, never from one an
            # earlier mode changed (trailing spacing would otherwise carry into the next mode).
            originals[key] = pipes[key].scheduler.config
        pipe = pipes[key]
        scheduler_class = getattr(diffusers, image["scheduler"])
        pipe.scheduler = scheduler_class.from_config(originals[key], **image["scheduler_overrides"])
        # A card's explicit timesteps (DMD2's, Align Your Steps') and eta (TCD's), where the mode has them.
        extra = {name: image[name] for name in ("timesteps", "eta") if name in image}
        with torch.inference_mode():
            output = pipe(
                prompt=RECIPE["prompt"],
                negative_prompt=RECIPE["negative_prompt"] or None,
                num_inference_steps=image["steps"],
                guidance_scale=image["guidance"],
                width=RECIPE["width"],
                height=RECIPE["height"],
                generator=torch.Generator("cpu").manual_seed(image["seed"]),
                **extra,
            )
        picture = np.asarray(output.images[0].convert("RGB"), dtype=np.uint8)
        Image.fromarray(picture).save(args.out / image["file"])
        print(f"{image['mode']} seed {image['seed']} -> {args.out / image['file']}")
    return 3 if RECIPE["cannot_replay"] else 0


if __name__ == "__main__":
    sys.exit(main())
