"""Where each model part lives while each mode runs, planned from the free device memory.

Pure and torch-free: the part sizes come from the files' safetensors headers (`fewstep plan`, the
GUI's Models tab) or from the loaded modules (the engine), and all three get the same answer.

A comparison runs in steps: the prompt is encoded once (both text encoders), then each mode
denoises (its UNet, with its LoRA matrices) and decodes (the VAE). The planner tries every
combination of the measures below and keeps the cheapest that fits every step: first one that
needs no tiled decode (tiling changes the picture slightly, at the seams), then the one that moves
the fewest bytes over a whole comparison, then the one with the fewest measures. Moving a part is
exact (the same bytes come back), so it is preferred to tiling.

The sizes are exact (from the headers); the activation figures added to them are estimates
(engine.contract.memory_estimates says how each is counted).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from itertools import combinations
from typing import ClassVar

from engine.contract.memory_estimates import (
    DTYPE_BYTES,
    TILE_SIZES,
    decode_bytes,
    encode_bytes,
    unet_step_bytes,
)
from engine.contract.modes import DEFAULT_COMPARISON, MODES, GuidanceKind, ModeFile, ModelRole

GIB = 1024**3
MIB = 1024**2
# Kept free on the device: the CUDA context is outside the measured free memory already, but the
# caching allocator rounds blocks up and other programs (the desktop) grow. An estimate.
RESERVE_BYTES = 512 * MIB
# Kept free of the available RAM when the device is the CPU (PlanInput.ram).
RAM_RESERVE_BYTES = 2 * GIB


class Part(str):
    """A model part the plan places: one of the fixed parts below, or a distillation file's own
    (a full UNet, a LoRA's matrices), named by its role (``part_of_role``). A str, so that a mode file
    can bring a part no list here names; compared by value."""

    __slots__ = ()

    TEXT_ENCODER: ClassVar[Part]
    TEXT_ENCODER_2: ClassVar[Part]
    STYLE_TEXT: ClassVar[Part]  # a style's text-encoder matrices live in the encoders
    BASE_UNET: ClassVar[Part]
    STYLE_LORAS: ClassVar[Part]  # live in the base UNet's modules; the LoRA twins share them
    VAE: ClassVar[Part]
    LCM_UNET: ClassVar[Part]
    LIGHTNING_UNET: ClassVar[Part]
    LCM_LORA: ClassVar[Part]
    LIGHTNING_LORA: ClassVar[Part]
    LORA_SLOT: ClassVar[Part]

    def __str__(self) -> str:
        return str.__str__(self)


Part.TEXT_ENCODER = Part("text encoder")
Part.TEXT_ENCODER_2 = Part("text encoder 2")
Part.STYLE_TEXT = Part("style LoRAs (text encoders)")
Part.BASE_UNET = Part("base unet")
Part.STYLE_LORAS = Part("style LoRAs (unet)")
Part.VAE = Part("vae")
# The names the plan gave the first distillations' parts before any role could bring its own; kept,
# as `fewstep plan` and the report print them.
Part.LCM_UNET = Part("lcm unet")
Part.LIGHTNING_UNET = Part("lightning unet")
Part.LCM_LORA = Part("lcm-lora")
Part.LIGHTNING_LORA = Part("lightning-lora")
# The running LoRA mode's LoRA fused into the layers it touches (engine.runtime.fused_slot), whichever
# LoRA role it is; its other layers are the base UNet's tensors, so it lives and moves with the base UNet.
Part.LORA_SLOT = Part("lora slot")
# In the order `fewstep plan` lists parts; a role's own part follows them.
FIXED_PARTS: tuple[Part, ...] = (
    Part.TEXT_ENCODER,
    Part.TEXT_ENCODER_2,
    Part.STYLE_TEXT,
    Part.BASE_UNET,
    Part.STYLE_LORAS,
    Part.VAE,
    Part.LCM_UNET,
    Part.LIGHTNING_UNET,
    Part.LCM_LORA,
    Part.LIGHTNING_LORA,
    Part.LORA_SLOT,
)
_ROLE_PARTS: dict[str, Part] = {
    ModelRole.LCM_UNET: Part.LCM_UNET,
    ModelRole.LIGHTNING_UNET: Part.LIGHTNING_UNET,
    ModelRole.LCM_LORA: Part.LCM_LORA,
    ModelRole.LIGHTNING_LORA: Part.LIGHTNING_LORA,
}


def part_of_role(role: str) -> Part:
    """The part a distillation file is: a full UNet, or a LoRA's own matrices."""
    return _ROLE_PARTS.get(role) or Part(role)


def own_text_part(role: str) -> Part:
    """A whole pipeline's own text encoders (both), where they differ from the base's."""
    return Part(f"{role} text encoders")


def own_vae_part(role: str) -> Part:
    """A whole pipeline's own VAE, where it differs from the base's."""
    return Part(f"{role} vae")


def _pipeline_roles() -> tuple[str, ...]:
    return tuple(role for role, kind in MODES.role_files().items() if kind is ModeFile.PIPELINE)


def own_text_parts() -> frozenset[Part]:
    """Every whole pipeline's own text encoders a known mode can bring."""
    return frozenset(own_text_part(role) for role in _pipeline_roles())


def own_vae_parts() -> frozenset[Part]:
    """Every whole pipeline's own VAE a known mode can bring."""
    return frozenset(own_vae_part(role) for role in _pipeline_roles())


def text_parts_of(mode: str, present: Collection[Part]) -> tuple[Part, ...]:
    """The text encoders that encode a mode's prompt: its whole pipeline's own where it brings them
    (they differ from the base's), else the base's."""
    role = MODES[mode].unet_role
    if role is not None and own_text_part(role) in present:
        return (own_text_part(role),)
    return TEXT_PARTS


def vae_part_of(mode: str, present: Collection[Part]) -> Part:
    """The VAE that decodes a mode's image: its whole pipeline's own where it brings one, else the base's."""
    role = MODES[mode].unet_role
    if role is not None and own_vae_part(role) in present:
        return own_vae_part(role)
    return Part.VAE


def full_unet_parts() -> frozenset[Part]:
    """Every full distilled UNet a known mode can bring."""
    return frozenset(
        part_of_role(role)
        for role, kind in MODES.role_files().items()
        if kind in (ModeFile.UNET, ModeFile.PIPELINE)
    )


def adapter_parts() -> frozenset[Part]:
    """Every distillation LoRA's matrices a known mode can bring."""
    return frozenset(part_of_role(role) for role, kind in MODES.role_files().items() if kind is ModeFile.LORA)


def unet_parts() -> frozenset[Part]:
    return frozenset({*BASE_GROUP, *full_unet_parts(), *adapter_parts()})


class LoraRoute(StrEnum):
    """How the LoRA modes run: their LoRA fused into the slot (as their model cards run them),
    unfused on a twin of the base UNet, or fused where the slot fits the device (auto)."""

    AUTO = "auto"
    FUSED = "fused"
    UNFUSED = "unfused"


Moves = tuple[tuple[Part, int], ...]  # (part, bytes) in the order moved


class Where(StrEnum):
    DEVICE = "device"
    CPU = "cpu"
    # On the CPU RAM is the device: a part that waits is not loaded at all, and is read from its
    # file (by the same load route, so the same bytes) when its mode runs.
    DISK = "disk"


class Measure(StrEnum):
    """What the engine can do to fit a smaller card, each at a cost in bytes moved or in the picture."""

    DISTILLED_UNETS_WAIT = "the full LCM and Lightning UNets wait in CPU RAM until their mode runs"
    TEXT_ENCODERS_WAIT = "the text encoders wait in CPU RAM after encoding"
    VAE_WAITS = "the VAE waits in CPU RAM until its decode"
    IDLE_LORAS_WAIT = "the LoRA matrices of the modes not running wait in CPU RAM"
    BASE_UNET_WAITS = "the base UNet waits in CPU RAM while a full distilled UNet runs"
    UNETS_WAIT_FOR_ENCODING = "every UNet waits in CPU RAM while the prompt is encoded"


# The only measure that means anything where RAM is the device (PlanInput.ram): the full distilled
# UNets wait on disk. The others would move RAM to RAM.
RAM_MEASURES = frozenset({Measure.DISTILLED_UNETS_WAIT})
# What DISTILLED_UNETS_WAIT means where RAM is the device.
ON_DISK_TEXT = "the full distilled UNets wait on disk; read from its file when its mode runs"


TEXT_PARTS = (Part.TEXT_ENCODER, Part.TEXT_ENCODER_2, Part.STYLE_TEXT)
# The twins hold their own Parameter objects over the base UNet's tensors, and the style matrices
# are modules shared by all of them: they move together or not at all.
BASE_GROUP = (Part.BASE_UNET, Part.STYLE_LORAS, Part.LORA_SLOT)
# Leaf-level group offloading keeps the layer running and the one being prefetched: SDXL's largest
# layers (the 1280-channel GEGLU projections, 13 M parameters) are 26 MB each in fp16. Rounded up.
STREAMED_UNET_BYTES = 128 * MIB


def mode_parts(mode: str) -> tuple[Part, ...]:
    """What must be on the device while a mode denoises."""
    spec = MODES[mode]
    if spec.unet_role is not None:
        return (part_of_role(spec.unet_role),)
    return (*BASE_GROUP, *((part_of_role(spec.adapter),) if spec.adapter else ()))


def cfg_batch(mode: str, guidance: float | None = None) -> int:
    """2 where classifier-free guidance runs at this guidance (the mode's default when None), else 1:
    LCM's UNet takes guidance as an embedding; any other mode above 1 runs two UNet passes per step
    (a LoRA mode whose artist raised its guidance doubles its step's activations)."""
    spec = MODES[mode]
    value = spec.default_guidance if guidance is None else guidance
    return 2 if spec.guidance_kind is not GuidanceKind.EMBEDDING and value > 1 else 1


def comparison_order(modes: Iterable[str], fused: str | None = None, loaded: str | None = None) -> list[str]:
    """The order the engine runs a comparison in: the base UNet's modes first (switching them moves
    no weights), then the full distilled UNets, each UNet's modes together, the one still loaded from
    the comparison before (`loaded`, where they wait on disk) first: each is read at most once per
    comparison, and the one loaded not at all. Among the LoRA modes, the one whose LoRA the slot
    holds already (`fused`) goes first and each LoRA's modes run together: one fuse per LoRA at most,
    none for the first."""

    def cost(mode: str) -> tuple[bool, bool, str, bool, str]:
        spec = MODES[mode]
        return (
            not spec.on_base_unet,
            spec.unet_role is not None and spec.unet_role != loaded,
            spec.unet_role or "",
            spec.adapter is not None and spec.adapter != fused,
            spec.adapter or "",
        )

    return sorted(modes, key=cost)


@dataclass(frozen=True, kw_only=True)
class PlanInput:
    sizes: Mapping[Part, int]  # bytes of each part present, in the run dtype
    dtype: str  # "fp16", "bf16" or "fp32"
    free_bytes: int  # free device memory before any weight is loaded
    width: int = 1024
    height: int = 1024
    modes: tuple[str, ...] = DEFAULT_COMPARISON
    vae_upcast: bool = True  # SDXL's VAE config says force_upcast: in fp16 it decodes in fp32
    # Each mode's guidance where it is not its default: CFG above 1 doubles the step's batch.
    guidance: Mapping[str, float] = field(default_factory=dict)
    # The device is the CPU and free_bytes its available RAM: a part that waits, waits on disk, and
    # only the full distilled UNets may (every other measure would move RAM to RAM).
    ram: bool = False

    @property
    def reserve(self) -> int:
        """Kept free: in RAM the activations' allocator, the decode and the rest of the system grow
        more than a card's caching allocator does (an estimate)."""
        return RAM_RESERVE_BYTES if self.ram else RESERVE_BYTES

    @property
    def budget(self) -> int:
        return self.free_bytes - self.reserve

    @property
    def decode_dtype(self) -> str:
        # diffusers upcasts a force_upcast VAE only from fp16 (bf16 has fp32's range).
        return "fp32" if self.dtype == "fp16" and self.vae_upcast else self.dtype

    def runnable(self) -> tuple[str, ...]:
        return tuple(m for m in self.modes if all(self.sizes.get(p) is not None for p in _needs(m)))


def _needs(mode: str) -> tuple[Part, ...]:
    return tuple(p for p in mode_parts(mode) if p not in (Part.STYLE_LORAS, Part.LORA_SLOT))


@dataclass(frozen=True)
class StepPlan:
    """One step of one mode: what is on the device, its estimated peak, and what moved before it."""

    mode: str
    step: Step
    on_device: frozenset[Part]
    weights: int
    activations: int
    moved_in: Moves = ()
    moved_out: Moves = ()

    @property
    def peak(self) -> int:
        return self.weights + self.activations

    @property
    def moved_bytes(self) -> int:
        return sum(b for _p, b in self.moved_in) + sum(b for _p, b in self.moved_out)


@dataclass(frozen=True)
class ModePlan:
    mode: str
    steps: tuple[StepPlan, ...]

    @property
    def moved_bytes(self) -> int:
        """Bytes this mode moves between CPU RAM and the device (both ways), in a steady comparison."""
        return sum(s.moved_bytes for s in self.steps)

    @property
    def peak(self) -> int:
        return max(s.peak for s in self.steps)

    @property
    def denoise_parts(self) -> frozenset[Part]:
        return next(s.on_device for s in self.steps if s.step is Step.DENOISE)


@dataclass(frozen=True)
class Placement:
    inputs: PlanInput
    measures: frozenset[Measure]
    tile: int | None  # output pixels per tile edge of a tiled decode; None: untiled
    modes: tuple[ModePlan, ...]  # in the order a comparison runs them
    skipped: tuple[str, ...] = ()  # wanted modes whose files are not given
    resting: Mapping[Part, Where] = field(default_factory=dict)  # where each part waits between steps

    @property
    def fits(self) -> bool:
        return all(m.peak <= self.inputs.budget for m in self.modes)

    @property
    def tiled(self) -> bool:
        return self.tile is not None

    @property
    def moved_bytes(self) -> int:
        return sum(m.moved_bytes for m in self.modes)

    @property
    def peak(self) -> int:
        return max((m.peak for m in self.modes), default=0)

    @property
    def weights(self) -> int:
        return sum(self.inputs.sizes.values())

    @property
    def waits(self) -> tuple[Part, ...]:
        return tuple(p for p, w in self.resting.items() if w is Where.CPU)

    def mode(self, name: str) -> ModePlan:
        return next(m for m in self.modes if m.mode == name)

    @property
    def lora_route(self) -> LoraRoute | None:
        """FUSED where the LoRA modes run fused in the slot, UNFUSED where on their twins; None
        where no LoRA mode runs."""
        if not any(MODES[m.mode].adapter is not None for m in self.modes):
            return None
        return LoraRoute.FUSED if Part.LORA_SLOT in self.inputs.sizes else LoraRoute.UNFUSED

    @property
    def streamed_peak(self) -> int:
        """The peak if the UNets were streamed layer by layer from CPU RAM (diffusers' leaf-level
        group offloading) instead of sitting on the device: their weights leave every step but a
        layer or two in flight. The engine does not stream (group offloading keeps its own copy of
        each module's weights per UNet object, which the LoRA twins' shared tensors would multiply)."""
        peaks = []
        for mode in self.modes:
            for step in mode.steps:
                sizes = self.inputs.sizes
                unet_part_set = unet_parts()
                rest = sum(sizes[p] for p in step.on_device if p not in unet_part_set)
                unets = sum(sizes[p] for p in step.on_device if p in unet_part_set)
                streamed = min(STREAMED_UNET_BYTES, unets) if step.step is Step.DENOISE else 0
                peaks.append(rest + streamed + step.activations)
        return max(peaks, default=0)

    @property
    def fits_streamed(self) -> bool:
        return self.streamed_peak <= self.inputs.budget


def _resting(inp: PlanInput, measures: frozenset[Measure]) -> dict[Part, Where]:
    waits: set[Part] = set()
    if Measure.DISTILLED_UNETS_WAIT in measures:
        waits |= full_unet_parts()
    if Measure.TEXT_ENCODERS_WAIT in measures:
        waits |= {*TEXT_PARTS, *own_text_parts()}
    if Measure.VAE_WAITS in measures:
        waits |= {Part.VAE, *own_vae_parts()}
    if Measure.IDLE_LORAS_WAIT in measures:
        waits |= adapter_parts()
    away = Where.DISK if inp.ram else Where.CPU
    return {p: away if p in waits else Where.DEVICE for p in inp.sizes}


class Step(StrEnum):
    ENCODE = "encode"
    DENOISE = "denoise"  # the mode's switch happens just before it
    DECODE = "decode"
    DECODED = "decoded"  # after the decode, before the next step


def step_moves(
    step: Step, mode: str, measures: frozenset[Measure], present: Collection[Part] = ()
) -> tuple[set[Part], set[Part]]:
    """(wanted, leaving): the parts a step needs on the device, and those that must leave it first.
    present: the parts the engine holds (a whole pipeline's own text encoders and VAE serve its mode
    where they are there). The engine's placer and the planner's simulation both follow these rules."""
    vaes = {Part.VAE, *own_vae_parts()}
    if step is Step.ENCODE:
        leaving = set(unet_parts()) if Measure.UNETS_WAIT_FOR_ENCODING in measures else set()
        return set(text_parts_of(mode, present)), leaving
    if step is Step.DECODE:
        return {vae_part_of(mode, present)}, set()
    if step is Step.DECODED:
        return set(), (vaes if Measure.VAE_WAITS in measures else set())
    needed = set(mode_parts(mode))
    leaving = set()
    if Measure.TEXT_ENCODERS_WAIT in measures:
        leaving |= {*TEXT_PARTS, *own_text_parts()}
    base_mode = MODES[mode].on_base_unet
    if Measure.DISTILLED_UNETS_WAIT in measures and (not base_mode or Measure.BASE_UNET_WAITS in measures):
        # As the engine's one-at-a-time residency: the last one stays until another UNet needs the
        # room, a distilled one always, the base one only when they may not share the device.
        leaving |= full_unet_parts() - needed
    if Measure.IDLE_LORAS_WAIT in measures:
        leaving |= adapter_parts() - needed
    if Measure.BASE_UNET_WAITS in measures and not base_mode:
        leaving |= set(BASE_GROUP)
    if Measure.VAE_WAITS in measures:
        leaving |= vaes
    return needed, leaving


class _Simulation:
    """Runs a comparison's steps over a set of parts on the device and records every move."""

    def __init__(self, inp: PlanInput, measures: frozenset[Measure], tile: int | None) -> None:
        self.inp, self.measures, self.tile = inp, measures, tile
        self.resting = _resting(inp, measures)
        self.on = {p for p, w in self.resting.items() if w is Where.DEVICE}

    def _weights(self) -> int:
        return sum(self.inp.sizes[p] for p in self.on)

    def _move(self, wanted: Iterable[Part], leaving: Iterable[Part]) -> tuple[Moves, Moves]:
        """Out first, then in: the device never holds both."""
        sizes = self.inp.sizes
        out = tuple((p, sizes[p]) for p in sorted(set(leaving) & self.on))
        self.on -= {p for p, _ in out}
        into = tuple((p, sizes[p]) for p in sorted(set(wanted) - self.on) if p in sizes)
        self.on |= {p for p, _ in into}
        return out, into

    def _step(
        self, mode: str, step: Step, wanted: Iterable[Part], leaving: Iterable[Part], activations: int
    ) -> StepPlan:
        out, into = self._move(wanted, leaving)
        on = frozenset(self.on)
        return StepPlan(mode, step, on, self._weights(), activations, moved_in=into, moved_out=out)

    def mode(self, mode: str, *, encode: bool) -> ModePlan:
        """The engine's order: encode (when this mode needs a new encoding), switch, denoise, decode."""
        inp, measures = self.inp, self.measures
        steps: list[StepPlan] = []
        present = set(inp.sizes)
        if encode:
            wanted, leaving = step_moves(Step.ENCODE, mode, measures, present)
            steps.append(self._step(mode, Step.ENCODE, wanted, leaving, encode_bytes()))
        wanted, leaving = step_moves(Step.DENOISE, mode, measures, present)
        batch = cfg_batch(mode, inp.guidance.get(mode))
        activations = unet_step_bytes(inp.width, inp.height, inp.dtype, batch)
        steps.append(self._step(mode, Step.DENOISE, wanted, leaving, activations))
        vae = inp.sizes.get(vae_part_of(mode, present), 0)
        # An upcast VAE sits in fp32 during the decode: its weights take twice their fp16 bytes.
        upcast = inp.decode_dtype != inp.dtype
        extra = vae * (DTYPE_BYTES["fp32"] // DTYPE_BYTES[inp.dtype] - 1) if upcast else 0
        decode = decode_bytes(inp.width, inp.height, inp.decode_dtype, self.tile) + extra
        wanted, leaving = step_moves(Step.DECODE, mode, measures, present)
        steps.append(self._step(mode, Step.DECODE, wanted, leaving, decode))
        wanted, leaving = step_moves(Step.DECODED, mode, measures, present)
        steps.append(self._step(mode, Step.DECODED, wanted, leaving, 0))
        return ModePlan(mode, tuple(steps))

    def comparison(self, order: list[str]) -> tuple[ModePlan, ...]:
        # The first pass leaves the parts where a previous comparison would have; the second, the
        # steady state an artist sees from the second comparison on, is the one reported.
        # One encoding per state of the text encoders, as the engine keys them: a style that patches
        # the base's is off for the full distilled UNets, so the first of them needs an encoding of its
        # own; a whole pipeline with text encoders of its own encodes with them.
        restyled = bool(self.inp.sizes.get(Part.STYLE_TEXT))
        present = set(self.inp.sizes)

        def text_state(mode: str) -> tuple[tuple[Part, ...], bool]:
            return text_parts_of(mode, present), restyled and MODES[mode].on_base_unet

        plans: tuple[ModePlan, ...] = ()
        # With the fused slot, the engine runs first the LoRA mode whose LoRA the slot still holds
        # from the comparison before: the steady state alternates, and its second pass is the one.
        fused: str | None = None
        # Where RAM is the device and the full UNets wait on disk, the one read last stays loaded and
        # the engine runs its modes first in the next comparison (comparison_order's `loaded`).
        loaded: str | None = None
        for _warm in range(2):
            if Part.LORA_SLOT in self.inp.sizes or loaded is not None:
                running = comparison_order(order, fused, loaded)
            else:
                running = order
            encoded: set[tuple[tuple[Part, ...], bool]] = set()
            modes: list[ModePlan] = []
            for m in running:
                state = text_state(m)
                modes.append(self.mode(m, encode=state not in encoded))
                encoded.add(state)
            plans = tuple(modes)
            fused = next((MODES[m].adapter for m in reversed(running) if MODES[m].adapter), None)
            if self.inp.ram and Measure.DISTILLED_UNETS_WAIT in self.measures:
                loaded = next((MODES[m].unet_role for m in reversed(running) if MODES[m].unet_role), None)
        return plans


def _evaluate(inp: PlanInput, measures: frozenset[Measure], tile: int | None, order: list[str]) -> Placement:
    sim = _Simulation(inp, measures, tile)
    modes = sim.comparison(order)
    skipped = tuple(m for m in inp.modes if m not in order)
    return Placement(inp, measures, tile, modes, skipped, sim.resting)


def _with_tile(placement: Placement, tile: int) -> Placement:
    """The same moves with the decode in tiles: only the decode's activations change."""
    inp = placement.inputs
    saved = decode_bytes(inp.width, inp.height, inp.decode_dtype, None) - decode_bytes(
        inp.width, inp.height, inp.decode_dtype, tile
    )
    modes = tuple(
        ModePlan(
            mode.mode,
            tuple(
                replace(step, activations=step.activations - saved) if step.step is Step.DECODE else step
                for step in mode.steps
            ),
        )
        for mode in placement.modes
    )
    return replace(placement, tile=tile, modes=modes)


def candidates(inp: PlanInput) -> list[Placement]:
    """Every combination of measures, untiled and in each tile size. Their peaks do not depend on
    the free memory, which only decides which of them fit."""
    order = comparison_order(inp.runnable())
    found: list[Placement] = []
    # In RAM only the full UNets may wait, and the decode stays whole: a tiled decode changes the
    # picture and the CPU's activations are not what runs out first.
    allowed = sorted(RAM_MEASURES) if inp.ram else list(Measure)
    for count in range(len(allowed) + 1):
        for chosen in combinations(allowed, count):
            whole = _evaluate(inp, frozenset(chosen), None, order)
            found += [whole] if inp.ram else [whole, *(_with_tile(whole, tile) for tile in TILE_SIZES)]
    return found


def _cost(placement: Placement) -> tuple[bool, int, int, int]:
    return (placement.tiled, placement.moved_bytes, len(placement.measures), -(placement.tile or 0))


def plan_placement(
    inp: PlanInput,
    *,
    forced: Iterable[Measure] | None = None,
    forced_tile: int | None = None,
    lora_route: LoraRoute = LoraRoute.AUTO,
) -> Placement:
    """The cheapest placement that fits every step of the wanted modes; if none fits, the one with
    every measure and the smallest tiles (its `fits` is then False). `forced` skips the search and
    takes these measures and `forced_tile` as they are (tests, and the engine's residency choice).

    The fused slot (Part.LORA_SLOT in `inp.sizes`) is planned like every other part. AUTO keeps it
    where a placement fits with it and decodes in tiles no smaller than without it (the slot may cost
    bytes moved, never the picture); elsewhere the LoRA modes run unfused, the slot left out. FUSED
    and UNFUSED take the route as they are."""
    lora_modes = any(MODES[m].adapter is not None for m in inp.runnable())
    if Part.LORA_SLOT in inp.sizes and (lora_route is LoraRoute.UNFUSED or not lora_modes):
        return _plan_parts(without_slot(inp), forced, forced_tile)
    placement = _plan_parts(inp, forced, forced_tile)
    if lora_route is not LoraRoute.AUTO or Part.LORA_SLOT not in inp.sizes:
        return placement
    unfused = _plan_parts(without_slot(inp), forced, forced_tile)
    untiled = 1 << 30  # an untiled decode ranks above every tile size
    if placement.fits and (placement.tile or untiled) >= (unfused.tile or untiled):
        return placement
    return unfused


def without_slot(inp: PlanInput) -> PlanInput:
    return replace(inp, sizes={p: s for p, s in inp.sizes.items() if p != Part.LORA_SLOT})


def _plan_parts(inp: PlanInput, forced: Iterable[Measure] | None, forced_tile: int | None) -> Placement:
    order = comparison_order(inp.runnable())
    if forced is not None:
        return _evaluate(inp, frozenset(forced), forced_tile, order)
    fitting = [p for p in candidates(inp) if p.fits]
    if not fitting:
        if inp.ram:
            return _evaluate(inp, RAM_MEASURES, None, order)
        return _evaluate(inp, frozenset(Measure), TILE_SIZES[-1], order)
    return min(fitting, key=_cost)


def five_mode_check(
    sizes: Mapping[Part, int],
    dtype: str,
    free_bytes: int,
    *,
    vae_upcast: bool = True,
    lora_route: LoraRoute = LoraRoute.AUTO,
    ram: bool = False,
) -> Placement:
    """The plan of SDXL's five-mode comparison at 1024x1024 on this card (or in this RAM: `ram`)."""
    return plan_placement(
        PlanInput(
            sizes=sizes,
            dtype=dtype,
            free_bytes=free_bytes,
            width=1024,
            height=1024,
            modes=DEFAULT_COMPARISON,
            vae_upcast=vae_upcast,
            ram=ram,
        ),
        lora_route=lora_route,
    )


def smallest_fit(
    sizes: Mapping[Part, int], dtype: str, *, vae_upcast: bool = True, step: int = GIB // 4
) -> int:
    """The least free device memory, rounded up to a multiple of `step`, on which SDXL's five-mode
    comparison at 1024x1024 fits with some placement: the lowest peak of any candidate, plus the
    reserve. The LoRA modes may run unfused there (the slot left out), as AUTO plans them."""
    inp = PlanInput(sizes=sizes, dtype=dtype, free_bytes=0, modes=DEFAULT_COMPARISON, vae_upcast=vae_upcast)
    inp = without_slot(inp)
    least = min((p.peak for p in candidates(inp)), default=0) + RESERVE_BYTES
    return -(-least // step) * step
