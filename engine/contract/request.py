"""The contract between a front end and the engine: frozen requests in, plain values out.

Torch-free on purpose: the GUI imports this module and must not pull torch in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from engine.contract.errors import RequestError
from engine.contract.limits import (  # MAX_SEED, MAX_SIDE, MAX_STEPS: re-exported for older imports
    MAX_GUIDANCE,
    MIN_GUIDANCE,
    MIN_STEPS,
    STYLE_WEIGHT_RANGE,
)
from engine.contract.limits import MAX_SEED as MAX_SEED
from engine.contract.limits import MAX_SIDE as MAX_SIDE
from engine.contract.limits import MAX_STEPS as MAX_STEPS
from engine.contract.modes import MODES, ModeSpec
from engine.contract.validation import check_prompt_text

RGBImage = npt.NDArray[np.uint8]  # (height, width, 3)


@dataclass(frozen=True, kw_only=True)
class ModeSettings:
    """One mode of a comparison; None means the mode's default (or, for Lightning, its file's steps)."""

    mode: str
    steps: int | None = None
    guidance: float | None = None
    eta: float | None = None  # None: the mode's own (TCD's 0.3); only modes with an eta take one

    @property
    def spec(self) -> ModeSpec:
        return MODES[self.mode]


@dataclass(frozen=True, kw_only=True)
class GenerationRequest:
    """Everything a comparison needs: one prompt, every listed mode times every seed."""

    prompt: str
    negative_prompt: str = ""
    seeds: tuple[int, ...] = (0,)
    width: int | None = None  # None: the model's native size
    height: int | None = None
    modes: tuple[ModeSettings, ...]
    want_previews: bool = False
    # (style adapter name, weight) overrides; None: every loaded style at its own weight; 0 turns one off.
    style_weights: tuple[tuple[str, float], ...] | None = None

    def validate(self) -> None:
        """Raise RequestError with a message that says what to change."""
        if not self.modes:
            raise RequestError("no mode chosen: pick at least one mode")
        check_prompt_text(self.prompt, "the prompt")
        check_prompt_text(self.negative_prompt, "the negative prompt")
        seen: set[str] = set()
        for settings in self.modes:
            if settings.mode not in MODES:
                raise RequestError(f"unknown mode {settings.mode!r}; choose from {', '.join(MODES)}")
            if settings.mode in seen:
                raise RequestError(f"mode {settings.mode!r} is listed twice")
            seen.add(settings.mode)
            if settings.steps is not None and not MIN_STEPS <= settings.steps <= MAX_STEPS:
                raise RequestError(
                    f"{settings.mode}: steps must be between {MIN_STEPS} and {MAX_STEPS}, not {settings.steps}"
                )
            # `not low <= g <= high` also refuses nan
            if settings.guidance is not None and not MIN_GUIDANCE <= settings.guidance <= MAX_GUIDANCE:
                raise RequestError(
                    f"{settings.mode}: guidance must be between {MIN_GUIDANCE:g} and {MAX_GUIDANCE:g},"
                    f" not {settings.guidance:g}"
                )
            if settings.eta is not None:
                if MODES[settings.mode].eta is None:
                    raise RequestError(
                        f"{settings.mode}: this mode takes no eta (only modes whose card passes one)"
                    )
                if not 0.0 <= settings.eta <= 1.0:  # also refuses nan
                    raise RequestError(f"{settings.mode}: eta must be between 0 and 1, not {settings.eta:g}")
        for side_name, side in (("width", self.width), ("height", self.height)):
            if side is not None and (side < 8 or side > MAX_SIDE or side % 8):
                raise RequestError(f"{side_name} {side} must be a multiple of 8 between 8 and {MAX_SIDE}")
        if (self.width is None) != (self.height is None):
            raise RequestError("give both width and height, or neither")
        low, high = STYLE_WEIGHT_RANGE
        for name, weight in self.style_weights or ():
            if not low <= weight <= high:  # also refuses nan
                raise RequestError(f"style {name}: weight {weight:g} must be between {low:g} and {high:g}")
        if not self.seeds:
            raise RequestError("no seed given")
        for seed in self.seeds:
            if not 0 <= seed <= MAX_SEED:
                raise RequestError(f"seed {seed} must be between 0 and {MAX_SEED}")


def style_adapter_name(index: int) -> str:
    """The engine's name for the style LoRA at this index of ModelPaths.styles; requests weight it by it."""
    return f"style-{index}"


@dataclass(frozen=True, kw_only=True)
class Timings:
    """Seconds spent on one image, split as the grid shows it."""

    text_encoding: float  # the encoding this image used; shared by a comparison's modes
    switch: float  # making this mode current (scheduler, adapters, UNet)
    denoising: float
    per_step: tuple[float, ...]
    decode: float

    @property
    def total(self) -> float:
        return self.text_encoding + self.switch + self.denoising + self.decode


@dataclass(frozen=True, kw_only=True)
class ModeResult:
    """One finished image with what it cost and exactly how it was made."""

    mode: str
    seed: int
    steps: int
    guidance: float
    scheduler: str
    timesteps: tuple[float, ...]
    eta: float | None = None  # passed to the pipeline call (TCD's gamma); None where the mode has none
    timings: Timings
    image: RGBImage = field(repr=False)
    warnings: tuple[str, ...] = ()
    text_encoding_shared: bool = False  # True when an earlier mode of the same comparison paid for it
    styles: tuple[tuple[str, float], ...] = ()  # style LoRAs active on this image, with weights
    # A LoRA mode's route: "fused" (its LoRA fused into the slot, as its model card runs it) or
    # "unfused" (its speed is then the unfused route's, not the method's); None without a LoRA.
    lora_route: str | None = None


@dataclass(frozen=True, kw_only=True)
class Progress:
    """One denoising step done; preview is a small RGB picture of the latents when asked for."""

    mode: str
    seed: int
    step: int  # 1-based
    total: int
    preview: RGBImage | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class SkippedMode:
    mode: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ComparisonResult:
    request: GenerationRequest
    results: tuple[ModeResult, ...]
    skipped: tuple[SkippedMode, ...] = ()
    width: int
    height: int

    @property
    def text_encoding_total(self) -> float:
        return sum(r.timings.text_encoding for r in self.results if not r.text_encoding_shared)
