"""Loading the real files: the base pipeline, the distilled UNets and the LoRA adapters."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import init_empty_weights
from safetensors import safe_open

from engine.contract.errors import ModelInputError
from engine.files.model_files import KOHYA_PREFIXES, FileKind, ModelFile
from engine.runtime.libraries import quiet_diffusers
from engine.runtime.tensor_reader import Progress, read_safetensors, release

diffusers = quiet_diffusers()
from diffusers import AutoencoderKL, StableDiffusionXLPipeline, UNet2DConditionModel  # noqa: E402


class SDXLPipeline(StableDiffusionXLPipeline):  # type: ignore[misc]
    """diffusers' SDXL pipeline, with the fp16 upcast done the way diffusers now advises.

    For a VAE whose config says `force_upcast` (SDXL's original one, which overflows in fp16), the
    pipeline casts the VAE to fp32 before every fp16 decode by calling its deprecated upcast_vae(),
    which prints a FutureWarning on the artist's terminal at each run; this does the same cast
    (`vae.to(torch.float32)`, the deprecation notice's own advice) without it. The pipeline casts
    the VAE back after the decode itself. Nothing else differs, so images are unchanged.
    """

    def upcast_vae(self) -> None:
        self.vae.to(dtype=torch.float32)


# Every naming of a LoRA's matrices: kohya (lora_down), PEFT (lora_A), old diffusers (lora.down,
# lora_linear_layer.down) and attention processors (to_q_lora.down).
_LORA_SUFFIX = re.compile(
    r"(\.lora_down|\.lora_up|\.lora_A|\.lora_B|\.lora\.down|\.lora\.up"
    r"|\.lora_linear_layer\.down|\.lora_linear_layer\.up|_lora\.down|_lora\.up)\.weight$|\.alpha$"
)


def variant_for(folder: Path, dtype: torch.dtype) -> str | None:
    """Real repositories ship fp32 and .fp16 weights side by side: take the fp16 ones for fp16 runs,
    and also when they are the only ones (a CPU run then upcasts them)."""
    has_fp16 = any(folder.glob("*.fp16.safetensors"))
    has_full = any(p for p in folder.glob("*.safetensors") if ".fp16." not in p.name)
    if has_fp16 and (dtype == torch.float16 or not has_full):
        return "fp16"
    return None


@contextlib.contextmanager
def _checkpoint_read_by_us(state: dict[str, torch.Tensor]) -> Iterator[None]:
    """Within: diffusers' pipeline-level from_single_file takes this state dict instead of reading
    the file in one call itself (it accepts no dict, unlike the model-level one). Only the engine
    thread loads, so swapping the module's name for the call is safe."""
    import diffusers.loaders.single_file as single_file

    original = single_file.load_single_file_checkpoint

    def given(*_args: Any, **_kwargs: Any) -> dict[str, torch.Tensor]:
        return state

    single_file.load_single_file_checkpoint = given
    try:
        yield
    finally:
        single_file.load_single_file_checkpoint = original


def load_base(
    info: ModelFile,
    device: torch.device,
    dtype: torch.dtype,
    config_dir: Path,
    on_progress: Progress | None = None,
) -> Any:
    """The SDXL base pipeline from a diffusers folder or an original single file, offline.

    A single file needs `config_dir`, a diffusers-layout folder of configs and tokenizers without
    weights (without it from_single_file looks the config up on the Hugging Face hub). Its tensors
    are read one by one in the run's dtype (engine.runtime.tensor_reader), which diffusers then
    adopts as they are.
    """
    try:
        if info.kind is FileKind.SDXL_SINGLE_FILE:
            state = read_safetensors(info.path, dtype=dtype, on_progress=on_progress)
            try:
                with _checkpoint_read_by_us(state):
                    pipe = SDXLPipeline.from_single_file(
                        str(info.path), config=str(config_dir), local_files_only=True, dtype=dtype
                    )
            finally:
                release(state)
        else:
            variant = variant_for(info.path / "unet", dtype)
            # use_safetensors reaches every component, the transformers text encoders included.
            pipe = SDXLPipeline.from_pretrained(
                info.path, dtype=dtype, variant=variant, use_safetensors=True, local_files_only=True
            )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        # diffusers reports a checkpoint of the wrong shapes as "not a valid CLIP model"; say what it means.
        raise ModelInputError(
            f"--base {info.path}: cannot load it as SDXL base ({_first_line(exc)}); is it a complete SDXL checkpoint?"
        ) from None
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_full_unet(
    info: ModelFile,
    option: str,
    base_unet: Any,
    config_dir: Path,
    device: torch.device,
    dtype: torch.dtype,
    on_progress: Progress | None = None,
) -> Any:
    """Any full distilled UNet, by what its file is: a diffusers UNet folder (lcm-sdxl), the UNet of an
    all-in-one checkpoint, or a bare state dict in the base UNet's layout (Lightning, Hyper-SD, DMD2).
    option: how the user gave it, for the error lines."""
    if info.kind in (FileKind.LCM_UNET, FileKind.UNET_FOLDER):
        return load_lcm_unet(info, device, dtype, on_progress, option=option)
    return load_lightning_unet(info, base_unet, config_dir, device, dtype, on_progress, option=option)


@dataclass(frozen=True)
class PipelineParts:
    """A whole pipeline's components as a mode runs them: its UNet, and its text encoders (with their
    tokenizers) and VAE, each the base's own object where it equals the base's bit for bit, else its
    own, loaded once."""

    unet: Any
    text_encoder: Any
    text_encoder_2: Any
    tokenizer: Any
    tokenizer_2: Any
    vae: Any
    force_zeros_for_empty_prompt: bool
    # Its own scheduler config, which its modes' schedulers are built from, as its card's whole
    # pipeline builds them (a single file's is the base's configs').
    scheduler_config: Any
    own_text: bool  # its text encoders differ from the base's: its prompts are encoded with its own
    own_vae: bool  # its VAE differs from the base's: its images are decoded with its own


def load_pipeline(
    info: ModelFile,
    option: str,
    base: Any,
    config_dir: Path,
    device: torch.device,
    dtype: torch.dtype,
    on_progress: Progress | None = None,
    *,
    replacement_vae: bool = False,
) -> PipelineParts:
    """A whole pipeline (SDXL-Turbo: a diffusers folder or one original file), loaded as the base is.
    Its text encoders (the pair) and its VAE are each compared with the base's, tensor by tensor: where
    equal the base's serve it and the copy just read is dropped, so nothing is held twice; where they
    differ its own are kept. replacement_vae: a --vae serves every pipeline, its own VAE is not kept."""
    # A single file takes the base's configs and tokenizers (its text encoders are CLIP's either way).
    config_dir = info.path if info.kind is FileKind.SDXL_FOLDER else config_dir
    try:
        pipe = load_base(info, device, dtype, config_dir, on_progress)
    except ModelInputError as exc:
        raise ModelInputError(str(exc).replace("--base ", f"{option.rstrip('=')} ", 1)) from None
    own_text = not (
        _same_tensors(pipe.text_encoder, base.text_encoder)
        and _same_tensors(pipe.text_encoder_2, base.text_encoder_2)
    )
    own_vae = not replacement_vae and not _same_tensors(pipe.vae, base.vae)
    text = pipe if own_text else base
    return PipelineParts(
        unet=pipe.unet,
        text_encoder=text.text_encoder,
        text_encoder_2=text.text_encoder_2,
        tokenizer=text.tokenizer,
        tokenizer_2=text.tokenizer_2,
        vae=pipe.vae if own_vae else base.vae,
        force_zeros_for_empty_prompt=bool(pipe.config.force_zeros_for_empty_prompt),
        scheduler_config=pipe.scheduler.config,
        own_text=own_text,
        own_vae=own_vae,
    )


def _same_tensors(one: Any, other: Any) -> bool:
    mine, theirs = one.state_dict(), other.state_dict()
    return mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)


def load_lcm_unet(
    info: ModelFile,
    device: torch.device,
    dtype: torch.dtype,
    on_progress: Progress | None = None,
    *,
    option: str = "--lcm-unet",
) -> Any:
    """latent-consistency/lcm-sdxl: a diffusers UNet folder with a guidance embedding.

    Its one weights file is read tensor by tensor (engine.runtime.tensor_reader) into a UNet built
    from its config; a folder of sharded weights goes through diffusers' from_pretrained."""
    variant = variant_for(info.path, dtype)
    weights = info.path / f"diffusion_pytorch_model{'.' + variant if variant else ''}.safetensors"
    try:
        if not weights.is_file():
            unet = UNet2DConditionModel.from_pretrained(
                info.path,
                dtype=dtype,
                variant=variant,
                use_safetensors=True,  # never a pickled .bin beside it: unpickling runs code
                local_files_only=True,
            )
            return unet.to(device)
        state = read_safetensors(weights, dtype=dtype, on_progress=on_progress)
        try:
            with init_empty_weights():
                unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(info.path))
            unet.load_state_dict(state, strict=True, assign=True)
        finally:
            release(state)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelInputError(f"{option} {info.path}: cannot load this UNet ({_first_line(exc)})") from None
    return unet.eval().to(device=device, dtype=dtype)


def load_lightning_unet(
    info: ModelFile,
    base_unet: Any,
    config_dir: Path,
    device: torch.device,
    dtype: torch.dtype,
    on_progress: Progress | None = None,
    *,
    option: str = "--lightning-unet",
) -> Any:
    """A bare UNet state dict (Lightning's, Hyper-SD's, DMD2's), which must fit the base UNet exactly,
    or the UNet of an all-in-one checkpoint in the original single-file layout."""
    option = f"{option} {info.path}"
    if info.kind is FileKind.LIGHTNING_CHECKPOINT:
        try:
            unet = UNet2DConditionModel.from_single_file(
                str(info.path), config=str(config_dir), subfolder="unet", local_files_only=True, dtype=dtype
            )
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise ModelInputError(f"{option}: cannot read its UNet ({_first_line(exc)})") from None
        return unet.to(device)
    try:
        state = read_safetensors(info.path, dtype=dtype, on_progress=on_progress)
    except (OSError, ValueError) as exc:
        raise ModelInputError(f"{option}: cannot read it ({_first_line(exc)})") from None
    # Meta tensors first: a random initialisation of a 2.6 B-parameter UNet only to overwrite it
    # would cost seconds and a second copy in RAM.
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(base_unet.config)
    try:
        unet.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelInputError(
            f"{option}: its tensors do not fit the base model's UNet ({_first_line(exc)})"
        ) from None
    finally:
        release(state)
    return unet.to(device=device, dtype=dtype)


def load_vae(info: ModelFile, config_dir: Path, device: torch.device, dtype: torch.dtype) -> Any:
    """A replacement VAE (e.g. madebyollin/sdxl-vae-fp16-fix): a diffusers folder or one file."""
    try:
        if info.kind is FileKind.VAE_FOLDER:
            vae = AutoencoderKL.from_pretrained(
                info.path,
                dtype=dtype,
                variant=variant_for(info.path, dtype),
                use_safetensors=True,  # never a pickled .bin beside it: unpickling runs code
                local_files_only=True,
            )
        else:
            vae = AutoencoderKL.from_single_file(
                str(info.path), config=str(config_dir), subfolder="vae", local_files_only=True, dtype=dtype
            )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelInputError(f"--vae {info.path}: cannot load this VAE ({_first_line(exc)})") from None
    return vae.to(device)


def share_weights(unet: Any) -> Any:
    """A second UNet object over the same weight tensors: adapters injected into it leave the
    original untouched (its modules, its requires_grad flags), at no cost in memory."""
    with init_empty_weights():
        twin = UNet2DConditionModel.from_config(unet.config)
    # state_dict() gives detached views of the same storage; assign=True adopts them as they are.
    twin.load_state_dict(unet.state_dict(), strict=True, assign=True)
    return twin.eval()


def lora_module_names(state_dict_keys: list[str]) -> set[str]:
    """The modules a LoRA file patches, as written in the file."""
    return {_LORA_SUFFIX.sub("", key) for key in state_dict_keys if _LORA_SUFFIX.search(key)}


def read_lora_state(path: Path) -> dict[str, torch.Tensor]:
    """A LoRA file's tensors, non-kohya UNet keys renamed to PEFT's lora_A/lora_B.

    diffusers renames a UNet LoRA to PEFT names only when its first key lacks lora_A, so a file with
    both namings (what convert_state_dict_to_diffusers(get_peft_model_state_dict(...)) writes) would
    lose its attention LoRAs; renaming every key here makes the order irrelevant.
    """
    state = read_safetensors(path)
    if all(k.startswith(KOHYA_PREFIXES) for k in state):
        return state
    from diffusers.utils.state_dict_utils import convert_unet_state_dict_to_peft

    unet = {k: v for k, v in state.items() if k.startswith("unet.")}
    rest = {k: v for k, v in state.items() if not k.startswith("unet.")}
    renamed: dict[str, torch.Tensor] = convert_unet_state_dict_to_peft(unet)
    return {**renamed, **rest}


def apply_adapter_metadata(pipe: Any, path: Path, adapter_name: str) -> None:
    """Give each component the lora_alpha of the file's diffusers adapter metadata, which
    load_lora_weights ignores when handed a dict (it then runs the LoRA at alpha = rank)."""
    with safe_open(str(path), framework="pt") as handle:
        raw = (handle.metadata() or {}).get("lora_adapter_metadata")
    if not raw:
        return
    metadata = json.loads(raw)
    for prefix in ("unet", "text_encoder", "text_encoder_2"):
        alpha = metadata.get(f"{prefix}.lora_alpha")
        if alpha is None:
            continue
        for module in getattr(pipe, prefix).modules():
            if adapter_name in (getattr(module, "lora_alpha", None) or {}):
                module.lora_alpha[adapter_name] = alpha
                module.scaling[adapter_name] = alpha / module.r[adapter_name]


@contextlib.contextmanager
def quiet_adapter_loading() -> Iterator[None]:
    """diffusers logs a failed adapter load (every size mismatch) at ERROR before raising; the
    engine reports the failure in one line of its own."""
    logger = logging.getLogger("diffusers.loaders.peft")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            # peft warns on every second adapter in one model; several named adapters are the design.
            warnings.filterwarnings("ignore", message="Already found a `peft_config`", category=UserWarning)
            # and on keys it could not place, which the landed-module count below reports.
            warnings.filterwarnings(
                "ignore", message="While injecting the PEFT adapters", category=RuntimeWarning
            )
            yield
    finally:
        logger.setLevel(level)


def load_lora(pipe: Any, info: ModelFile, adapter_name: str, option: str) -> int:
    """Load a LoRA as a named adapter and prove that every module it names received it.

    diffusers drops LoRA keys it cannot place with no more than a log line; a silently partial
    adapter would make a mode quietly wrong, so the count is checked here. Returns the module count.
    """
    state = read_lora_state(info.path)
    expected = len(lora_module_names(list(state)))
    try:
        with quiet_adapter_loading():
            pipe.load_lora_weights(state, adapter_name=adapter_name)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise ModelInputError(
            f"{option} {info.path}: this LoRA does not fit the base model ({_first_line(exc)})"
        ) from None
    finally:
        release(state)
    apply_adapter_metadata(pipe, info.path, adapter_name)
    landed = count_adapter_modules([pipe.unet, pipe.text_encoder, pipe.text_encoder_2], adapter_name)
    if landed != expected:
        pipe.delete_adapters(adapter_name)
        raise ModelInputError(
            f"{option} {info.path}: only {landed} of the {expected} modules it names exist in this"
            " base model; it was made for another model"
        )
    return landed


def count_adapter_modules(components: list[Any], adapter_name: str) -> int:
    """How many modules of these models hold the named adapter."""
    count = 0
    for component in components:
        for module in component.modules():
            lora_a = getattr(module, "lora_A", None)
            if lora_a is not None and adapter_name in lora_a:
                count += 1
    return count


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
