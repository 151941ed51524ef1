"""The engine: owns every model on the device and runs comparisons of modes on one prompt.

The base pipeline (text encoders, VAE, base UNet) is loaded once. The LCM-LoRA and the Lightning
LoRA are loaded once, each as a named adapter in a twin of the base UNet that shares its weight
tensors. The LCM and Lightning UNets are separate UNet objects. Every UNet sits in a light pipeline
that shares the base's text encoders, tokenizers and VAE (the same tensors, not copies), so a mode
switch is a choice of pipeline plus a scheduler, and reads no file. A pipeline per UNet, rather
than assigning pipe.unet, keeps adapters with the UNet they were loaded into (after
`pipe.unet = other`, set_adapters silently applies to the text encoders only).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.contract.errors import JobCancelled, RequestError
from engine.contract.info import EngineInfo, MemoryReport, ModelMemory, StyleInfo
from engine.contract.modes import MODES, ModelRole, ModeSpec, UNetSource, contract_warnings
from engine.contract.placement import GIB, Measure, Part, Step, comparison_order
from engine.contract.placement_text import size_text
from engine.contract.request import (
    ComparisonResult,
    GenerationRequest,
    ModeResult,
    ModeSettings,
    Progress,
    SkippedMode,
    Timings,
    style_adapter_name,
)
from engine.contract.residency import Residency
from engine.files.builtin import builtin_label, builtin_note
from engine.files.model_files import FileKind, ModelFile, ModelPaths, check_style_lora, check_vae
from engine.files.resources import sdxl_config_dir
from engine.outputs.comparison_files import RunContext
from engine.outputs.hash_cache import lora_hash, model_hash
from engine.runtime.collector import collector_quiet
from engine.runtime.decoding import decode_upcast, looks_failed
from engine.runtime.device import DevicePlan, plan_device, synchronize
from engine.runtime.libraries import quiet_diffusers
from engine.runtime.loading import (
    SDXLPipeline,
    load_base,
    load_lcm_unet,
    load_lightning_unet,
    load_lora,
    load_vae,
    share_weights,
)
from engine.runtime.placer import build_placer, forced_measures, set_tiling
from engine.runtime.previews import latent_preview
from engine.runtime.styles import AdapterState, LoadedStyle, active_styles, load_style

diffusers = quiet_diffusers()

ProgressCallback = Callable[[Progress], None]
ResultCallback = Callable[[ModeResult], None]
CancelCheck = Callable[[], bool]
StatusCallback = Callable[[str], None]

_UNET_ROLES = {UNetSource.LCM: ModelRole.LCM_UNET, UNetSource.LIGHTNING: ModelRole.LIGHTNING_UNET}


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


log = logging.getLogger(__name__)


def module_bytes(module: Any) -> int:
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


def free_device_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        # Memory torch's caching allocator holds but no tensor uses (a previous engine's, after a
        # reload) is free to this process though the driver counts it as taken.
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached)
    return None


def process_rss() -> int | None:
    """Resident memory of this process, where the OS tells it cheaply (Linux)."""
    try:
        with Path("/proc/self/statm").open(encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def pipeline_key(spec: ModeSpec) -> UNetSource | ModelRole:
    """Which of the engine's pipelines runs a mode: the adapter's twin, else the mode's UNet."""
    return spec.adapter or spec.unet


class Engine:
    """Every model on the device; one comparison at a time (the caller serialises jobs)."""

    @collector_quiet(
        loads_models=True
    )  # loading must not stall the window's thread (see engine.runtime.collector)
    def __init__(
        self,
        paths: ModelPaths,
        plan: DevicePlan | None = None,
        *,
        on_status: StatusCallback | None = None,
        residency: Residency = Residency.AUTO,
        vram: float | None = None,
        measures: Iterable[Measure] | None = None,
        tile: int | None = None,
    ) -> None:
        """vram: GiB of free device memory to plan for, instead of measuring it (for tests, and for
        sharing a card). measures/tile: a placement forced as it is (tests)."""
        say = on_status or (lambda _message: None)
        self.plan = plan or plan_device()
        self.paths = paths
        self.files: dict[ModelRole, ModelFile] = paths.checked()
        if ModelRole.BASE not in self.files:
            raise RequestError("no base model given: every mode needs the SDXL base (--base)")
        device, dtype = self.plan.device, self.plan.dtype
        base_info = self.files[ModelRole.BASE]
        # Configs for single files: the base folder itself when it is one, else the shipped SDXL set.
        self.config_dir = paths.base_config or (
            base_info.path if base_info.kind is FileKind.SDXL_FOLDER else sdxl_config_dir()
        )
        optional = (
            ModelRole.LCM_UNET,
            ModelRole.LIGHTNING_UNET,
            ModelRole.LCM_LORA,
            ModelRole.LIGHTNING_LORA,
        )
        parts_total = 1 + (paths.vae is not None) + sum(r in self.files for r in optional) + len(paths.styles)
        parts_done = [0]

        def loading(what: str) -> Callable[[float], None]:
            """The status line while loading: which part, how far along the parts, and then how
            far into a large file's tensors (the GUI's status bar shows it)."""
            parts_done[0] += 1
            line = f"loading {what} (part {parts_done[0]} of {parts_total})"
            say(line)
            shown = [0]

            def progress(fraction: float) -> None:
                tenth = int(fraction * 10)
                if tenth > shown[0] and tenth < 10:
                    shown[0] = tenth
                    say(f"{line}: {tenth * 10}%")

            return progress

        # Everything loads into CPU RAM first; the placement plan then moves onto the device what it
        # keeps there (a card smaller than the whole base pipeline could not take it in one piece).
        cpu = torch.device("cpu")
        progress = loading("the base model")
        self.base = load_base(base_info, cpu, dtype, self.config_dir, progress)
        if paths.vae is not None:
            loading("the VAE")
            # Before any other pipeline is built: they all share the base's VAE object.
            self.base.vae = load_vae(check_vae(paths.vae), self.config_dir, cpu, dtype)
        # Kept at load time: every scheduler is built from it, never from the scheduler in use,
        # whose config would carry e.g. trailing spacing into the next mode and silently change its images.
        self.original_scheduler_config = self.base.scheduler.config
        self.pipes: dict[UNetSource | ModelRole, Any] = {UNetSource.BASE: self.base}
        if (info := self.files.get(ModelRole.LCM_UNET)) is not None:
            progress = loading("the LCM UNet")
            self.pipes[UNetSource.LCM] = self._pipeline_with(load_lcm_unet(info, cpu, dtype, progress))
        if (info := self.files.get(ModelRole.LIGHTNING_UNET)) is not None:
            progress = loading("the Lightning UNet")
            self.pipes[UNetSource.LIGHTNING] = self._pipeline_with(
                load_lightning_unet(info, self.base.unet, self.config_dir, cpu, dtype, progress)
            )
        # Each distillation LoRA gets its own twin of the base UNet: the same weight tensors (no
        # copy), its own peft wrappers. Switching between base, LCM-LoRA and Lightning LoRA is then
        # a choice of pipeline, with no adapter toggling (set_adapters costs 10 to 20 ms on every
        # switch) and no wrapper overhead on the reference mode. Nothing may fuse into a twin: it
        # would write into the shared base weights.
        for role in (ModelRole.LCM_LORA, ModelRole.LIGHTNING_LORA):
            if (info := self.files.get(role)) is not None:
                loading(f"the {role}")
                pipe = self._pipeline_with(share_weights(self.base.unet))
                load_lora(pipe, info, str(role), f"--{role}")
                self.pipes[role] = pipe
        twins = [self.pipes[r] for r in (ModelRole.LCM_LORA, ModelRole.LIGHTNING_LORA) if r in self.pipes]
        self.styles: list[LoadedStyle] = []
        for index, style in enumerate(paths.styles):
            loading(f"style LoRA {style.path.name}")
            info = check_style_lora(style.path)
            self.styles.append(load_style(self.base, twins, info, style_adapter_name(index), style.weight))
        free = int(vram * GIB) if vram is not None else free_device_bytes(device)
        self.placer = build_placer(
            self.base,
            {
                r: self.pipes[r].unet
                for r in (ModelRole.LCM_LORA, ModelRole.LIGHTNING_LORA)
                if r in self.pipes
            },
            {k: self.pipes[k].unet for k in (UNetSource.LCM, UNetSource.LIGHTNING) if k in self.pipes},
            device_of=lambda: self.plan.device,
            dtype=self.plan.dtype,
            free_bytes=free,
            forced=forced_measures(residency, free, measures),
            forced_tile=tile,
        )
        self._adapters = AdapterState()
        self._schedulers: dict[str, Any] = {}
        self.native_size = (
            self.base.default_sample_size * self.base.vae_scale_factor,
            self.base.default_sample_size * self.base.vae_scale_factor,
        )
        say("placing the models" + ("" if device.type == "cpu" else f" on {device}"))
        self.replan(*self.native_size, self.available_modes())
        for warning in self.placement_warnings():
            say(f"warning: {warning}")
        self.placer.settle()
        say("ready")

    # --- placement ------------------------------------------------------------------------------

    def replan(self, width: int, height: int, modes: tuple[str, ...]) -> None:
        """The plan for this image size and these modes (the activations grow with the size)."""
        self.placer.replan(width, height, modes)
        set_tiling(self.base.vae, self.placer.placement.tile, self.base.vae_scale_factor)

    @property
    def residency(self) -> Residency:
        """The older, coarser name of the plan: do the full distilled UNets wait in CPU RAM?"""
        return Residency.ONE if Measure.DISTILLED_UNETS_WAIT in self.placer.measures else Residency.ALL

    def placement_warnings(self) -> list[str]:
        placement = self.placer.placement
        if placement.fits or self.placer.basis.forced is not None:
            return []
        return [
            f"the models do not fit {size_text(placement.inputs.free_bytes)} of free GPU memory at"
            f" {placement.inputs.width}x{placement.inputs.height} even with every part waiting in CPU RAM"
            " (fewstep plan shows why); expect the GPU to run out of memory: try a smaller size or fp16"
        ]

    def placement_report(self) -> dict[str, Any]:
        return self.placer.report()

    # --- what can run -------------------------------------------------------------------------

    def _pipeline_with(self, unet: Any) -> Any:
        base = self.base
        pipe = SDXLPipeline(
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

    def missing_files(self, mode: str) -> tuple[ModelRole, ...]:
        """The files a mode needs that were not given (empty when it can run)."""
        return tuple(role for role in MODES[mode].required_roles if role not in self.files)

    def available_modes(self) -> tuple[str, ...]:
        return tuple(name for name in MODES if not self.missing_files(name))

    def resolve(self, settings: ModeSettings) -> ResolvedMode:
        spec = settings.spec
        file_steps = None
        if spec.steps_fixed_by_file:
            role = spec.adapter or _UNET_ROLES.get(spec.unet)
            info = self.files.get(role) if role is not None else None
            file_steps = info.lightning_steps if info is not None else None
        steps = settings.steps or file_steps or spec.default_steps
        guidance = spec.default_guidance if settings.guidance is None else settings.guidance
        return ResolvedMode(spec=spec, steps=steps, guidance=guidance, file_steps=file_steps)

    # --- switching ----------------------------------------------------------------------------

    def _scheduler_for(self, spec: ModeSpec) -> Any:
        scheduler = self._schedulers.get(spec.name)
        if scheduler is None:
            overrides = dict(spec.scheduler_overrides)
            unet_info = self.files.get(_UNET_ROLES[spec.unet]) if spec.unet in _UNET_ROLES else None
            if unet_info is not None and unet_info.x0_prediction:
                # Lightning's 1-step UNet predicts the clean image; only its name says so.
                overrides["prediction_type"] = "sample"
            scheduler_class = getattr(diffusers, spec.scheduler)
            scheduler = scheduler_class.from_config(self.original_scheduler_config, **overrides)
            self._schedulers[spec.name] = scheduler
        return scheduler

    def switch_to(self, mode: str, styles: tuple[tuple[str, float], ...] = ()) -> float:
        """Make a mode current, with these styles on its base UNet; returns the seconds it took.
        Reads no file."""
        spec = MODES[mode]
        if missing := self.missing_files(mode):
            raise RequestError(f"mode {mode} needs {', '.join('--' + r for r in missing)}")
        start = time.perf_counter()
        pipe = self.pipes[pipeline_key(spec)]
        pipe.scheduler = self._scheduler_for(spec)
        # What the plan moves for this mode (a full distilled UNet in, another out...) is part of
        # its switch time.
        self.placer.prepare(Step.DENOISE, mode)
        if self.styles and spec.unet is UNetSource.BASE:
            own = ((str(spec.adapter), 1.0),) if spec.adapter else ()
            self._adapters.apply_unet(pipe.unet, own + styles, keep_base_flags=pipe is self.base)
        return time.perf_counter() - start

    def memory_report(self) -> MemoryReport:
        """Bytes of weights per model and where they live, plus the process and device totals."""
        base = self.base
        where = self.placer.where
        models = [
            ModelMemory(
                "text encoders",
                module_bytes(base.text_encoder) + module_bytes(base.text_encoder_2),
                where(Part.TEXT_ENCODER),
            ),
            ModelMemory("vae", module_bytes(base.vae), where(Part.VAE)),
            ModelMemory("base unet", module_bytes(base.unet), where(Part.BASE_UNET)),
        ]
        for key, pipe in self.pipes.items():
            if key is UNetSource.BASE:
                continue
            if isinstance(key, ModelRole):  # a LoRA twin: only its LoRA matrices are its own
                lora = sum(
                    p.numel() * p.element_size() for n, p in pipe.unet.named_parameters() if "lora_" in n
                )
                models.append(ModelMemory(f"{key} (matrices)", lora, where(Part(str(key)))))
            else:
                on = str(next(pipe.unet.parameters()).device)
                models.append(ModelMemory(f"{key} unet", module_bytes(pipe.unet), on))
        allocated = torch.cuda.memory_allocated(self.plan.device) if self.plan.device.type == "cuda" else None
        return MemoryReport(
            residency=str(self.residency),
            models=tuple(models),
            process_rss=process_rss(),
            device_allocated=allocated,
            placement={k: v for k, v in self.placer.report().items() if k not in ("steps", "moves")},
        )

    def info(self) -> EngineInfo:
        """What this engine can do, for a front end: modes, sizes, styles, memory."""
        available = self.available_modes()
        file_steps = tuple(
            (mode, steps)
            for mode in available
            if (steps := self.resolve(ModeSettings(mode=mode)).file_steps) is not None
        )
        try:
            memory: MemoryReport | None = self.memory_report()
        except Exception:  # a failure to measure is logged, never fatal
            log.exception("the memory report failed")
            memory = None
        return EngineInfo(
            builtin=self.paths.builtin,
            available_modes=available,
            file_steps=file_steps,
            native_size=self.native_size,
            device=self.plan.describe(),
            model_label=self._label_and_note()[0],
            styles=tuple(StyleInfo(s.name, s.file.path.stem) for s in self.styles),
            memory=memory,
        )

    @cached_property
    def _file_hashes(self) -> tuple[str | None, dict[str, str]]:
        """A1111's short hashes of the base (a single file only: a folder has none) and of each style.

        A file read once per version (engine.outputs.hash_cache): a 7 GB checkpoint costs about half a
        minute the first time. Called on the worker's or the CLI's thread, never the GUI's.
        """
        base = self.files[ModelRole.BASE].path
        model: str | None = None
        if not self.paths.builtin and base.is_file():
            with contextlib.suppress(OSError, ValueError):
                model = model_hash(base)
        styles: dict[str, str] = {}
        for style in self.styles:
            with contextlib.suppress(OSError, ValueError):
                styles[style.name] = lora_hash(style.file.path)
        return model, styles

    def run_context(self, on_status: StatusCallback | None = None) -> RunContext:
        """What the files this engine's images are saved to should say about their origin. Hashes
        every model file the first time (minutes for SDXL; cached after): call it off the GUI thread."""
        from engine.runtime.replay import dtype_name, model_file_records, replay_files

        label, note = self._label_and_note()
        styles = {s.name: s.file.path.stem for s in self.styles}
        model, style_hashes = self._file_hashes
        return RunContext(
            model_label=label,
            device=self.plan.describe(),
            note=note,
            style_names=styles,
            model_hash=model,
            style_hashes=style_hashes,
            device_type=self.plan.device.type,
            dtype=dtype_name(self.plan.dtype),
            model_files=model_file_records(self, on_status),
            replay=replay_files(self),
        )

    def _label_and_note(self) -> tuple[str, str]:
        if self.paths.builtin:
            return builtin_label(), builtin_note()
        return self.files[ModelRole.BASE].path.name, ""

    def _style(self, name: str) -> LoadedStyle:
        return next(s for s in self.styles if s.name == name)

    # --- running ------------------------------------------------------------------------------

    def encode(self, prompt: str, negative_prompt: str, *, with_negative: bool) -> PromptEmbeddings:
        start = time.perf_counter()
        with torch.inference_mode():
            embeds = self.base.encode_prompt(
                prompt,
                device=self.plan.device,
                num_images_per_prompt=1,
                do_classifier_free_guidance=with_negative,
                # None, not "", so that an empty negative prompt becomes zeros as SDXL's
                # force_zeros_for_empty_prompt asks, exactly as a plain diffusers call does.
                negative_prompt=negative_prompt or None,
            )
        synchronize(self.plan.device)
        prompt_embeds, negative, pooled, negative_pooled = embeds
        return PromptEmbeddings(prompt_embeds, negative, pooled, negative_pooled, time.perf_counter() - start)

    def plan_order(self, modes: Iterable[ModeSettings]) -> list[ModeSettings]:
        """Cheapest switches first: schedulers (free) and adapter toggles on the base UNet, then the
        full UNets. The results are still reported in the order asked for."""

        chosen = list(modes)
        order = comparison_order(s.mode for s in chosen)
        return sorted(chosen, key=lambda s: order.index(s.mode))

    def run(
        self,
        request: GenerationRequest,
        *,
        on_progress: ProgressCallback | None = None,
        on_result: ResultCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> ComparisonResult:
        """Every requested mode times every seed, from the same initial noise per seed.

        Raises JobCancelled when should_cancel() turns true; results delivered before stay valid and
        the engine stays usable.
        """
        request.validate()
        cancelled = should_cancel or (lambda: False)
        runnable: list[ModeSettings] = []
        skipped: list[SkippedMode] = []
        for settings in request.modes:
            if missing := self.missing_files(settings.mode):
                reason = f"needs {', '.join('--' + r for r in missing)}"
                skipped.append(SkippedMode(mode=settings.mode, reason=reason))
            else:
                runnable.append(settings)
        if not runnable:
            raise RequestError(
                "none of the chosen modes can run: " + "; ".join(f"{s.mode} {s.reason}" for s in skipped)
            )
        width, height = (
            (request.width, request.height) if request.width and request.height else self.native_size
        )
        resolved = {s.mode: self.resolve(s) for s in runnable}
        with_negative = any(r.guidance > 1.0 and r.spec.unet is not UNetSource.LCM for r in resolved.values())
        known = {s.name for s in self.styles}
        for name, _weight in request.style_weights or ():
            if name not in known:
                raise RequestError(
                    f"no style LoRA named {name!r} is loaded ({', '.join(sorted(known)) or 'none'})"
                )
        styles_on = active_styles(
            self.styles, dict(request.style_weights) if request.style_weights is not None else None
        )
        # One encoding per state of the text encoders: the distillation LoRAs never touch them, so
        # usually one for the whole comparison; a second only where a style patches them and the
        # full distilled UNets run without it.
        encodings: dict[tuple[tuple[str, float], ...], PromptEmbeddings] = {}
        results: dict[tuple[str, int], ModeResult] = {}
        self.replan(width, height, tuple(s.mode for s in runnable))
        self.placer.moves.clear()
        for settings in self.plan_order(runnable):
            if cancelled():
                raise JobCancelled
            mode = resolved[settings.mode]
            mode_styles = styles_on if mode.spec.unet is UNetSource.BASE else ()
            text_state = tuple((n, w) for n, w in mode_styles if self._style(n).patches_text_encoders)
            shared = text_state in encodings
            if not shared:
                # Encoded before the switch, as the plan has it: on a small card the text encoders
                # come in while the previous mode's UNet may already have left.
                start = time.perf_counter()
                self.placer.prepare(Step.ENCODE, settings.mode)
                moving = time.perf_counter() - start
                if any(s.patches_text_encoders for s in self.styles):
                    self._adapters.apply_text((self.base.text_encoder, self.base.text_encoder_2), text_state)
                encoded = self.encode(request.prompt, request.negative_prompt, with_negative=with_negative)
                encodings[text_state] = replace(encoded, seconds=encoded.seconds + moving)
            switch_seconds = self.switch_to(settings.mode, mode_styles)
            embeddings = encodings[text_state]
            for seed_index, seed in enumerate(request.seeds):
                result = self._denoise(
                    mode,
                    embeddings,
                    seed=seed,
                    width=width,
                    height=height,
                    negative_prompt=request.negative_prompt,
                    switch_seconds=switch_seconds if seed_index == 0 else 0.0,
                    encoding_shared=shared or seed_index > 0,
                    want_previews=request.want_previews,
                    on_progress=on_progress,
                    cancelled=cancelled,
                    styles=mode_styles,
                )
                results[(settings.mode, seed)] = result
                if on_result is not None:
                    on_result(result)
        ordered = tuple(results[(s.mode, seed)] for seed in request.seeds for s in runnable)
        return ComparisonResult(
            request=request, results=ordered, skipped=tuple(skipped), width=width, height=height
        )

    def _denoise(
        self,
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
    ) -> ModeResult:
        spec = mode.spec
        pipe = self.pipes[pipeline_key(spec)]
        step_times: list[float] = []
        final_latents: list[torch.Tensor] = []

        def step_end(_pipe: Any, index: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            synchronize(self.plan.device)  # the step's time, not its launch time
            step_times.append(time.perf_counter())
            if index == mode.steps - 1:
                final_latents.append(tensors["latents"])
                # The decode follows inside the pipeline call: a VAE that waits in CPU RAM comes in now
                # (its copy counts as decode time). Plain tensors, not inference ones: it moves again.
                with torch.inference_mode(False):
                    self.placer.prepare(Step.DECODE, spec.name)
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

        # Drawn exactly as StableDiffusionXLPipeline draws them from this generator, so plain
        # diffusers with the same seed reproduces every image; LCM's per-step noise follows from it.
        generator = torch.Generator("cpu").manual_seed(seed)
        synchronize(self.plan.device)
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
            )
        image = np.asarray(output.images[0].convert("RGB"), dtype=np.uint8)
        retried = False
        if pipe.vae.dtype != torch.float32 and looks_failed(image) and final_latents:
            image = decode_upcast(pipe, final_latents[-1])
            retried = True
        self.placer.prepare(Step.DECODED, spec.name)
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
            scheduler=type(pipe.scheduler).__name__,
            timesteps=tuple(float(t) for t in pipe.scheduler.timesteps.tolist()),
            timings=timings,
            image=image,
            warnings=warnings,
            text_encoding_shared=encoding_shared,
            styles=styles,
        )
