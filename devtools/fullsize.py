"""Random-weight SDXL files at the real sizes, in the real layouts, for the full-size benchmarks.

No real weights can be downloaded where Fewstep is built and tested, so the full-size benchmarks
make their own: every component built from the shipped SDXL configs (the UNet's 2.57 B parameters,
both text encoders, the VAE) with the libraries' default random initialisation, and written as the
artist's files are:

- ``sd_xl_base_1.0.safetensors``: the original (SGM) single file, fp16, 2,515 keys;
- ``lcm-sdxl/``: a diffusers UNet folder with ``time_cond_proj_dim`` 256 and its fp16 weights;
- ``sdxl_lightning_4step_unet.safetensors``: a bare diffusers UNet state dict, fp16;
- ``sdxl_lightning_4step_lora.safetensors`` and ``lcm-lora-sdxl/pytorch_lora_weights.safetensors``:
  kohya LoRAs with diffusers module names, rank 64, fp16.

The distilled UNets are the base UNet plus noise sized to each tensor, so their images differ from
the base's without being garbage of another scale. Weights can be made on a GPU (fast) and are saved
from CPU copies, one component at a time, to keep the peak memory near one UNet plus one file.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from devtools.original_layout import SINGLE_FILE_NAME, diffusers_to_original
from devtools.tiny_model import LORA_TARGETS, kohya_lora_state_dict, lightning_lora_name, lightning_unet_name
from engine.files.resources import sdxl_config_dir

__all__ = [
    "LCM_TIME_COND_PROJ_DIM",
    "LORA_RANK",
    "FullSizeSet",
    "perturbed",
    "random_base_parts",
    "random_module",
    "write_fullsize_set",
]

LCM_TIME_COND_PROJ_DIM = 256
LORA_RANK = 64
LIGHTNING_STEPS = 4
_MARKER = "fullsize_set.json"
_MARKER_FORMAT = 1
_ST_METADATA = {"format": "pt"}
# Relative size of the noise that makes the distilled UNets differ from the base.
_DISTILL_NOISE = 0.1
_LORA_STRENGTH = 0.2

Say = Callable[[str], None]


@dataclass(frozen=True)
class FullSizeSet:
    """Paths of a written full-size set, named after the real files."""

    root: Path
    base: Path  # sd_xl_base_1.0.safetensors, original single-file layout
    lcm_unet: Path  # folder like latent-consistency/lcm-sdxl
    lcm_lora: Path  # like latent-consistency/lcm-lora-sdxl/pytorch_lora_weights.safetensors
    lightning_unet: Path  # sdxl_lightning_4step_unet.safetensors
    lightning_lora: Path  # sdxl_lightning_4step_lora.safetensors

    def files(self) -> tuple[Path, ...]:
        weights = self.lcm_unet / "diffusion_pytorch_model.fp16.safetensors"
        return (self.base, weights, self.lcm_lora, self.lightning_unet, self.lightning_lora)


def _paths(root: Path) -> FullSizeSet:
    return FullSizeSet(
        root=root,
        base=root / SINGLE_FILE_NAME,
        lcm_unet=root / "lcm-sdxl",
        lcm_lora=root / "lcm-lora-sdxl" / "pytorch_lora_weights.safetensors",
        lightning_unet=root / lightning_unet_name(LIGHTNING_STEPS),
        lightning_lora=root / lightning_lora_name(LIGHTNING_STEPS),
    )


@contextlib.contextmanager
def _building_on(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Modules constructed inside are initialised directly on `device` in `dtype`: no fp32 copy
    of 2.6 B parameters on the way (10 GB on a CPU)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            yield
    finally:
        torch.set_default_dtype(previous)


def random_module(
    build: Callable[[], nn.Module], device: torch.device, dtype: torch.dtype, seed: int
) -> nn.Module:
    """`build()` run with the default random initialisation, on `device`, in `dtype`, seeded."""
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(seed)
    with _building_on(device, dtype):
        module = build()
    return module.eval().requires_grad_(False)


def _clip_config(config_dir: Path, folder: str) -> Any:
    from transformers import CLIPTextConfig

    raw = json.loads((config_dir / folder / "config.json").read_text(encoding="utf-8"))
    file_only = ("architectures", "torch_dtype", "dtype", "transformers_version")
    return CLIPTextConfig(**{k: v for k, v in raw.items() if k not in file_only})


def unet_config(config_dir: Path, *, time_cond_proj_dim: int | None = None) -> dict[str, Any]:
    """The UNet config of a base config folder, with LCM's guidance embedding when asked."""
    config = json.loads((config_dir / "unet" / "config.json").read_text(encoding="utf-8"))
    if time_cond_proj_dim is not None:
        config["time_cond_proj_dim"] = time_cond_proj_dim
    return dict(config)


def random_base_parts(
    device: torch.device, dtype: torch.dtype, seed: int = 0, config_dir: Path | None = None
) -> dict[str, nn.Module]:
    """SDXL base's four components with random weights, at the real sizes unless `config_dir` (a
    diffusers base folder's configs, e.g. the tiny set's) says other sizes."""
    configs = config_dir or sdxl_config_dir()
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    vae_config = AutoencoderKL.load_config(configs, subfolder="vae")
    return {
        "unet": random_module(
            lambda: UNet2DConditionModel.from_config(unet_config(configs)), device, dtype, seed + 1
        ),
        "vae": random_module(lambda: AutoencoderKL.from_config(vae_config), device, dtype, seed + 2),
        "text_encoder": random_module(
            lambda: CLIPTextModel(_clip_config(configs, "text_encoder")), device, dtype, seed + 3
        ),
        "text_encoder_2": random_module(
            lambda: CLIPTextModelWithProjection(_clip_config(configs, "text_encoder_2")),
            device,
            dtype,
            seed + 4,
        ),
    }


def perturbed(
    state: Mapping[str, torch.Tensor], seed: int, scale: float = _DISTILL_NOISE
) -> dict[str, torch.Tensor]:
    """Each float tensor plus Gaussian noise sized to its own RMS, made where the tensor lives."""
    out: dict[str, torch.Tensor] = {}
    generators: dict[torch.device, torch.Generator] = {}
    for key, value in state.items():
        if not value.is_floating_point():
            out[key] = value
            continue
        generator = generators.get(value.device)
        if generator is None:
            generator = generators[value.device] = torch.Generator(value.device).manual_seed(seed)
        rms = float(value.float().pow(2).mean().sqrt()) + 1e-3
        noise = torch.randn(value.shape, generator=generator, device=value.device, dtype=torch.float32)
        out[key] = (value.float() + scale * rms * noise).to(value.dtype)
    return out


def _save(state: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str] | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu = {
        k: v.detach().to("cpu", torch.float16 if v.is_floating_point() else v.dtype).contiguous()
        for k, v in state.items()
    }
    save_file(cpu, str(path), metadata=dict(metadata) if metadata is not None else None)


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in module.state_dict().items()}


def _marker(seed: int, config_dir: Path) -> dict[str, Any]:
    return {"format": _MARKER_FORMAT, "seed": seed, "unet": unet_config(config_dir)}


def _existing(root: Path, wanted: Mapping[str, Any]) -> bool:
    marker = root / _MARKER
    if not marker.is_file():
        return False
    found = json.loads(marker.read_text(encoding="utf-8"))
    return bool(found == json.loads(json.dumps(wanted)))


def write_fullsize_set(
    root: Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    say: Say | None = None,
    config_dir: Path | None = None,
) -> FullSizeSet:
    """Write (or reuse) the full-size set under `root`; weights made on `device`, files in fp16.

    About 18 GB on disk at the real sizes. `config_dir` (a base folder's configs) makes the same
    set at other sizes: tests and `bench_gpu --tiny` pass the tiny set's, which runs this same code. Written into a temporary sibling folder and renamed into place, so `root`
    never holds half a set.
    """
    tell = say or (lambda _message: None)
    root = Path(root).absolute()
    paths = _paths(root)
    configs = config_dir or sdxl_config_dir()
    wanted = _marker(seed, configs)
    if _existing(root, wanted):
        return paths
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} exists and holds no complete full-size set; remove it first")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        _write(_paths(tmp), seed, torch.device(device), tell, configs)
        (tmp / _MARKER).write_text(json.dumps(wanted), encoding="utf-8")
        if root.exists():
            root.rmdir()
        tmp.rename(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return paths


def _write(paths: FullSizeSet, seed: int, device: torch.device, tell: Say, config_dir: Path) -> None:
    start = time.perf_counter()

    def done(what: str) -> None:
        tell(f"{what} ({time.perf_counter() - start:.0f} s)")

    half = torch.float16
    parts = random_base_parts(device, half, seed * 1009, config_dir)
    done("built the base's four components")
    unet = parts.pop("unet")
    merged = diffusers_to_original(
        _state(unet), _state(parts["vae"]), _state(parts["text_encoder"]), _state(parts["text_encoder_2"])
    )
    del parts
    _save(merged, paths.base, None)
    del merged
    done(f"wrote {paths.base.name}")

    base_state = _state(unet)
    lcm = perturbed(base_state, seed * 1009 + 6)
    # The guidance embedding the LCM distillation adds ([320, 256], no bias).
    generator = torch.Generator(device).manual_seed(seed * 1009 + 5)
    width = int(base_state["conv_in.weight"].shape[0])
    cond = torch.randn((width, LCM_TIME_COND_PROJ_DIM), generator=generator, device=device)
    lcm["time_embedding.cond_proj.weight"] = (cond / LCM_TIME_COND_PROJ_DIM**0.5).to(half)
    paths.lcm_unet.mkdir(parents=True)
    lcm_config = unet_config(config_dir, time_cond_proj_dim=LCM_TIME_COND_PROJ_DIM)
    (paths.lcm_unet / "config.json").write_text(json.dumps(lcm_config, indent=2), encoding="utf-8")
    _save(lcm, paths.lcm_unet / "diffusion_pytorch_model.fp16.safetensors", _ST_METADATA)
    del lcm
    done("wrote the LCM UNet folder")

    _save(perturbed(base_state, seed * 1009 + 7), paths.lightning_unet, None)
    done(f"wrote {paths.lightning_unet.name}")
    del base_state

    for path, salt, metadata in ((paths.lightning_lora, 8, None), (paths.lcm_lora, 9, _ST_METADATA)):
        state = kohya_lora_state_dict(
            unet,
            rank=LORA_RANK,
            alpha=float(LORA_RANK),
            seed=seed * 1009 + salt,
            strength=_LORA_STRENGTH,
            targets=LORA_TARGETS,
        )
        _save(state, path, metadata)
        done(f"wrote {path.name} (rank {LORA_RANK})")
