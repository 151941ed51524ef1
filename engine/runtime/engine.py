"""The engine: owns every model on the device and runs comparisons of modes on one prompt.

The base pipeline (text encoders, VAE, base UNet) is loaded once. The LCM-LoRA and the Lightning
LoRA are loaded once, each as a named adapter in a twin of the base UNet that shares its weight
tensors. The LCM and Lightning UNets are separate UNet objects. Every UNet sits in a light pipeline
that shares the base's text encoders, tokenizers and VAE (the same tensors, not copies), so a mode
switch is a choice of pipeline plus a scheduler, and reads no file. A pipeline per UNet, rather
than assigning pipe.unet, keeps adapters with the UNet they were loaded into (after
`pipe.unet = other`, set_adapters silently applies to the text encoders only). A whole pipeline
(SDXL-Turbo) shares the base's text encoders and VAE where they are equal bit for bit; where they
differ it keeps its own, loaded once, and its mode encodes and decodes with them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import torch

from engine.contract.errors import JobCancelled, RequestError
from engine.contract.info import EngineInfo, MemoryReport, ModelMemory, StyleInfo
from engine.contract.modes import MODES, GuidanceKind, ModeFile, ModelRole, ModeSpec
from engine.contract.placement import (
    GIB,
    LoraRoute,
    Measure,
    Part,
    Step,
    comparison_order,
    own_text_part,
    own_vae_part,
)
from engine.contract.placement_text import size_text
from engine.contract.request import (
    ComparisonResult,
    GenerationRequest,
    ModeResult,
    ModeSettings,
    Progress,
    SkippedMode,
    style_adapter_name,
)
from engine.contract.residency import Residency
from engine.files.model_files import FileKind, ModelFile, check_style_lora, check_vae, steps_in_name
from engine.files.model_paths import ModelPaths
from engine.files.part_sizes import full_unet_size
from engine.files.resources import sdxl_config_dir
from engine.outputs.comparison_files import RunContext
from engine.runtime.collector import collector_quiet
from engine.runtime.denoise import PromptEmbeddings, ResolvedMode, denoise, pipeline_key
from engine.runtime.device import DevicePlan, plan_device, synchronize
from engine.runtime.fused_slot import CannotFuseError, FusedSlot, slot_bytes
from engine.runtime.libraries import quiet_diffusers
from engine.runtime.loading import (
    PipelineParts,
    SDXLPipeline,
    load_base,
    load_full_unet,
    load_lora,
    load_pipeline,
    load_vae,
    share_weights,
)
from engine.runtime.memory import available_ram, free_device_bytes, memory_report, release_freed_memory
from engine.runtime.placer import PartHandle, build_placer, dtype_name, forced_measures, set_tiling
from engine.runtime.run_context import LoadedFiles, file_hashes, label_and_note, run_context
from engine.runtime.styles import AdapterState, LoadedStyle, active_styles, load_style

diffusers = quiet_diffusers()

ProgressCallback = Callable[[Progress], None]
ResultCallback = Callable[[ModeResult], None]
CancelCheck = Callable[[], bool]
StatusCallback = Callable[[str], None]


def _option(role: str) -> str:
    """How the user gave a role's file: its own option, or --model ROLE=."""
    return f"--{role}" if role in set(ModelRole) else f"--model {role}="


def _unet_label(role: str) -> str:
    """A full UNet as the status line names it: its first mode's title ("LCM UNet", "Lightning UNet")."""
    title = next((s.title for s in MODES.values() if s.unet_role == role), role)
    return title.removeprefix("SDXL-")


log = logging.getLogger(__name__)

# Whose text encoders encode ("base", or a whole pipeline's role where its own differ from the base's),
# and the styles patching them, with their weights.
TextState = tuple[str, tuple[tuple[str, float], ...]]


@dataclass
class SharedEncodings:
    """One prompt's encodings kept from one run to the next: a bench that runs mode by mode encodes each
    prompt once for all its modes, as a comparison does.

    with_negative: encode the negative prompt too. Set it as a comparison of all the modes served
    would (True when any of them uses CFG), so each mode gets the very embeddings compare gives it."""

    prompt: str
    negative_prompt: str
    with_negative: bool
    by_text_state: dict[TextState, PromptEmbeddings] = field(default_factory=dict)


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
        lora_route: LoraRoute = LoraRoute.AUTO,
    ) -> None:
        """vram: GiB of free device memory to plan for, instead of measuring it (for tests, and for
        sharing a card). measures/tile: a placement forced as it is (tests). lora_route: whether the
        LoRA modes run fused in the slot, unfused on their twins, or as the plan says (auto)."""
        say = on_status or (lambda _message: None)
        self.plan = plan or plan_device()
        self.paths = paths
        self.files: dict[str, ModelFile] = paths.checked()
        if ModelRole.BASE not in self.files:
            raise RequestError("no base model given: every mode needs the SDXL base (--base)")
        device, dtype = self.plan.device, self.plan.dtype
        # On the CPU without --vram, RAM is the device: the plan is made for the RAM available before
        # any weight is loaded. --vram, or measures forced as they are (tests), keep planning for a
        # card of that size, its moves being no-ops on the CPU.
        ram = device.type == "cpu" and vram is None and measures is None
        ram_free = available_ram() if ram else None
        base_info = self.files[ModelRole.BASE]
        # Configs for single files: the base folder itself when it is one, else the shipped SDXL set.
        self.config_dir = paths.base_config or (
            base_info.path if base_info.kind is FileKind.SDXL_FOLDER else sdxl_config_dir()
        )
        kinds = MODES.role_files()
        # Every role's own UNet: a full distilled UNet's, or a whole pipeline's (SDXL-Turbo).
        unet_roles = [r for r in self.files if kinds.get(r) in (ModeFile.UNET, ModeFile.PIPELINE)]
        lora_roles = [r for r in self.files if kinds.get(r) is ModeFile.LORA]
        parts_total = 1 + (paths.vae is not None) + len(unet_roles) + len(lora_roles) + len(paths.styles)
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
        # One pipeline per role: "base", each full UNet's role, each LoRA's role (its twin).
        self.pipes: dict[str, Any] = {ModelRole.BASE: self.base}

        def read_unet(role: str, progress: Callable[[float], None] | None) -> Any:
            return load_full_unet(
                self.files[role], _option(role), self.base.unet, self.config_dir, cpu, dtype, progress
            )

        # Each whole pipeline's components: the base's text encoders and VAE where equal, else its own.
        # A whole pipeline is read at start: its parts are compared with the base's once, not at each
        # switch. On the CPU RAM is the device, and a plain full UNet can wait on disk: none is read
        # now; the plan below says which are read at once (settle) and which when their mode runs.
        self.pipelines: dict[str, PipelineParts] = {}
        on_disk: dict[str, PartHandle] = {}
        for role in unet_roles:
            if kinds[role] is ModeFile.PIPELINE:
                parts = load_pipeline(
                    self.files[role],
                    _option(role),
                    self.base,
                    self.config_dir,
                    cpu,
                    dtype,
                    loading(f"the {_unet_label(role)}"),
                    replacement_vae=paths.vae is not None,
                )
                self.pipelines[role] = parts
                self.pipes[role] = self._pipeline_of(parts)
            elif ram:
                # Its header now; its tensors when the plan first reads it (at once if it fits in RAM),
                # under the same status line, so that the status bar still follows a large file's read.
                progress = loading(f"the {_unet_label(role)}")
                self.pipes[role] = self._pipeline_with(None)
                on_disk[role] = self._disk_handle(role, read_unet, progress)
            else:
                unet = read_unet(role, loading(f"the {_unet_label(role)}"))
                self.pipes[role] = self._pipeline_with(unet)
        self._on_disk = {role: handle.size for role, handle in on_disk.items()}
        # Each distillation LoRA gets its own twin of the base UNet: the same weight tensors (no
        # copy), its own peft wrappers. Switching between base, LCM-LoRA and Lightning LoRA is then
        # a choice of pipeline, with no adapter toggling (set_adapters costs 10 to 20 ms on every
        # switch) and no wrapper overhead on the reference mode. Nothing may fuse into a twin: it
        # would write into the shared base weights.
        for role in lora_roles:
            loading(f"the {role}")
            pipe = self._pipeline_with(share_weights(self.base.unet))
            load_lora(pipe, self.files[role], str(role), _option(role).rstrip("="))
            self.pipes[role] = pipe
        self.lora_roles = tuple(lora_roles)
        # The fused slot: one more twin, into which the running LoRA mode's LoRA (whichever LoRA role
        # it is) is fused at the mode's lora_scale (its own tensors only where that LoRA touches a
        # layer). Built before the styles, which it carries unfused like every twin
        # (engine.runtime.fused_slot says why).
        self.slot: FusedSlot | None = None
        self.slot_pipe: Any = None
        if lora_roles and lora_route is not LoraRoute.UNFUSED:
            self.slot_pipe = self._pipeline_with(share_weights(self.base.unet))
            self.slot = FusedSlot(self.slot_pipe.unet, self.base.unet)
        twins = [self.pipes[r] for r in lora_roles] + ([self.slot_pipe] if self.slot_pipe is not None else [])
        self.styles: list[LoadedStyle] = []
        for index, style in enumerate(paths.styles):
            loading(f"style LoRA {style.path.name}")
            info = check_style_lora(style.path)
            self.styles.append(load_style(self.base, twins, info, style_adapter_name(index), style.weight))
        self.loaded = LoadedFiles(
            files=self.files,
            vae=paths.vae,
            builtin=paths.builtin,
            config_dir=self.config_dir,
            styles=tuple((s.name, s.file.path) for s in self.styles),
            plan=self.plan,
        )
        free = int(vram * GIB) if vram is not None else ram_free if ram else free_device_bytes(device)
        # The slot is reused by every LoRA mode: it needs room for the largest of their LoRAs.
        slot_size = max(
            (slot_bytes(self.base.unet, self.pipes[r].unet, str(r)) for r in lora_roles), default=0
        )
        self.placer = build_placer(
            self.base,
            {r: self.pipes[r].unet for r in lora_roles},
            {r: self.pipes[r].unet for r in unet_roles if r not in on_disk},
            device_of=lambda: self.plan.device,
            dtype=self.plan.dtype,
            free_bytes=free,
            forced=forced_measures(residency, free, measures),
            forced_tile=tile,
            slot=self.slot_pipe.unet if self.slot_pipe is not None else None,
            # The slot is reused by every LoRA mode: it needs room for the largest of their LoRAs.
            slot_bytes=slot_size,
            lora_route=lora_route,
            ram=ram,
            on_disk=on_disk,
            own=self._own_parts(),
        )
        self._adapters = AdapterState()
        self._schedulers: dict[str, Any] = {}
        self.native_size = (
            self.base.default_sample_size * self.base.vae_scale_factor,
            self.base.default_sample_size * self.base.vae_scale_factor,
        )
        say("placing the models" + ("" if device.type == "cpu" else f" on {device}"))
        self.replan(*self.native_size, self.available_modes())
        self.lora_route_reason: str | None = None
        if ram and lora_route is LoraRoute.AUTO and self.slot is not None and not self.placer.fused:
            # The slot is planned in RAM like every other part: with the full UNets on disk if need be.
            self.lora_route_reason = (
                f"the fused slot ({size_text(slot_size)}) does not fit the {size_text(free or 0)} of RAM"
                " available, even with the full UNets waiting on disk: the LoRA modes run unfused"
            )
        for warning in self.placement_warnings():
            say(f"warning: {warning}")
        self.placer.settle()
        say("ready")

    # --- placement ------------------------------------------------------------------------------

    def _disk_handle(
        self,
        role: str,
        read: Callable[[str, Callable[[float], None] | None], Any],
        first_progress: Callable[[float], None] | None = None,
    ) -> PartHandle:
        """A full UNet that waits on disk as a plan part: read by the very load route that loads it at
        start elsewhere (the same bytes, so the same images), dropped so that its RAM comes back.
        first_progress: the loading status of its first read (later reads are mode switches)."""
        pipe = self.pipes[role]
        pending = [first_progress] if first_progress is not None else []

        def load(_device: torch.device) -> None:
            if pipe.unet is None:
                pipe.unet = read(role, pending.pop() if pending else None)

        def drop() -> None:
            pipe.unet = None
            release_freed_memory()

        size = full_unet_size(self.files[role]).bytes_in(dtype_name(self.plan.dtype))
        return PartHandle(size, load, drop)

    def unet_loaded(self, role: str) -> bool:
        """Is this role's full UNet in memory now (not waiting on disk)?"""
        return self.pipes[role].unet is not None

    def replan(
        self, width: int, height: int, modes: tuple[str, ...], guidance: tuple[tuple[str, float], ...] = ()
    ) -> None:
        """The plan for this image size, these modes and their guidance (the activations grow with
        the size, and double under CFG)."""
        self.placer.replan(width, height, modes, guidance)
        for vae in (self.base.vae, *(p.vae for p in self.pipelines.values() if p.own_vae)):
            set_tiling(vae, self.placer.placement.tile, self.base.vae_scale_factor)
        if self.slot is not None and not self.placer.fused:
            self.slot.clear()  # the plan runs the LoRA modes unfused: the slot gives its memory back

    def running_pipe(self, spec: ModeSpec) -> Any:
        """The pipeline that denoises a mode: the fused slot's for a LoRA mode the plan runs fused,
        else the mode's own (pipeline_key)."""
        if spec.adapter is not None and self.slot is not None and self.placer.fused:
            return self.slot_pipe
        return self.pipes[pipeline_key(spec)]

    def lora_route_of(self, mode: str) -> LoraRoute | None:
        """How a mode's LoRA runs under the plan in force; None for a mode without one."""
        if MODES[mode].adapter is None:
            return None
        return LoraRoute.FUSED if self.slot is not None and self.placer.fused else LoraRoute.UNFUSED

    def placement_warnings(self) -> list[str]:
        placement = self.placer.placement
        if placement.fits or self.placer.basis.forced is not None:
            return [self.lora_route_reason] if self.lora_route_reason else []
        if placement.inputs.ram:
            return [
                f"the models do not fit the {size_text(placement.inputs.free_bytes)} of RAM available at"
                f" {placement.inputs.width}x{placement.inputs.height} even with the full UNets waiting on"
                " disk (fewstep plan shows why); expect the system to swap or the process to be killed"
            ]
        return [
            f"the models do not fit {size_text(placement.inputs.free_bytes)} of free GPU memory at"
            f" {placement.inputs.width}x{placement.inputs.height} even with every part waiting in CPU RAM"
            " (fewstep plan shows why); expect the GPU to run out of memory: try a smaller size or fp16"
        ]

    def placement_report(self) -> dict[str, Any]:
        return self.placer.report()

    # --- what can run -------------------------------------------------------------------------

    def _own_parts(self) -> dict[Part, list[Any]]:
        """The whole pipelines' own text encoders and VAEs, as plan parts (none where they are the base's)."""
        own: dict[Part, list[Any]] = {}
        for role, parts in self.pipelines.items():
            if parts.own_text:
                own[own_text_part(role)] = [parts.text_encoder, parts.text_encoder_2]
            if parts.own_vae:
                own[own_vae_part(role)] = [parts.vae]
        return own

    def _pipeline_of(self, parts: PipelineParts) -> Any:
        """A whole pipeline's mode's pipeline: its UNet, with its own text encoders and VAE where they
        differ from the base's, else the base's (the same objects)."""
        return self._sdxl_pipeline(parts, parts.unet, parts.force_zeros_for_empty_prompt)

    def text_key(self, spec: ModeSpec) -> str:
        """Whose text encoders encode a mode's prompt: a whole pipeline's role where its own differ
        from the base's, else the base's."""
        role = spec.unet_role
        parts = self.pipelines.get(role) if role is not None else None
        return str(role) if role is not None and parts is not None and parts.own_text else ModelRole.BASE

    def _pipeline_with(self, unet: Any) -> Any:
        """A pipeline of the base's components around this UNet (None for one that waits on disk)."""
        return self._sdxl_pipeline(self.base, unet, self.base.config.force_zeros_for_empty_prompt)

    def _sdxl_pipeline(self, parts: Any, unet: Any, force_zeros_for_empty_prompt: bool) -> Any:
        """parts: whatever holds the text encoders, their tokenizers and the VAE (the base pipeline, or a
        whole pipeline's PipelineParts). Every pipeline shares the base's scheduler object: the engine
        sets each mode's scheduler before it runs."""
        pipe = SDXLPipeline(
            vae=parts.vae,
            text_encoder=parts.text_encoder,
            text_encoder_2=parts.text_encoder_2,
            tokenizer=parts.tokenizer,
            tokenizer_2=parts.tokenizer_2,
            unet=unet,
            scheduler=self.base.scheduler,
            force_zeros_for_empty_prompt=force_zeros_for_empty_prompt,
            add_watermarker=False,
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def missing_files(self, mode: str) -> tuple[str, ...]:
        """The files a mode needs that were not loaded (empty when it can run)."""
        return tuple(role for role in MODES[mode].required_roles if role not in self.pipes)

    def available_modes(self) -> tuple[str, ...]:
        return tuple(name for name in MODES if not self.missing_files(name))

    def resolve(self, settings: ModeSettings) -> ResolvedMode:
        spec = settings.spec
        file_steps = None
        if spec.steps_fixed_by_file and spec.role is not None:
            info = self.files.get(spec.role)
            file_steps = steps_in_name(info.path) if info is not None else None
        steps = settings.steps or file_steps or spec.default_steps
        guidance = spec.default_guidance if settings.guidance is None else settings.guidance
        eta = spec.eta if settings.eta is None else settings.eta
        return ResolvedMode(
            spec=spec,
            steps=steps,
            guidance=guidance,
            file_steps=file_steps,
            eta=eta,
            timesteps=spec.timesteps_for(steps),
        )

    # --- switching ----------------------------------------------------------------------------

    def _scheduler_for(self, spec: ModeSpec) -> Any:
        scheduler = self._schedulers.get(spec.name)
        if scheduler is None:
            overrides = dict(spec.scheduler_overrides)
            unet_info = self.files.get(spec.unet_role) if spec.unet_role is not None else None
            if unet_info is not None and unet_info.x0_prediction:
                # Lightning's 1-step UNet predicts the clean image; only its name says so.
                overrides["prediction_type"] = "sample"
            scheduler_class = getattr(diffusers, spec.scheduler)
            # A whole pipeline's modes start from its own scheduler config, as its card's pipeline does.
            parts = self.pipelines.get(spec.unet_role) if spec.unet_role is not None else None
            config = parts.scheduler_config if parts is not None else self.original_scheduler_config
            scheduler = scheduler_class.from_config(config, **overrides)
            self._schedulers[spec.name] = scheduler
        return scheduler

    def switch_to(self, mode: str, styles: tuple[tuple[str, float], ...] = ()) -> float:
        """Make a mode current, with these styles on its base UNet; returns the seconds it took.
        Reads no file."""
        spec = MODES[mode]
        if missing := self.missing_files(mode):
            raise RequestError(f"mode {mode} needs {', '.join(_option(r).rstrip('=') for r in missing)}")
        start = time.perf_counter()
        pipe = self.running_pipe(spec)
        pipe.scheduler = self._scheduler_for(spec)
        # What the plan moves for this mode (a full distilled UNet in, another out...) is part of
        # its switch time.
        self.placer.prepare(Step.DENOISE, mode)
        fused = pipe is self.slot_pipe
        if fused and self.slot is not None and spec.adapter is not None:
            # A fuse is a switch too: its seconds are in this one, its bytes in the placer's fuses.
            # Fused at the mode's lora_scale, as diffusers' fuse_lora(lora_scale=...) fuses it.
            try:
                cost = self.slot.fuse(spec.adapter, self.pipes[spec.adapter].unet, spec.lora_scale)
            except CannotFuseError as exc:
                raise RequestError(f"{exc}; run it with --lora-route unfused") from None
            if cost.bytes:
                self.placer.record_fuse(mode, cost.bytes, cost.seconds)
        if spec.on_base_unet and (
            self.styles or (spec.lora_scale != 1.0 and not fused) or self._adapters.touched(pipe.unet)
        ):
            own = ((str(spec.adapter), spec.lora_scale),) if spec.adapter and not fused else ()
            self._adapters.apply_unet(pipe.unet, own + styles, keep_base_flags=pipe is self.base)
        return time.perf_counter() - start

    def memory_report(self) -> MemoryReport:
        """Bytes of weights per model and where they live, plus the process and device totals."""
        report = memory_report(
            self.base,
            self.pipes,
            self.plan.device,
            lora_roles=self.lora_roles,
            where=self.placer.where,
            # The older, coarser name of the plan: do the full distilled UNets wait in CPU RAM?
            residency=Residency.ONE
            if Measure.DISTILLED_UNETS_WAIT in self.placer.measures
            else Residency.ALL,
            placement=self.placer.report(),
            waiting=self._on_disk,
        )
        if self.slot is None or self.slot.fused is None:
            return report
        # The slot's own tensors: the layers the fused LoRA touches (the rest are the base's).
        slot = ModelMemory(
            f"lora slot ({self.slot.fused} fused)", self.slot.bytes, self.placer.where(Part.LORA_SLOT)
        )
        return replace(report, models=(*report.models, slot))

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
            model_label=label_and_note(self.loaded)[0],
            styles=tuple(StyleInfo(s.name, s.file.path.stem) for s in self.styles),
            memory=memory,
        )

    @cached_property
    def file_hashes(self) -> tuple[str | None, dict[str, str]]:
        """A1111's short hashes of the base (a single file only) and of each style; read once."""
        return file_hashes(self.loaded)

    def run_context(self, on_status: StatusCallback | None = None) -> RunContext:
        """What the files this engine's images are saved to should say about their origin. Hashes
        every model file the first time (minutes for SDXL; cached after): call it off the GUI thread."""
        return run_context(self.loaded, self.file_hashes, on_status)

    def _style(self, name: str) -> LoadedStyle:
        return next(s for s in self.styles if s.name == name)

    # --- running ------------------------------------------------------------------------------

    def encode(
        self, prompt: str, negative_prompt: str, *, with_negative: bool, text_key: str = ModelRole.BASE
    ) -> PromptEmbeddings:
        """text_key: whose text encoders encode it (Engine.text_key): the base's, or a whole pipeline's own."""
        start = time.perf_counter()
        with torch.inference_mode():
            embeds = self.pipes[text_key].encode_prompt(
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

    def needs_negative(self, modes: Iterable[ModeSettings]) -> bool:
        """Whether a run of these modes encodes the negative prompt: any CFG above 1 outside a UNet
        that takes guidance as an embedding (LCM's)."""
        resolved = [self.resolve(s) for s in modes]
        return any(r.guidance > 1.0 and r.spec.guidance_kind is not GuidanceKind.EMBEDDING for r in resolved)

    def plan_order(self, modes: Iterable[ModeSettings]) -> list[ModeSettings]:
        """Cheapest switches first: schedulers (free) and adapter toggles on the base UNet, then the
        full UNets. The results are still reported in the order asked for."""

        chosen = list(modes)
        fused = self.slot.fused if self.slot is not None and self.placer.fused else None
        # Where the full UNets wait on disk, the one still loaded runs first: no read for it.
        loaded = next((r for r, _size in self._on_disk.items() if self.unet_loaded(r)), None)
        order = comparison_order((s.mode for s in chosen), fused, loaded)
        return sorted(chosen, key=lambda s: order.index(s.mode))

    def run(
        self,
        request: GenerationRequest,
        *,
        on_progress: ProgressCallback | None = None,
        on_result: ResultCallback | None = None,
        should_cancel: CancelCheck | None = None,
        prompt_encodings: SharedEncodings | None = None,
    ) -> ComparisonResult:
        """Every requested mode times every seed, from the same initial noise per seed.

        prompt_encodings: the prompt's encodings from earlier runs, reused and filled (SharedEncodings).

        Raises JobCancelled when should_cancel() turns true; results delivered before stay valid and
        the engine stays usable.
        """
        request.validate()
        cancelled = should_cancel or (lambda: False)
        runnable: list[ModeSettings] = []
        skipped: list[SkippedMode] = []
        for settings in request.modes:
            if missing := self.missing_files(settings.mode):
                reason = f"needs {', '.join(_option(r).rstrip('=') for r in missing)}"
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
        # An LCM UNet takes guidance as an embedding: no negative pass however high it is.
        with_negative = any(
            r.guidance > 1.0 and r.spec.guidance_kind is not GuidanceKind.EMBEDDING for r in resolved.values()
        )
        kept = prompt_encodings
        if kept is not None:
            if (kept.prompt, kept.negative_prompt) != (request.prompt, request.negative_prompt):
                raise ValueError("prompt_encodings of another prompt")
            if with_negative and not kept.with_negative:
                raise ValueError("these modes use CFG: prompt_encodings need the negative prompt")
            with_negative = kept.with_negative
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
        # full distilled UNets run without it, or where a whole pipeline brings text encoders of its own.
        encodings: dict[TextState, PromptEmbeddings] = {} if kept is None else kept.by_text_state
        results: dict[tuple[str, int], ModeResult] = {}
        guidance = tuple(sorted((name, r.guidance) for name, r in resolved.items()))
        self.replan(width, height, tuple(s.mode for s in runnable), guidance)
        self.placer.moves.clear()
        self.placer.fuses.clear()
        for settings in self.plan_order(runnable):
            if cancelled():
                raise JobCancelled
            mode = resolved[settings.mode]
            mode_styles = styles_on if mode.spec.on_base_unet else ()
            text_key = self.text_key(mode.spec)
            text_state = (
                text_key,
                tuple((n, w) for n, w in mode_styles if self._style(n).patches_text_encoders),
            )
            shared = text_state in encodings
            if not shared:
                # Encoded before the switch, as the plan has it: on a small card the text encoders
                # come in while the previous mode's UNet may already have left.
                start = time.perf_counter()
                self.placer.prepare(Step.ENCODE, settings.mode)
                moving = time.perf_counter() - start
                if text_key == ModelRole.BASE and any(s.patches_text_encoders for s in self.styles):
                    self._adapters.apply_text(
                        (self.base.text_encoder, self.base.text_encoder_2), text_state[1]
                    )
                encoded = self.encode(
                    request.prompt, request.negative_prompt, with_negative=with_negative, text_key=text_key
                )
                encodings[text_state] = replace(encoded, seconds=encoded.seconds + moving)
            switch_seconds = self.switch_to(settings.mode, mode_styles)
            embeddings = encodings[text_state]
            for seed_index, seed in enumerate(request.seeds):
                result = denoise(
                    self.running_pipe(mode.spec),
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
                    placer=self.placer,
                    device=self.plan.device,
                )
                if (route := self.lora_route_of(settings.mode)) is not None:
                    result = replace(result, lora_route=str(route))
                results[(settings.mode, seed)] = result
                if on_result is not None:
                    on_result(result)
        ordered = tuple(results[(s.mode, seed)] for seed in request.seeds for s in runnable)
        return ComparisonResult(
            request=request, results=ordered, skipped=tuple(skipped), width=width, height=height
        )
