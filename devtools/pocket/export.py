"""Write the pocket model's files in exactly the layouts of their real counterparts (docs/model-files.md).

    python -m devtools.pocket.export --work .pocket-work --out resources/pocket

    python -m devtools.pocket.export --work .pocket-work --out resources/pocket --add

``--add`` writes only the TCD and PCM LoRAs into the folder already there (they are distilled from the
shipped base folder itself, ``train.distill --base resources/pocket/base``) and records them in its
marker.

Takes the newest checkpoint of each recipe found under ``--work`` (EMA weights where a recipe keeps
them) and writes, fp16 only:

- ``base/``: a diffusers SDXL folder like stabilityai/stable-diffusion-xl-base-1.0 (model_index.json,
  scheduler, both tokenizers, both text encoders with ``text_model.`` keys, UNet, VAE), JSON as the
  real 2023 files have it;
- ``lcm-unet/``: a UNet folder like latent-consistency/lcm-sdxl (``time_cond_proj_dim`` set);
- ``lcm-lora/pytorch_lora_weights.safetensors``: kohya keys, alpha tensors, metadata ``format: pt``;
- ``sdxl_lightning_{4,2}step_unet.safetensors``: bare UNet state dicts, no metadata;
- ``sdxl_lightning_{4,2}step_lora.safetensors``: kohya LoRAs, no metadata;
- ``tcd-lora/pytorch_lora_weights.safetensors``: kohya keys, alpha tensors, metadata ``format: pt``
  (h1t/TCD-SDXL-LoRA's layout, the LCM-LoRA's);
- ``pcm_sdxl_smallcfg_4step_converted.safetensors``: kohya keys, alpha tensors, no metadata
  (wangfuyun/PCM_Weights' "_converted" files);
- ``pocket_model.json``: what was trained how long, for the application and the docs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from devtools.pocket.spec import POCKET_SPEC, pocket_unet_config, pocket_vae_config
from devtools.pocket.text import text_config, write_tokenizers
from devtools.tiny_model import model_index, scheduler_config, write_json
from engine.outputs.atomic import replaced_folder
from engine.pocket.model import (
    BASE_DIR,
    LCM_DIR,
    LCM_LORA_FILE,
    MARKER,
    PCM_LORA_FILE,
    TCD_LORA_FILE,
    lightning_lora_file,
    lightning_unet_file,
)

_ST_METADATA = {"format": "pt"}


def fp16(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {
        k: (v.detach().to(torch.float16) if v.is_floating_point() else v.detach()).contiguous()
        for k, v in state.items()
    }


def with_prefix(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """transformers 5 saves CLIPTextModel without ``text_model.``; the real files have it."""
    return {k if k.startswith(prefix) else prefix + k: v for k, v in state.items()}


def write_base(
    dest: Path,
    *,
    unet: Mapping[str, torch.Tensor],
    te1: Mapping[str, torch.Tensor],
    te2: Mapping[str, torch.Tensor],
    vae: Mapping[str, torch.Tensor],
    scaling_factor: float,
) -> None:
    dest.mkdir(parents=True)
    write_json(dest / "model_index.json", model_index())
    (dest / "scheduler").mkdir()
    write_json(dest / "scheduler" / "scheduler_config.json", scheduler_config())
    write_tokenizers(dest)
    for folder, state, second in (("text_encoder", te1, False), ("text_encoder_2", te2, True)):
        (dest / folder).mkdir()
        write_json(dest / folder / "config.json", text_config(second=second))
        save_file(
            fp16(with_prefix(state, "text_model.") if not second else state),
            dest / folder / "model.fp16.safetensors",
            metadata=_ST_METADATA,
        )
    (dest / "unet").mkdir()
    write_json(dest / "unet" / "config.json", pocket_unet_config())
    save_file(fp16(unet), dest / "unet" / "diffusion_pytorch_model.fp16.safetensors", metadata=_ST_METADATA)
    (dest / "vae").mkdir()
    write_json(dest / "vae" / "config.json", pocket_vae_config(scaling_factor))
    save_file(fp16(vae), dest / "vae" / "diffusion_pytorch_model.fp16.safetensors", metadata=_ST_METADATA)


def write_base_checkpoint(dest: Path, base: Mapping[str, Any], vae: Mapping[str, torch.Tensor]) -> None:
    """The base folder from a ``train.base`` checkpoint (its EMA weights) and a VAE state dict."""
    ema = base["ema"]
    parts = {
        name: {k[len(name) + 1 :]: v for k, v in ema.items() if k.startswith(name + ".")}
        for name in ("unet", "te1", "te2")
    }
    write_base(
        dest,
        unet=parts["unet"],
        te1=parts["te1"],
        te2=parts["te2"],
        vae=vae,
        scaling_factor=base["scaling_factor"],
    )


def shipped_vae(work: Path) -> dict[str, torch.Tensor]:
    """The VAE weights a base folder gets: the decoder fine-tune's where there is one."""
    vae = _load(work / "vae-decoder" / "vae_final.pt") or _load(work / "vae" / "vae_final.pt")
    if vae is None:
        raise FileNotFoundError(f"{work} holds no finished VAE")
    model: dict[str, torch.Tensor] = vae["model"]
    return model


def write_lcm_unet(dest: Path, state: Mapping[str, torch.Tensor]) -> None:
    dest.mkdir(parents=True)
    write_json(
        dest / "config.json", pocket_unet_config(time_cond_proj_dim=POCKET_SPEC.lcm_time_cond_proj_dim)
    )
    save_file(fp16(state), dest / "diffusion_pytorch_model.fp16.safetensors", metadata=_ST_METADATA)


def write_lightning_unet(path: Path, state: Mapping[str, torch.Tensor]) -> None:
    save_file(fp16(state), path)  # ByteDance's files carry no metadata


def write_lora(path: Path, state: Mapping[str, torch.Tensor], *, metadata: Mapping[str, str] | None) -> None:
    """A kohya LoRA (``lora_unet_*`` keys with diffusers module names) in fp16."""
    if not state or not all(k.startswith("lora_unet_") for k in state):
        raise ValueError("a pocket LoRA holds only lora_unet_* keys")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(fp16(state), path, metadata=dict(metadata) if metadata is not None else None)


def _load(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    return state


def selected_weights(state: Mapping[str, Any], key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights to ship from a distillation checkpoint, and what the marker says of them.

    A run that validated itself (train.distill's --validate-minutes) ships the weights that scored
    best on its held-out prompts; otherwise the last ones."""
    info: dict[str, Any] = {"steps": state["step"], "minutes": round(state["elapsed"] / 60, 1)}
    best = state.get("best")
    if best is None:
        return state[key], info
    info["selected"] = {
        "step": best["step"],
        "minutes": round(best["elapsed"] / 60, 1),
        "validation_all": round(best["score"], 4),
    }
    return best["weights"], info


def _stale(work: Path, base_step: int) -> list[str]:
    """Distillation checkpoints made from another base checkpoint than the one exported."""
    found = []
    for path in sorted(work.glob("lcm*/*.pt")) + sorted(work.glob("lightning/*.pt")):
        state = _load(path)
        if state is not None and state.get("base_step") != base_step:
            found.append(f"{path} (base step {state.get('base_step')})")
    return found


def export(work: Path, out: Path, *, allow_stale: bool = False) -> dict[str, Any]:
    """Write every file whose checkpoint exists under ``work`` into ``out`` (replaced whole).

    A distillation (and above all a LoRA, a delta on its base) shipped beside another base than the
    one it was distilled from would be quietly wrong: ValueError unless ``allow_stale``.
    """
    vae = _load(work / "vae" / "vae_final.pt")
    # A decoder fine-tune, when there is one, decodes the same latents better.
    decoder = _load(work / "vae-decoder" / "vae_final.pt")
    base = _load(work / "base" / "base.pt")
    if vae is None or base is None:
        raise FileNotFoundError(f"{work} holds no finished VAE and base checkpoint")
    if (stale := _stale(work, base["step"])) and not allow_stale:
        raise ValueError(
            f"distilled from another base than the one at step {base['step']}: {', '.join(stale)};"
            " run the distillations again (delete their checkpoints first)"
        )
    marker: dict[str, Any] = {
        "format": 1,
        "grammar": "a <size> <color> <shape> on a <color> background[, <position>]",
        "vae": {"steps": vae["step"], "minutes": round(vae["minutes"], 1), "psnr": round(vae["psnr"], 2)},
        "base": {"steps": base["step"], "minutes": round(base["elapsed"] / 60, 1)},
        "files": {},
    }
    if decoder is not None:
        marker["vae_decoder"] = {
            "steps": decoder["step"],
            "minutes": round(decoder["minutes"], 1),
            "psnr": round(decoder["psnr"], 2),
        }
        vae = {**vae, "model": decoder["model"]}
    with replaced_folder(out) as tmp:
        write_base_checkpoint(tmp / BASE_DIR, base, vae["model"])
        marker["files"]["base"] = BASE_DIR
        if (lcm := _load(work / "lcm" / "lcm.pt")) is not None:
            weights, marker["lcm"] = selected_weights(lcm, "ema")
            write_lcm_unet(tmp / LCM_DIR, weights)
            marker["files"]["lcm_unet"] = LCM_DIR
        if (lcm_lora := _load(work / "lcm-lora" / "lora.pt")) is not None:
            weights, marker["lcm_lora"] = selected_weights(lcm_lora, "kohya")
            write_lora(tmp / LCM_LORA_FILE, weights, metadata=_ST_METADATA)
            marker["files"]["lcm_lora"] = LCM_LORA_FILE
        for steps in (4, 2):
            if (unet := _load(work / "lightning" / f"student_{steps}.pt")) is not None:
                write_lightning_unet(tmp / lightning_unet_file(steps), unet["unet"])
                marker["files"][f"lightning_unet_{steps}"] = lightning_unet_file(steps)
                marker[f"lightning_{steps}"] = {
                    "steps": unet["step"],
                    "minutes": round(unet["elapsed"] / 60, 1),
                }
            if (lora := _load(work / "lightning" / f"lora_{steps}.pt")) is not None:
                write_lora(tmp / lightning_lora_file(steps), lora["kohya"], metadata=None)
                marker["files"][f"lightning_lora_{steps}"] = lightning_lora_file(steps)
                marker[f"lightning_lora_{steps}"] = {
                    "steps": lora["step"],
                    "minutes": round(lora["elapsed"] / 60, 1),
                }
        _write_field_loras(work, tmp, marker, base["step"])
        write_json(tmp / MARKER, marker)
    return marker


# (checkpoint under --work, file in the folder, marker key, safetensors metadata as the real file has it)
FIELD_LORAS: tuple[tuple[str, str, str, Mapping[str, str] | None], ...] = (
    ("tcd-lora/tcd_lora.pt", TCD_LORA_FILE, "tcd_lora", _ST_METADATA),
    ("pcm-lora/pcm_lora_4.pt", PCM_LORA_FILE, "pcm_lora", None),
)


def _write_field_loras(work: Path, out: Path, marker: dict[str, Any], base_step: int) -> list[str]:
    """The TCD and PCM LoRAs whose checkpoints exist, written into ``out`` and recorded in ``marker``."""
    written = []
    for checkpoint, file, key, metadata in FIELD_LORAS:
        if (state := _load(work / checkpoint)) is None:
            continue
        if state.get("base_step") != base_step:
            raise ValueError(f"{work / checkpoint} was distilled from base step {state.get('base_step')}")
        weights, marker[key] = selected_weights(state, "kohya")
        write_lora(out / file, weights, metadata=metadata)
        marker["files"][key] = file
        written.append(file)
    return written


def add_field_loras(work: Path, out: Path) -> dict[str, Any]:
    """Write the TCD and PCM LoRAs into the shipped folder ``out`` and update its marker in place."""
    marker: dict[str, Any] = json.loads((out / MARKER).read_text(encoding="utf-8"))
    written = _write_field_loras(work, out, marker, marker["base"]["steps"])
    if not written:
        raise FileNotFoundError(f"{work} holds no TCD or PCM LoRA checkpoint")
    write_json(out / MARKER, marker)
    return marker


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path(".pocket-work"))
    parser.add_argument("--out", type=Path, default=Path("resources/pocket"))
    parser.add_argument("--allow-stale", action="store_true", help="ship distillations of an older base")
    parser.add_argument("--add", action="store_true", help="only add the TCD and PCM LoRAs to --out")
    args = parser.parse_args()
    if args.add:
        marker = add_field_loras(args.work, args.out)
    else:
        marker = export(args.work, args.out, allow_stale=args.allow_stale)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(json.dumps(marker, indent=2))
    print(f"{total / 1e6:.2f} MB in {args.out}")


if __name__ == "__main__":
    main()
