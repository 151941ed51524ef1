"""One image of one mode: the pipeline call with its step callback (timings, previews, cancel), the fp16
VAE fallback, and the record of what it cost."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import torch

from engine.contract.errors import JobCancelled
from engine.contract.modes import ModelRole, ModeSpec, contract_warnings
from engine.contract.placement import Step
from engine.contract.request import ModeResult, Progress, Timings
from engine.runtime.decoding import decode_upcast, looks_failed
from engine.runtime.device import synchronize
from engine.runtime.placer import Placer
from engine.runtime.previews import latent_preview

ProgressCallback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class PromptEmbeddings:
    prompt: torch.Tensor
    negative: torch.Tensor | None
    pooled: torch.Tensor
    negative_pooled: torch.Tensor | None
    seconds: float


@dataclass(frozen=True)
class ResolvedMode:
    """A mode's settings with defaults filled in from its spec and its file."""

    spec: ModeSpec
    steps: int
    guidance: float
    file_steps: int | None
    eta: float | None = None  # None: not passed, the pipeline's own (0, which only DDIM and TCD read)
    timesteps: tuple[int, ...] | None = None  # the card's explicit list for these steps, if it has one


def pipeline_key(spec: ModeSpec) -> str:
    """Which of the engine's pipelines runs a mode: its file's role (a LoRA's twin, a full UNet's
    pipeline), else the base."""
    return spec.role or ModelRole.BASE


def denoise(
    pipe: Any,
    mode: ResolvedMode,
    embeddings: PromptEmbeddings,
    *,
    seed: int,
    width: int,
    height: int,
    negative_prompt: str,
    switch_seconds: float,
    encoding_shared: bool,
    want_previews: bool,
    on_progress: ProgressCallback | None,
    cancelled: CancelCheck,
    styles: tuple[tuple[str, float], ...],
    placer: Placer,
    device: torch.device,
) -> ModeResult:
    """pipe: the mode's pipeline (pipeline_key); placer: brings the VAE in for the decode and lets it
    go after; device: the one the steps are timed on."""
    spec = mode.spec
    step_times: list[float] = []
    final_latents: list[torch.Tensor] = []

    def step_end(_pipe: Any, index: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        synchronize(device)  # the step's time, not its launch time
        step_times.append(time.perf_counter())
        if index == mode.steps - 1:
            final_latents.append(tensors["latents"])
            # The decode follows inside the pipeline call: a VAE that waits in CPU RAM comes in now
            # (its copy counts as decode time). Plain tensors, not inference ones: it moves again.
            with torch.inference_mode(False):
                placer.prepare(Step.DECODE, spec.name)
        if cancelled():
            # Raising, rather than diffusers' _interrupt flag, skips the VAE decode of a
            # picture nobody will see.
            raise JobCancelled
        if on_progress is not None:
            preview = latent_preview(tensors["latents"]) if want_previews else None
            on_progress(
                Progress(mode=spec.name, seed=seed, step=index + 1, total=mode.steps, preview=preview)
            )
        return {}

    # Passed only where the mode has them, so the call of every other mode is the card's own.
    extra: dict[str, Any] = {}
    if mode.timesteps is not None:
        extra["timesteps"] = list(mode.timesteps)
    if mode.eta is not None:
        extra["eta"] = mode.eta
    # Drawn exactly as StableDiffusionXLPipeline draws them from this generator, so plain
    # diffusers with the same seed reproduces every image; LCM's per-step noise follows from it.
    generator = torch.Generator("cpu").manual_seed(seed)
    synchronize(device)
    start = time.perf_counter()
    # A VAE overflowing in fp16 yields NaN, which numpy warns about when diffusers casts it to
    # uint8; the black image it leaves is detected and decoded again below.
    with torch.inference_mode(), np.errstate(invalid="ignore"):
        output = pipe(
            prompt_embeds=embeddings.prompt,
            negative_prompt_embeds=embeddings.negative,
            pooled_prompt_embeds=embeddings.pooled,
            negative_pooled_prompt_embeds=embeddings.negative_pooled,
            num_inference_steps=mode.steps,
            guidance_scale=mode.guidance,
            width=width,
            height=height,
            generator=generator,
            callback_on_step_end=step_end,
            callback_on_step_end_tensor_inputs=["latents"],
            **extra,
        )
    image = np.asarray(output.images[0].convert("RGB"), dtype=np.uint8)
    retried = False
    if pipe.vae.dtype != torch.float32 and looks_failed(image) and final_latents:
        image = decode_upcast(pipe, final_latents[-1])
        retried = True
    placer.prepare(Step.DECODED, spec.name)
    end = time.perf_counter()
    marks = [start, *step_times]
    timings = Timings(
        text_encoding=embeddings.seconds,
        switch=switch_seconds,
        denoising=step_times[-1] - start,
        per_step=tuple(b - a for a, b in pairwise(marks)),
        decode=end - step_times[-1],
    )
    warnings = contract_warnings(
        spec,
        steps=mode.steps,
        guidance=mode.guidance,
        negative_prompt=negative_prompt,
        file_steps=mode.file_steps,
        eta=mode.eta,
        size=(width, height),
    )
    if retried:
        warnings += (
            "the VAE overflowed in fp16 (a black image), so it was decoded again in fp32; sdxl-vae-fp16-fix avoids this",
        )
    return ModeResult(
        mode=spec.name,
        seed=seed,
        steps=mode.steps,
        guidance=mode.guidance,
        eta=mode.eta,
        scheduler=type(pipe.scheduler).__name__,
        timesteps=tuple(float(t) for t in pipe.scheduler.timesteps.tolist()),
        timings=timings,
        image=image,
        warnings=warnings,
        text_encoding_shared=encoding_shared,
        styles=styles,
    )
