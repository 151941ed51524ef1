"""What a model path is, told from its name and its safetensors header, without loading weights.

Torch-free, so the GUI can check a path the moment the user picks it. Pickle files (.ckpt, .pt,
.bin) are never opened: unpickling runs code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from safetensors import SafetensorError, safe_open

from engine.contract.errors import ModelInputError
from engine.contract.modes import MODES, ModeFile, ModelRole
from engine.files.field_files import (
    LCM_LORA_ROLE,
    LORA_FILE_IN_FOLDER,
    SAME_NAME_LORAS,
    Recognised,
    is_turbo_pipeline,
    lora_by_name,
    safetensors_instead,
    same_name_lora_by_place,
    unet_by_name,
)
from engine.files.hub_cache import looks_like_hub_reference, resolve_hub_reference
from engine.files.safe_paths import NotRegularFileError, open_regular, special_file_problem
from engine.files.weight_folders import PICKLE_SUFFIXES as PICKLE_SUFFIXES
from engine.files.weight_folders import check_folder_weights

# The folders of an SDXL pipeline that hold weights (the tokenizers and scheduler hold none).
_PIPELINE_WEIGHT_FOLDERS = ("unet", "vae", "text_encoder", "text_encoder_2")
_LIGHTNING_NAME = re.compile(r"sdxl_lightning_(\d+)step", re.IGNORECASE)
# How the field's files say their step count: sdxl_lightning_4step_lora, Hyper-SDXL-8steps-CFG-lora,
# dmd2_sdxl_1step_unet_fp16, pcm_sdxl_smallcfg_2step_converted.
_STEPS_NAME = re.compile(r"(?<![0-9])([0-9]{1,3})[-_]?steps?(?![a-z])", re.IGNORECASE)
KOHYA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")
# diffusers' own test for an SDXL base single file (docs/model-files.md): the 10th block of OpenCLIP bigG.
_SDXL_BASE_KEY = "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias"


class FileKind(StrEnum):
    SDXL_FOLDER = "SDXL base (diffusers folder)"
    SDXL_SINGLE_FILE = "SDXL base (single-file checkpoint)"
    LIGHTNING_CHECKPOINT = "SDXL-Lightning all-in-one checkpoint"
    LCM_UNET = "LCM UNet (diffusers folder)"
    UNET_FOLDER = "UNet folder without a guidance embedding (not LCM)"
    UNET_STATE_DICT = "UNet state dict"
    LIGHTNING_UNET = "SDXL-Lightning UNet"
    LCM_LORA = "LCM-LoRA"
    LIGHTNING_LORA = "SDXL-Lightning LoRA"
    STYLE_LORA = "style LoRA"
    # A LoRA of the field told by its name or place (TCD, Hyper-SD, DMD2, PCM, Flash): its label says which.
    DISTILLATION_LORA = "distillation LoRA"
    # pytorch_lora_weights.safetensors where neither folder nor repository names its family.
    UNDECIDED_LORA = "a distillation LoRA: LCM-LoRA, TCD or Flash; say which"
    VAE_FOLDER = "VAE (diffusers folder)"
    VAE_FILE = "VAE (single file)"
    NOT_SDXL = "not an SDXL model"
    OTHER = "unrecognised"


LORA_KINDS = (
    FileKind.LCM_LORA,
    FileKind.LIGHTNING_LORA,
    FileKind.STYLE_LORA,
    FileKind.DISTILLATION_LORA,
    FileKind.UNDECIDED_LORA,
)
# The roles an undecided LoRA may be given as: LCM-LoRA, TCD or Flash SDXL.
UNDECIDED_ROLES = tuple(role for _word, role, _label in SAME_NAME_LORAS)


@dataclass(frozen=True)
class ModelFile:
    """A checked model path: what it is and what the engine needs to know to load it."""

    path: Path  # the file or folder to load
    kind: FileKind  # how it loads (the engine reads this); `role` says which distillation it is
    detail: str = ""  # e.g. "Stable Diffusion 1.x checkpoint", "4-step"
    lightning_steps: int | None = None  # from a Lightning file's name
    x0_prediction: bool = False  # Lightning's 1-step file predicts the clean sample
    text_encoder_keys: bool = False  # a LoRA that also patches the text encoders
    # The role a mode takes this file as, where its name, place or header says it (None: it does not,
    # or no built-in mode runs it), what it is in words, and what decided.
    role: str | None = None
    label: str = ""
    decided_by: str = ""
    steps: int | None = None  # the step count its name gives, where its mode runs the file's count

    def describe(self) -> str:
        if self.kind in (FileKind.LIGHTNING_UNET, FileKind.LIGHTNING_LORA, FileKind.LIGHTNING_CHECKPOINT):
            steps = f"{self.lightning_steps}-step " if self.lightning_steps else ""
            x0 = " (x0 prediction)" if self.x0_prediction else ""
            return f"{steps}{self.kind}{x0}"
        if self.label:
            return f"{self.steps}-step {self.label}" if self.steps else self.label
        return f"{self.kind}: {self.detail}" if self.detail else str(self.kind)

    @property
    def natural_role(self) -> str | None:
        """The role this file is for, if one: its recognised role, else the one its kind says."""
        return self.role if self.role is not None else _KIND_ROLES.get(self.kind)

    @property
    def enables(self) -> tuple[str, ...]:
        """The modes this file makes possible (with the base model where it needs one)."""
        if self.kind is FileKind.UNDECIDED_LORA:
            return ()
        if self.kind in (FileKind.SDXL_FOLDER, FileKind.SDXL_SINGLE_FILE) and self.role is None:
            return tuple(name for name, spec in MODES.items() if spec.file is ModeFile.NONE)
        role = self.natural_role
        if role is not None and role != ModelRole.BASE:
            return tuple(name for name, spec in MODES.items() if spec.role == role)
        if self.role is None and self.label:  # a field file no built-in mode runs
            return ()
        return _ENABLES.get(self.kind, ())


_KIND_ROLES: Mapping[FileKind, str] = {
    FileKind.SDXL_FOLDER: ModelRole.BASE,
    FileKind.SDXL_SINGLE_FILE: ModelRole.BASE,
    FileKind.LIGHTNING_CHECKPOINT: ModelRole.LIGHTNING_UNET,
    FileKind.LCM_UNET: ModelRole.LCM_UNET,
    FileKind.LIGHTNING_UNET: ModelRole.LIGHTNING_UNET,
    FileKind.LCM_LORA: ModelRole.LCM_LORA,
    FileKind.LIGHTNING_LORA: ModelRole.LIGHTNING_LORA,
}

_ENABLES: Mapping[FileKind, tuple[str, ...]] = {
    FileKind.STYLE_LORA: ("style on every base-UNet mode",),
    FileKind.VAE_FOLDER: ("a replacement VAE for every mode",),
    FileKind.VAE_FILE: ("a replacement VAE for every mode",),
}


def _steps_for(role: str | None, path: Path) -> int | None:
    """The step count in the file's name, where the role's mode runs the count its file was made for."""
    if role is None or not any(s.steps_fixed_by_file for s in MODES.values() if s.role == role):
        return None
    return steps_in_name(path)


def _recognised(path: Path, kind: FileKind, found: Recognised, *, te: bool = False) -> ModelFile:
    return ModelFile(
        path,
        kind,
        text_encoder_keys=te,
        role=found.role,
        label=found.label,
        decided_by=found.by,
        steps=_steps_for(found.role, path),
    )


def lightning_steps_from_name(path: Path) -> int | None:
    """ByteDance names each file for its step count: sdxl_lightning_{N}step_{unet,lora}.safetensors."""
    match = _LIGHTNING_NAME.search(path.name)
    return int(match.group(1)) if match else None


def steps_in_name(path: Path) -> int | None:
    """The step count a distilled file's name gives ("4step", "8steps"), or None."""
    match = _STEPS_NAME.search(path.name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class _Header:
    keys: list[str]
    metadata: Mapping[str, str]
    shapes: Mapping[str, list[int]] = field(default_factory=dict)


def _read_header(path: Path, shapes_of: tuple[str, ...] = ()) -> _Header:
    refuse_special_file(path)
    try:
        with safe_open(str(path), framework="numpy") as handle:
            keys = list(handle.keys())
            shapes = {k: list(handle.get_slice(k).get_shape()) for k in shapes_of if k in keys}
            return _Header(keys, dict(handle.metadata() or {}), shapes)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelInputError(
            f"{path} is not a readable safetensors file ({exc}); it may be truncated or still downloading"
        ) from None


def _lora_base_model(keys: list[str], metadata: Mapping[str, str]) -> str | None:
    """The base model family a LoRA was made for, if it is not SDXL."""
    version = (
        metadata.get("ss_base_model_version", "") + " " + metadata.get("modelspec.architecture", "")
    ).lower()
    if "sd_v1" in version or "sd_1" in version or "stable-diffusion-v1" in version:
        return "Stable Diffusion 1.x"
    if "sd_v2" in version or "sd_2" in version or "stable-diffusion-v2" in version:
        return "Stable Diffusion 2.x"
    # SDXL has no attention at the first UNet level; SD 1.x and 2.x do.
    level0_attention = (
        "lora_unet_down_blocks_0_attentions_",
        "lora_unet_input_blocks_1_1_",
        "unet.down_blocks.0.attentions.",
    )
    if any(k.startswith(level0_attention) for k in keys):
        return "Stable Diffusion 1.x or 2.x"
    te_keys = [k for k in keys if k.startswith(KOHYA_PREFIXES[1:])]
    if te_keys and all(k.startswith("lora_te_") for k in te_keys):
        return "Stable Diffusion 1.x or 2.x (one text encoder)"
    return None


_LORA_MARKS = (".lora_A.", ".lora.down.", ".lora_down.", ".lora_linear_layer.down.", "_lora.down.")


def _is_lora(keys: list[str]) -> bool:
    return all(k.startswith(KOHYA_PREFIXES) for k in keys) or any(m in k for k in keys for m in _LORA_MARKS)


def classify_file(path: Path) -> ModelFile:
    header = _read_header(path, shapes_of=("model.diffusion_model.input_blocks.0.0.weight",))
    keys = header.keys
    steps = lightning_steps_from_name(path)
    lightning = steps is not None
    if not keys:
        return ModelFile(path, FileKind.OTHER, "an empty safetensors file")
    if _is_lora(keys):
        other = _lora_base_model(keys, header.metadata)
        if other is not None:
            return ModelFile(path, FileKind.NOT_SDXL, f"a LoRA for {other}")
        te = any(k.startswith(("lora_te", "text_encoder")) or ".text_encoder" in k for k in keys)
        if lightning:
            return ModelFile(path, FileKind.LIGHTNING_LORA, lightning_steps=steps, text_encoder_keys=te)
        return _lora_of_the_field(path, te)
    if any(k.startswith("model.diffusion_model.") for k in keys):
        in_channels = header.shapes.get("model.diffusion_model.input_blocks.0.0.weight", [0, 4])[1]
        if any(k.startswith("cond_stage_model.transformer.") for k in keys):
            return ModelFile(path, FileKind.NOT_SDXL, "a Stable Diffusion 1.x checkpoint")
        if any(k.startswith("cond_stage_model.model.") for k in keys):
            return ModelFile(path, FileKind.NOT_SDXL, "a Stable Diffusion 2.x checkpoint")
        if _SDXL_BASE_KEY not in keys:
            return ModelFile(
                path, FileKind.NOT_SDXL, "a single-file checkpoint that is not SDXL base (a refiner?)"
            )
        if in_channels != 4:
            return ModelFile(
                path, FileKind.NOT_SDXL, f"an SDXL inpainting checkpoint ({in_channels} input channels)"
            )
        if lightning:
            return ModelFile(
                path, FileKind.LIGHTNING_CHECKPOINT, lightning_steps=steps, x0_prediction="_x0" in path.stem
            )
        if (turbo := is_turbo_pipeline(path, None)) is not None:
            return _recognised(path, FileKind.SDXL_SINGLE_FILE, turbo)
        return ModelFile(path, FileKind.SDXL_SINGLE_FILE)
    if any(k.startswith(("encoder.down.", "encoder.down_blocks.")) for k in keys) and any(
        k.startswith("decoder.") for k in keys
    ):
        return ModelFile(path, FileKind.VAE_FILE)
    if "conv_in.weight" in keys and any(k.startswith("down_blocks.") for k in keys):
        if lightning:
            return ModelFile(
                path, FileKind.LIGHTNING_UNET, lightning_steps=steps, x0_prediction="_x0" in path.stem.lower()
            )
        if (found := unet_by_name(path)) is not None:
            return _recognised(path, FileKind.UNET_STATE_DICT, found)
        return ModelFile(path, FileKind.UNET_STATE_DICT)
    return ModelFile(path, FileKind.OTHER, "no UNet, LoRA or checkpoint keys")


def _lora_of_the_field(path: Path, te: bool) -> ModelFile:
    """An SDXL LoRA that is not Lightning's: a distillation its name or place says, LCM-LoRA, TCD or
    Flash undecided, or a style LoRA."""
    if (found := lora_by_name(path)) is not None:
        return _recognised(path, FileKind.DISTILLATION_LORA, found, te=te)
    name = path.name.lower()
    if name != LORA_FILE_IN_FOLDER:
        # Any other name is the user's: a style LoRA, unless it says LCM (sdxl_lcm_lora.safetensors,
        # Fooocus's copy of the LCM-LoRA).
        kind = FileKind.LCM_LORA if "lcm" in name else FileKind.STYLE_LORA
        return ModelFile(path, kind, text_encoder_keys=te)
    placed = same_name_lora_by_place(path)
    if placed is None:
        return ModelFile(path, FileKind.UNDECIDED_LORA, text_encoder_keys=te)
    if placed.role == LCM_LORA_ROLE:
        return ModelFile(path, FileKind.LCM_LORA, text_encoder_keys=te, decided_by=placed.by)
    return _recognised(path, FileKind.DISTILLATION_LORA, placed, te=te)


def refuse_special_file(path: Path) -> None:
    """ModelInputError for a FIFO, device or socket: opening one would block or read forever."""
    if problem := special_file_problem(path):
        raise ModelInputError(problem)


def _read_json(path: Path) -> dict[str, object]:
    try:
        with open_regular(path) as handle:
            data = json.loads(handle.read(_MAX_JSON_BYTES).decode("utf-8"))
    except NotRegularFileError:
        raise ModelInputError(special_file_problem(path) or f"{path} is not a regular file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelInputError(f"{path} cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelInputError(f"{path} is not a JSON object")
    return data


_MAX_JSON_BYTES = 16 << 20  # a model config or index is a few kilobytes


def classify_folder(path: Path) -> ModelFile:
    info = _kind_of_folder(path)
    if info.kind is FileKind.SDXL_FOLDER:
        for sub in _PIPELINE_WEIGHT_FOLDERS:
            if (path / sub).is_dir():
                check_folder_weights(path / sub)
    elif info.kind in (FileKind.VAE_FOLDER, FileKind.LCM_UNET, FileKind.UNET_FOLDER):
        check_folder_weights(path)
    return info


def _kind_of_folder(path: Path) -> ModelFile:
    index = path / "model_index.json"
    if index.is_file():
        pipeline_index = _read_json(index)
        pipeline = pipeline_index.get("_class_name")
        if pipeline == "StableDiffusionXLPipeline":
            if (turbo := is_turbo_pipeline(path, pipeline_index.get("scheduler"))) is not None:
                return _recognised(path, FileKind.SDXL_FOLDER, turbo)
            return ModelFile(path, FileKind.SDXL_FOLDER)
        return ModelFile(path, FileKind.NOT_SDXL, f"a {pipeline} folder")
    config = path / "config.json"
    if config.is_file():
        data = _read_json(config)
        if data.get("_class_name") == "AutoencoderKL":
            return ModelFile(path, FileKind.VAE_FOLDER)
        if data.get("_class_name") == "UNet2DConditionModel":
            if data.get("addition_embed_type") != "text_time":
                return ModelFile(path, FileKind.NOT_SDXL, "a UNet of Stable Diffusion 1.x or 2.x")
            if data.get("time_cond_proj_dim") is None:
                return ModelFile(path, FileKind.UNET_FOLDER)
            return ModelFile(path, FileKind.LCM_UNET)
    if (path / LORA_FILE_IN_FOLDER).is_file():
        return classify_file(path / LORA_FILE_IN_FOLDER)
    return ModelFile(path, FileKind.OTHER, "a folder without model_index.json, config.json or LoRA weights")


def pickle_refusal(path: Path) -> str:
    """The one line that refuses a pickle and names the safetensors file to use instead."""
    return (
        f"{path} is a pickle checkpoint ({path.suffix}); Fewstep never unpickles files, as they can"
        f" run code: use {safetensors_instead(path)}"
    )


def inspect_path(path: Path) -> ModelFile:
    """Classify a path (or a Hugging Face repo id in the local cache); ModelInputError if it is
    missing, unreadable or pickled."""
    if not path.exists() and looks_like_hub_reference(path.as_posix()):
        cached = resolve_hub_reference(path.as_posix())
        if cached is None:
            raise ModelInputError(
                f"{path} is neither a path nor a model in the Hugging Face cache; Fewstep never downloads:"
                " give the path of the files on disk"
            )
        path = cached
    if not path.exists():
        if path.is_symlink():
            raise ModelInputError(
                f"{path} is a symbolic link that leads nowhere (a loop, or a missing target)"
            )
        raise ModelInputError(f"{path} does not exist: check the path")
    refuse_special_file(path)
    if path.is_dir():
        return classify_folder(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelInputError(pickle_refusal(path))
    if path.suffix.lower() != ".safetensors":
        raise ModelInputError(f"{path} is not a .safetensors file")
    return classify_file(path)


_ACCEPTS: Mapping[str, tuple[tuple[FileKind, ...], str]] = {
    ModelRole.BASE: (
        (FileKind.SDXL_FOLDER, FileKind.SDXL_SINGLE_FILE),
        "the SDXL base: a diffusers folder with model_index.json, or a single .safetensors checkpoint",
    ),
    ModelRole.LCM_UNET: ((FileKind.LCM_UNET,), "an LCM UNet folder like lcm-sdxl (config.json and weights)"),
    ModelRole.LCM_LORA: (
        (FileKind.LCM_LORA, FileKind.STYLE_LORA, FileKind.UNDECIDED_LORA, FileKind.DISTILLATION_LORA),
        "an LCM-LoRA .safetensors file",
    ),
    ModelRole.LIGHTNING_UNET: (
        (FileKind.LIGHTNING_UNET, FileKind.UNET_STATE_DICT, FileKind.LIGHTNING_CHECKPOINT),
        "a file like sdxl_lightning_4step_unet.safetensors",
    ),
    ModelRole.LIGHTNING_LORA: (
        (FileKind.LIGHTNING_LORA, FileKind.STYLE_LORA),
        "a file like sdxl_lightning_4step_lora.safetensors",
    ),
}


# What a role that a mode file brings accepts, by the kind of file its modes declare.
_ACCEPTS_BY_FILE: Mapping[ModeFile, tuple[tuple[FileKind, ...], str]] = {
    ModeFile.UNET: (
        (
            FileKind.UNET_STATE_DICT,
            FileKind.LIGHTNING_UNET,
            FileKind.LCM_UNET,
            FileKind.UNET_FOLDER,
            FileKind.LIGHTNING_CHECKPOINT,
        ),
        "a full SDXL UNet: a bare UNet state dict (.safetensors) or a UNet folder",
    ),
    ModeFile.LORA: (LORA_KINDS, "an SDXL LoRA .safetensors file"),
    ModeFile.PIPELINE: (
        (FileKind.SDXL_FOLDER, FileKind.SDXL_SINGLE_FILE),
        "a whole SDXL pipeline: a diffusers folder, or one file like sd_xl_turbo_1.0_fp16.safetensors",
    ),
}


def check_role(role: str, path: Path) -> ModelFile:
    """Inspect a path given for one role and refuse it, naming what it is, if it does not fit."""
    option = f"--{role}" if role in set(ModelRole) else f"--model {role}="
    file_kind = MODES.role_files().get(role)
    accepts = _ACCEPTS.get(role) or (_ACCEPTS_BY_FILE.get(file_kind) if file_kind is not None else None)
    if accepts is None:
        known = ", ".join(sorted({ModelRole.BASE, *MODES.role_files()}))
        raise ModelInputError(f"{option}{path}: no mode uses a file called {role!r}; known: {known}")
    info = inspect_path(path)
    kinds, description = accepts
    if info.kind not in kinds:
        if info.kind is FileKind.UNET_FOLDER and role == ModelRole.LCM_UNET:
            raise ModelInputError(
                f"--{role} {path}: this UNet has no guidance embedding (time_cond_proj_dim), so it is not an LCM UNet"
            )
        raise ModelInputError(
            f"{_spaced(option)}{path}: this is {_what(info)}, but {_named(role)} takes {description}"
        )
    _refuse_another_distillation(role, option, info)
    info = _as_said(role, info)
    if role in (ModelRole.LIGHTNING_UNET, ModelRole.LIGHTNING_LORA) and info.lightning_steps is None:
        raise ModelInputError(
            f"--{role} {path}: cannot tell the step count; keep ByteDance's file name, e.g."
            " sdxl_lightning_4step_unet.safetensors"
        )
    steps_fixed = any(s.steps_fixed_by_file for s in MODES.values() if s.role == role)
    if steps_fixed and steps_in_name(info.path) is None:
        raise ModelInputError(
            f"{_spaced(option)}{path}: cannot tell the step count its file was distilled for; keep the"
            " file's published name, which says it (e.g. 4step, 8steps)"
        )
    return info


def _refuse_another_distillation(role: str, option: str, info: ModelFile) -> None:
    """A file whose name or header says it is another distillation is refused for this one, naming the
    role that takes it. Where only the place decided (a folder or repository named for LCM, TCD or
    Flash), or nothing did, the user's word stands. The base takes any SDXL pipeline; a role only a
    user's mode file declares takes any file of its kind."""
    if role == ModelRole.BASE or info.role is None or info.role == role:
        return
    if info.decided_by not in ("name", "header") or role not in recognised_roles():
        return
    raise ModelInputError(
        f"{_spaced(option)}{info.path}: this is {_article(info.describe())}, which {_named(info.role)} takes"
    )


def _as_said(role: str, info: ModelFile) -> ModelFile:
    """A LoRA whose kind name and header could not tell (or only its place told), or an SDXL pipeline,
    given for a distillation's role: it is that distillation, as the user said."""
    pipelines = (FileKind.SDXL_FOLDER, FileKind.SDXL_SINGLE_FILE)
    if info.kind in pipelines and info.role is None and MODES.role_files().get(role) is ModeFile.PIPELINE:
        # An SDXL pipeline whose name says no distillation (a merge named "…turbo…"): the user's word.
        form = "single-file checkpoint" if info.kind is FileKind.SDXL_SINGLE_FILE else "diffusers folder"
        return replace(info, role=role, label=f"{role_label(role)} ({form})", decided_by="user")
    undecided = info.kind is FileKind.UNDECIDED_LORA or (
        info.kind in (FileKind.LCM_LORA, FileKind.DISTILLATION_LORA)
        and info.decided_by in ("folder name", "repository id")
    )
    if not undecided or role not in UNDECIDED_ROLES or info.natural_role == role:
        return info
    if role == ModelRole.LCM_LORA:
        return replace(info, kind=FileKind.LCM_LORA, role=None, label="", decided_by="user")
    return replace(
        info, kind=FileKind.DISTILLATION_LORA, role=role, label=role_label(role), decided_by="user"
    )


def role_label(role: str) -> str:
    """What the file of a role is, in words: "TCD LoRA", "DMD2 UNet", "SDXL-Turbo"."""
    titles: dict[str, str] = {
        ModelRole.BASE: "SDXL base",
        ModelRole.LCM_UNET: "LCM UNet",
        ModelRole.LCM_LORA: "LCM-LoRA",
    }
    if role in titles:
        return titles[role]
    spec = next((s for s in MODES.values() if s.role == role), None)
    return spec.title.removeprefix("SDXL + ") if spec is not None else role


def recognised_roles() -> frozenset[str]:
    """The roles a file's name, place or header can say: the built-in modes' own."""
    return frozenset(s.role for s in MODES.values() if s.role is not None and s.source == "built-in")


def _named(role: str) -> str:
    return f"--{role}" if role in set(ModelRole) else f"--model {role}"


def _spaced(option: str) -> str:
    return option if option.endswith("=") else option + " "


def check_style_lora(path: Path) -> ModelFile:
    info = inspect_path(path)
    if info.kind not in LORA_KINDS:
        raise ModelInputError(f"--lora {path}: this is {_what(info)}, not an SDXL LoRA")
    return info


def check_vae(path: Path) -> ModelFile:
    info = inspect_path(path)
    if info.kind not in (FileKind.VAE_FOLDER, FileKind.VAE_FILE):
        raise ModelInputError(f"--vae {path}: this is {_article(info.describe())}, not a VAE")
    return info


def _what(info: ModelFile) -> str:
    """What a file is, as the object of "this is ...": "a LoRA for Stable Diffusion 1.x"."""
    if info.kind in (FileKind.NOT_SDXL, FileKind.OTHER) and info.detail:
        return info.detail
    return _article(info.describe())


def _article(text: str) -> str:
    if text.startswith(("a ", "an ")):
        return text
    first = text.split(" ", 1)[0].split("-", 1)[0]
    # Acronyms are read letter by letter: "an LCM-LoRA", "an SDXL base".
    vowel_sound = first[:1] in "AEFHILMNORSX" if first.isupper() else first[:1].lower() in "aeiou"
    return ("an " if vowel_sound else "a ") + text


def check_unet_fits(unet: ModelFile, base: ModelFile) -> None:
    """A bare UNet state dict must match the base UNet tensor for tensor; told from the two headers,
    before gigabytes are loaded. Only possible against a diffusers folder (a single file's keys are
    in the original layout); the strict load catches the rest."""
    if unet.kind is not FileKind.LIGHTNING_UNET or base.kind is not FileKind.SDXL_FOLDER:
        return
    weights = sorted((base.path / "unet").glob("diffusion_pytorch_model*.safetensors"))
    if not weights:
        return
    expected = _header_shapes(weights[0])
    found = _header_shapes(unet.path)
    if found == expected:
        return
    wrong = sorted(k for k in expected.keys() & found.keys() if expected[k] != found[k])
    missing = sorted(expected.keys() - found.keys())
    detail = (
        f"{wrong[0]} is {found[wrong[0]]}, the base has {expected[wrong[0]]}"
        if wrong
        else f"{len(missing)} tensors missing, e.g. {missing[0]}"
        if missing
        else f"{len(found.keys() - expected.keys())} unexpected tensors"
    )
    raise ModelInputError(
        f"--lightning-unet {unet.path}: its tensors do not fit the base model's UNet ({detail});"
        " it was made for another model"
    )


def _header_shapes(path: Path) -> dict[str, list[int]]:
    refuse_special_file(path)
    try:
        with safe_open(str(path), framework="numpy") as handle:
            return {k: list(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise ModelInputError(f"{path} is not a readable safetensors file ({exc})") from None
