"""The generation modes as data: which UNet, which adapter, which scheduler, steps and guidance.

Defaults come from the model cards (stabilityai/stable-diffusion-xl-base-1.0, latent-consistency/
lcm-sdxl and lcm-lora-sdxl, ByteDance/SDXL-Lightning) and from diffusers and Refiners, as each record's
comments say: DDIM leading with offset 1 at 30 steps and CFG 5; LCM at 4 steps with guidance 8 as an
embedding; LCM-LoRA at 4 steps with CFG off; Lightning with Euler trailing, the file's step count and
CFG off. Nothing in the engine branches on a mode's name; it reads these records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class ModelRole(StrEnum):
    """A model file the user can give, named as its CLI option."""

    BASE = "base"
    LCM_UNET = "lcm-unet"
    LCM_LORA = "lcm-lora"
    LIGHTNING_UNET = "lightning-unet"
    LIGHTNING_LORA = "lightning-lora"


class UNetSource(StrEnum):
    """Which UNet object denoises: the base one (maybe with an adapter) or a distilled full UNet."""

    BASE = "base"
    LCM = "lcm"
    LIGHTNING = "lightning"


class GuidanceKind(StrEnum):
    """How the guidance number reaches the model."""

    CFG = "cfg"  # classifier-free guidance: two UNet passes per step when above 1
    EMBEDDING = "embedding"  # LCM: (w - 1) * 1000 as a sinusoidal embedding, one pass per step
    OFF = "off"  # Lightning: the card sets CFG to 0; a value above 1 switches CFG back on


@dataclass(frozen=True, kw_only=True)
class ModeSpec:
    """Everything that defines one mode."""

    name: str
    title: str
    unet: UNetSource
    adapter: ModelRole | None
    scheduler: str  # a diffusers scheduler class, built with from_config from the base's original config
    scheduler_overrides: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    default_steps: int
    default_guidance: float
    guidance_kind: GuidanceKind
    # Lightning files are trained for one step count, read from the file name; other modes take any.
    steps_fixed_by_file: bool = False
    recommended_steps: tuple[int, int]
    recommended_guidance: tuple[float, float]
    sampler_label: str  # AUTOMATIC1111's "Sampler" name, for PNG metadata

    @property
    def required_roles(self) -> tuple[ModelRole, ...]:
        roles = [ModelRole.BASE]
        if self.unet is UNetSource.LCM:
            roles.append(ModelRole.LCM_UNET)
        elif self.unet is UNetSource.LIGHTNING:
            roles.append(ModelRole.LIGHTNING_UNET)
        if self.adapter is not None:
            roles.append(self.adapter)
        return tuple(roles)

    @property
    def is_distilled(self) -> bool:
        return self.unet is not UNetSource.BASE or self.adapter is not None


def _frozen(**kwargs: object) -> Mapping[str, object]:
    return MappingProxyType(dict(kwargs))


_TRAILING = _frozen(timestep_spacing="trailing")

MODES: Mapping[str, ModeSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            ModeSpec(
                name="ddim",
                title="SDXL + DDIM (reference)",
                unet=UNetSource.BASE,
                adapter=None,
                scheduler="DDIMScheduler",
                # SDXL's own config already says leading / offset 1; stated again so the contract is
                # visible here. set_alpha_to_one stays False as diffusers builds it from SDXL's config,
                # so every image equals plain diffusers (Refiners forces it to 1 instead).
                scheduler_overrides=_frozen(timestep_spacing="leading", steps_offset=1),
                default_steps=30,
                default_guidance=5.0,  # Refiners' SDXL default; artists use 5 to 7.5
                guidance_kind=GuidanceKind.CFG,
                recommended_steps=(15, 50),
                recommended_guidance=(3.0, 9.0),
                sampler_label="DDIM",
            ),
            ModeSpec(
                name="lcm",
                title="LCM UNet",
                unet=UNetSource.LCM,
                adapter=None,
                scheduler="LCMScheduler",
                default_steps=4,
                default_guidance=8.0,  # latent-consistency/lcm-sdxl card's example
                guidance_kind=GuidanceKind.EMBEDDING,
                recommended_steps=(2, 8),
                recommended_guidance=(1.0, 15.0),
                sampler_label="LCM",
            ),
            ModeSpec(
                name="lcm-lora",
                title="SDXL + LCM-LoRA",
                unet=UNetSource.BASE,
                adapter=ModelRole.LCM_LORA,
                scheduler="LCMScheduler",
                default_steps=4,
                default_guidance=1.0,
                guidance_kind=GuidanceKind.CFG,
                recommended_steps=(2, 8),
                recommended_guidance=(1.0, 2.0),
                sampler_label="LCM",
            ),
            ModeSpec(
                name="lightning",
                title="SDXL-Lightning UNet",
                unet=UNetSource.LIGHTNING,
                adapter=None,
                scheduler="EulerDiscreteScheduler",
                # Lightning was distilled on trailing timesteps: leading spacing skips t=999 and
                # starts from a partly denoised level the model never saw.
                scheduler_overrides=_TRAILING,
                default_steps=4,
                default_guidance=0.0,  # "CFG set to 0" in the ByteDance card
                guidance_kind=GuidanceKind.OFF,
                steps_fixed_by_file=True,
                recommended_steps=(1, 8),
                recommended_guidance=(0.0, 1.0),
                sampler_label="Euler",
            ),
            ModeSpec(
                name="lightning-lora",
                title="SDXL + Lightning LoRA",
                unet=UNetSource.BASE,
                adapter=ModelRole.LIGHTNING_LORA,
                scheduler="EulerDiscreteScheduler",
                scheduler_overrides=_TRAILING,
                default_steps=4,
                default_guidance=0.0,
                guidance_kind=GuidanceKind.OFF,
                steps_fixed_by_file=True,
                recommended_steps=(2, 8),
                recommended_guidance=(0.0, 1.0),
                sampler_label="Euler",
            ),
            ModeSpec(
                name="euler",
                title="SDXL + Euler",
                unet=UNetSource.BASE,
                adapter=None,
                scheduler="EulerDiscreteScheduler",  # SDXL's shipped scheduler, as configured
                default_steps=30,
                default_guidance=5.0,
                guidance_kind=GuidanceKind.CFG,
                recommended_steps=(15, 50),
                recommended_guidance=(3.0, 9.0),
                sampler_label="Euler",
            ),
            ModeSpec(
                name="dpmpp-2m",
                title="SDXL + DPM++ 2M",
                unet=UNetSource.BASE,
                adapter=None,
                scheduler="DPMSolverMultistepScheduler",
                scheduler_overrides=_frozen(algorithm_type="dpmsolver++", solver_order=2),
                default_steps=25,
                default_guidance=5.0,
                guidance_kind=GuidanceKind.CFG,
                recommended_steps=(15, 40),
                recommended_guidance=(3.0, 9.0),
                sampler_label="DPM++ 2M",
            ),
        )
    }
)

# The five modes a comparison runs when none are named.
DEFAULT_COMPARISON: tuple[str, ...] = ("ddim", "lcm", "lcm-lora", "lightning", "lightning-lora")


def contract_warnings(
    spec: ModeSpec, *, steps: int, guidance: float, negative_prompt: str, file_steps: int | None
) -> tuple[str, ...]:
    """Where a setting leaves the mode's contract: said, never refused (artists experiment)."""
    warnings: list[str] = []
    if spec.steps_fixed_by_file and file_steps is not None and steps != file_steps:
        warnings.append(
            f"{spec.name}: the file was distilled for {file_steps} steps; {steps} steps gives poorer images"
        )
    low, high = spec.recommended_steps
    if not spec.steps_fixed_by_file and not low <= steps <= high:
        warnings.append(f"{spec.name}: {steps} steps is outside the usual {low} to {high}")
    if spec.is_distilled and spec.guidance_kind is not GuidanceKind.EMBEDDING and guidance > 2.0:
        warnings.append(
            f"{spec.name}: CFG {guidance:g} on a distilled mode doubles the cost and tends to burn the image"
        )
    if negative_prompt.strip() and spec.guidance_kind is GuidanceKind.EMBEDDING:
        warnings.append(
            f"{spec.name}: the LCM UNet takes guidance as an embedding; the negative prompt is unused"
        )
    elif negative_prompt.strip() and guidance <= 1.0:
        warnings.append(f"{spec.name}: at CFG {guidance:g} the negative prompt has no effect")
    return tuple(warnings)
