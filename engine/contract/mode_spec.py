"""The record of one generation mode and the registry of every known mode; torch-free.

engine.contract.modes holds the registry MODES, filled from the mode files (engine.contract.mode_files).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class ModelRole(StrEnum):
    """The files with a CLI option of their own (older than --model ROLE=PATH, which takes any role).

    A role is any string a mode declares (``tcd-lora``, ``dmd2-unet``); these five are also roles."""

    BASE = "base"
    LCM_UNET = "lcm-unet"
    LCM_LORA = "lcm-lora"
    LIGHTNING_UNET = "lightning-unet"
    LIGHTNING_LORA = "lightning-lora"


class ModeFile(StrEnum):
    """What a mode's own file is, besides the SDXL base every mode loads."""

    NONE = "none"  # the base alone, with another scheduler
    UNET = "unet"  # a full distilled UNet in place of the base's
    LORA = "lora"  # a LoRA on the base UNet
    # A whole pipeline of its own (SDXL-Turbo). Runs where its text encoders and VAE are the base's, bit for
    # bit: then only its UNet is its own, as a full UNet's mode.
    PIPELINE = "pipeline"


class GuidanceKind(StrEnum):
    """How the guidance number reaches the model."""

    CFG = "cfg"  # classifier-free guidance: two UNet passes per step when above 1
    EMBEDDING = "embedding"  # LCM: (w - 1) * 1000 as a sinusoidal embedding, one pass per step
    OFF = "off"  # the card sets CFG to 0 (written "none" in a mode file); above 1 switches CFG back on


# diffusers schedulers a mode may name, each with whether its set_timesteps takes an explicit
# `timesteps` list (diffusers 0.42.1; tests/engine/contract/test_mode_files.py checks both against diffusers).
# Listed here because the contract is torch-free and cannot import diffusers to ask.
SCHEDULERS: Mapping[str, bool] = MappingProxyType(
    {
        "DDIMScheduler": False,
        "DDPMScheduler": True,
        "DEISMultistepScheduler": False,
        "DPMSolverMultistepScheduler": True,
        "DPMSolverSinglestepScheduler": True,
        "EulerAncestralDiscreteScheduler": False,
        "EulerDiscreteScheduler": True,
        "HeunDiscreteScheduler": True,
        "KDPM2AncestralDiscreteScheduler": False,
        "KDPM2DiscreteScheduler": False,
        "LCMScheduler": True,
        "LMSDiscreteScheduler": False,
        "PNDMScheduler": False,
        "TCDScheduler": True,
        "UniPCMultistepScheduler": False,
    }
)


@dataclass(frozen=True)
class ModelCard:
    """Where a mode's defaults come from: the card's address and its own words or code, quoted."""

    url: str
    quote: str


@dataclass(frozen=True, kw_only=True)
class ModeSpec:
    """Everything that defines one mode."""

    name: str
    title: str
    family: str = ""
    file: ModeFile = ModeFile.NONE
    role: str | None = None  # the file the mode needs besides the base (None for ModeFile.NONE)
    scheduler: str  # a diffusers scheduler class, built with from_config from the base's original config
    scheduler_overrides: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    default_steps: int
    default_guidance: float
    guidance_kind: GuidanceKind
    # Files trained for one step count say it in their name (sdxl_lightning_4step_lora,
    # Hyper-SDXL-8steps-lora, dmd2_sdxl_1step_unet): the mode then runs the file's count.
    steps_fixed_by_file: bool = False
    recommended_steps: tuple[int, int]
    recommended_guidance: tuple[float, float]
    sampler_label: str  # AUTOMATIC1111's "Sampler" name, for PNG metadata
    schedule_label: str | None = None  # its "Schedule type"; None: told from the scheduler's spacing
    eta: float | None = None  # passed to the pipeline call (TCD's gamma); None: not passed
    eta_range: tuple[float, float] | None = None
    # Explicit timesteps by step count (DMD2's [999, 749, 499, 249] is on no scheduler's own grid);
    # a step count without an entry runs the scheduler's own spacing.
    timesteps: Mapping[int, tuple[int, ...]] = field(default_factory=lambda: MappingProxyType({}))
    lora_scale: float = 1.0
    native_size: tuple[int, int] | None = None  # None: the base's own size
    card: ModelCard | None = None
    source: str = "built-in"  # the mode file it was read from

    @property
    def required_roles(self) -> tuple[str, ...]:
        return (ModelRole.BASE, self.role) if self.role is not None else (ModelRole.BASE,)

    @property
    def is_distilled(self) -> bool:
        return self.file is not ModeFile.NONE

    @property
    def adapter(self) -> str | None:
        """The LoRA role on the base UNet, if the mode has one."""
        return self.role if self.file is ModeFile.LORA else None

    @property
    def unet_role(self) -> str | None:
        """The role of the UNet that replaces the base's: a full UNet's, or a whole pipeline's."""
        return self.role if self.file in (ModeFile.UNET, ModeFile.PIPELINE) else None

    @property
    def on_base_unet(self) -> bool:
        """The base UNet denoises (maybe with a LoRA): style LoRAs apply, no UNet moves."""
        return self.file in (ModeFile.NONE, ModeFile.LORA)

    def timesteps_for(self, steps: int) -> tuple[int, ...] | None:
        return self.timesteps.get(steps)


class ModeRegistry(Mapping[str, ModeSpec]):
    """Every known mode by name, in file order: the built-in ones, then any a user's file adds.

    A Mapping, so every reader keeps writing MODES[name]; the user's modes come and go with
    `added` (the CLI for one run, the GUI for its session)."""

    def __init__(self, specs: Iterable[ModeSpec] = ()) -> None:
        self._specs: dict[str, ModeSpec] = {s.name: s for s in specs}

    def __getitem__(self, name: str) -> ModeSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def add(self, specs: Iterable[ModeSpec]) -> None:
        specs = tuple(specs)
        clash = [s.name for s in specs if s.name in self._specs]
        if clash:
            raise ValueError(f"modes already defined: {', '.join(clash)}")
        self._specs.update((s.name, s) for s in specs)

    @contextlib.contextmanager
    def added(self, specs: Iterable[ModeSpec]) -> Iterator[None]:
        specs = tuple(specs)
        self.add(specs)
        try:
            yield
        finally:
            for spec in specs:
                self._specs.pop(spec.name, None)

    def set_source(self, source: str, specs: Iterable[ModeSpec]) -> None:
        """The modes read from one file, replacing what that file gave before (the window reads the
        config folder's file at each start, and a test may start it more than once)."""
        for name in [n for n, s in self._specs.items() if s.source == source]:
            del self._specs[name]
        self.add(specs)

    def role_files(self) -> dict[str, ModeFile]:
        """Every role a mode declares, with the kind of file it is."""
        return {s.role: s.file for s in self._specs.values() if s.role is not None}
