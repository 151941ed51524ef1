"""Carrying out a placement plan: parts move between CPU RAM and the device before each step.

The plan (engine.contract.placement) says which measures a card needs; before each step the placer
asks the same rules (`step_moves`) what that step wants on the device and what must leave it, moves
exactly that, and records every move (bytes, seconds) for report.json.

Why the engine moves whole parts itself rather than using the libraries' offloading:
- accelerate's hooks and diffusers' `enable_model_cpu_offload` attach a hook per module and move that
  module's own Parameter objects. The LoRA twins are separate UNet objects whose Parameter objects
  share the base UNet's tensors: a hook that moves the base UNet replaces its Parameters' data and
  leaves the twins pointing at the old device tensors, so the device memory is not freed and the
  twins would no longer share anything. Here the base UNet and its twins move as one, each distinct
  tensor once, and every holder is pointed at the moved tensor (`move_shared`).
- diffusers' group offloading (`enable_group_offload`) streams a model layer by layer, keeping its own
  CPU copy of each offloaded module's weights per model object: over the twins that is one copy of
  the 5 GB base UNet per twin. The plan reports when only streaming would fit (6 GB cards in fp16);
  the engine does not stream.
- VAE tiling is diffusers' own: `enable_tiling()`, with the tile set to the plan's size, because
  SDXL's VAE config (sample_size 1024) would otherwise only tile images larger than 1024 pixels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from engine.contract.placement import (
    LoraRoute,
    Measure,
    Part,
    Placement,
    PlanInput,
    Step,
    Where,
    part_of_role,
    plan_placement,
    step_moves,
)
from engine.contract.placement_text import measure_text
from engine.contract.residency import Residency
from engine.runtime.memory import module_bytes

DeviceOf = Callable[[], torch.device]
_CPU = torch.device("cpu")
_DTYPE_NAMES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}


def dtype_name(dtype: torch.dtype) -> str:
    return _DTYPE_NAMES[dtype]


@dataclass(frozen=True)
class Move:
    mode: str
    step: str
    part: str
    direction: str  # "in" to the device, "out" to CPU RAM
    to: str
    bytes: int
    seconds: float

    def record(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "step": self.step,
            "part": self.part,
            "direction": self.direction,
            "to": self.to,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 6),
        }


def _named_tensors(module: Any) -> Iterable[tuple[str, Any, str, bool]]:
    """(full name, owning module, attribute, is a parameter) of every tensor a module holds."""
    for prefix, sub in module.named_modules():
        for name, tensor in sub._parameters.items():
            if tensor is not None:
                yield f"{prefix}.{name}" if prefix else name, sub, name, True
        for name, tensor in sub._buffers.items():
            if tensor is not None:
                yield f"{prefix}.{name}" if prefix else name, sub, name, False


def move_shared(
    modules: Sequence[Any],
    device: torch.device,
    *,
    skip: Callable[[str], bool] = lambda _name: False,
    convert: Callable[[torch.Tensor, torch.device], torch.Tensor] = lambda t, d: t.to(d),
) -> int:
    """Move modules that share tensors (the base UNet and its LoRA twins) as one: each distinct tensor
    is moved once, and every Parameter or buffer that held it then holds the moved one, so they stay
    shared. Returns the bytes moved. `convert` does the copy (a test copies on the CPU)."""
    moved: dict[tuple[Any, ...], torch.Tensor] = {}
    total = 0
    with torch.no_grad():
        for module in modules:
            for full_name, owner, name, is_parameter in list(_named_tensors(module)):
                if skip(full_name):
                    continue
                holder = owner._parameters if is_parameter else owner._buffers
                tensor = holder[name]
                if tensor.device == device:
                    continue
                key = (tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tuple(tensor.stride()))
                target = moved.get(key)
                if target is None:
                    target = convert(tensor.detach(), device)
                    moved[key] = target
                    total += tensor.numel() * tensor.element_size()
                if is_parameter:
                    tensor.data = target
                else:
                    holder[name] = target
    return total


def adapter_modules(unet: Any, adapter: str) -> list[Any]:
    """The modules holding one adapter's LoRA matrices (peft's lora_A / lora_B entries)."""
    found = []
    for module in unet.modules():
        for attribute in ("lora_A", "lora_B"):
            entries = getattr(module, attribute, None)
            if entries is not None and adapter in entries:
                found.append(entries[adapter])
    return found


@dataclass(frozen=True)
class PartHandle:
    size: int
    move: Callable[[torch.device], object]
    # Set for a part that waits on disk (a full UNet where RAM is the device): `move` then reads it
    # from its file and `drop` lets it go, so that its RAM comes back.
    drop: Callable[[], object] | None = None


@dataclass(frozen=True, kw_only=True)
class PlanBasis:
    """What every plan of one engine starts from."""

    dtype: str
    free_bytes: int | None  # None: the device is the CPU, whose RAM holds everything
    vae_upcast: bool
    forced: frozenset[Measure] | None  # measures taken as they are instead of planned
    forced_tile: int | None = None
    lora_route: LoraRoute = LoraRoute.AUTO
    ram: bool = False  # the device is the CPU: free_bytes is its available RAM (PlanInput.ram)


class Placer:
    """Where each part is now, and the moves each step needs under the plan in force."""

    def __init__(self, parts: Mapping[Part, PartHandle], device_of: DeviceOf, basis: PlanBasis) -> None:
        self.parts = dict(parts)
        self.device_of = device_of
        self.basis = basis
        self.on: set[Part] = set()  # everything is loaded into CPU RAM first
        self.moves: list[Move] = []  # of the current run
        # The fuses of the current run: slot weights written in place, not moved (report.json's "fuses").
        self.fuses: list[Move] = []
        self.placement = self._plan(1024, 1024, None)
        self._planned_for: tuple[int, int, tuple[str, ...], tuple[tuple[str, float], ...]] | None = None

    def _plan(
        self,
        width: int,
        height: int,
        modes: tuple[str, ...] | None,
        guidance: tuple[tuple[str, float], ...] = (),
    ) -> Placement:
        basis = self.basis
        inputs = PlanInput(
            sizes={part: handle.size for part, handle in self.parts.items()},
            dtype=basis.dtype,
            # Without a measurement (RAM of unknown size) nothing is planned unless forced:
            # forced_measures forces no measure then.
            free_bytes=basis.free_bytes if basis.free_bytes is not None else 1 << 62,
            ram=basis.ram,
            width=width,
            height=height,
            vae_upcast=basis.vae_upcast,
            guidance=dict(guidance),
            **({"modes": modes} if modes is not None else {}),
        )
        return plan_placement(
            inputs, forced=basis.forced, forced_tile=basis.forced_tile, lora_route=basis.lora_route
        )

    def replan(
        self, width: int, height: int, modes: tuple[str, ...], guidance: tuple[tuple[str, float], ...] = ()
    ) -> None:
        """The plan for this image size, these modes and their guidance (CFG doubles a step's batch);
        parts move as the next steps need. The search tries about a hundred candidates (tens of ms):
        a repeated request (live mode) reuses it."""
        key = (width, height, modes, guidance)
        if key != self._planned_for:
            self.placement = self._plan(width, height, modes, guidance)
            self._planned_for = key

    @property
    def fused(self) -> bool:
        """Do the LoRA modes run fused in the slot under the plan in force?"""
        return self.placement.lora_route is LoraRoute.FUSED

    def record_fuse(self, mode: str, size: int, seconds: float) -> None:
        """A fuse is a mode switch's cost, recorded beside the moves: the slot's bytes it wrote."""
        self.fuses.append(
            Move(
                mode,
                str(Step.DENOISE),
                str(Part.LORA_SLOT),
                "fuse",
                self.where(Part.LORA_SLOT),
                size,
                seconds,
            )
        )

    @property
    def measures(self) -> frozenset[Measure]:
        return self.placement.measures

    def _move(self, part: Part, device: torch.device, mode: str, step: str, *, into: bool) -> None:
        handle = self.parts[part]
        start = time.perf_counter()
        if handle.drop is not None and not into:
            handle.drop()  # a part that waits on disk leaves RAM by being let go, not copied
        else:
            handle.move(device)
        if self.device_of().type == "cuda" and torch.cuda.is_available():
            torch.cuda.synchronize()  # so that the seconds are the copy's, not its launch's
        seconds = time.perf_counter() - start
        if handle.drop is None:
            direction, to = ("in" if into else "out"), device.type
        else:
            direction, to = ("read", device.type) if into else ("drop", str(Where.DISK))
        self.moves.append(Move(mode, step, str(part), direction, to, handle.size, seconds))

    def settle(self) -> None:
        """The resting state: every part the plan keeps on the device goes there."""
        for part in self.parts:
            if self.placement.resting.get(part) is Where.DEVICE and part not in self.on:
                self._move(part, self.device_of(), "", "load", into=True)
                self.on.add(part)
        self.moves.clear()
        self.fuses.clear()

    def prepare(self, step: Step, mode: str) -> None:
        """Before a step: what must leave goes to CPU RAM first, then what it wants comes in."""
        wanted, leaving = step_moves(step, mode, self.measures, self.parts)
        for part in sorted(leaving & self.on):
            self._move(part, _CPU, mode, str(step), into=False)
            self.on.discard(part)
        # Parts the plan leaves out (the slot, where the LoRA modes run unfused) stay where they are.
        for part in sorted((wanted & set(self.placement.inputs.sizes)) - self.on):
            self._move(part, self.device_of(), mode, str(step), into=True)
            self.on.add(part)

    def where(self, part: Part) -> str:
        if part in self.on:
            return str(self.device_of())
        return str(Where.DISK) if part in self.parts and self.parts[part].drop is not None else "cpu"

    def loaded(self, part: Part) -> bool:
        """Is this part in memory (a part that waits on disk is not, until its mode reads it)?"""
        return part in self.on or part not in self.parts or self.parts[part].drop is None

    def report(self) -> dict[str, Any]:
        """For report.json: the plan in force, where each part is, and the moves of the last run."""
        placement = self.placement
        inputs = placement.inputs
        return {
            "free_bytes": self.basis.free_bytes,
            "planned": self.basis.forced is None,
            "dtype": inputs.dtype,
            "size": [inputs.width, inputs.height],
            "measures": sorted(m.name.lower() for m in placement.measures),
            # Where RAM is the device (the CPU), what waits, waits on disk.
            "ram": inputs.ram,
            "measure_texts": sorted(measure_text(m, ram=inputs.ram) for m in placement.measures),
            "tiled_decode": placement.tile,
            "fits": placement.fits,
            "estimated_peak_bytes": placement.peak,
            "parts": {
                str(part): {
                    "bytes": handle.size,
                    "rests_on": str(placement.resting.get(part, Where.DEVICE)),
                    "now_on": self.where(part),
                }
                for part, handle in self.parts.items()
            },
            "steps": [
                {
                    "mode": mode.mode,
                    "step": str(step.step),
                    "on_device": sorted(str(p) for p in step.on_device),
                }
                for mode in placement.modes
                for step in mode.steps
            ],
            "lora_route": str(placement.lora_route) if placement.lora_route is not None else None,
            "moves": [move.record() for move in self.moves],
            "moved_bytes": sum(move.bytes for move in self.moves),
            "move_seconds": round(sum(move.seconds for move in self.moves), 6),
            # The reads of full UNets that wait on disk, among the moves: a switch's cost.
            "read_bytes": sum(move.bytes for move in self.moves if move.direction == "read"),
            "read_seconds": round(sum(move.seconds for move in self.moves if move.direction == "read"), 6),
            "fuses": [fuse.record() for fuse in self.fuses],
            "fused_bytes": sum(fuse.bytes for fuse in self.fuses),
            "fuse_seconds": round(sum(fuse.seconds for fuse in self.fuses), 6),
        }


def _distillation_lora(adapters: Iterable[str]) -> Callable[[str], bool]:
    """Whether a parameter name is one of these adapters' matrices (each twin's adapter is named as
    its role, and so as its part)."""
    names = tuple(adapters)

    def belongs(name: str) -> bool:
        return any(f".lora_{ab}.{adapter}." in f".{name}" for ab in "AB" for adapter in names)

    return belongs


def _to_of(module: Any) -> Callable[[torch.device], object]:
    def move(device: torch.device) -> object:
        # module.to is looked up at call time: a test records the moves by replacing it.
        return module.to(device)

    return move


def engine_parts(
    base: Any,
    twins: Mapping[Part, Any],
    full_unets: Mapping[Part, Any],
    slot: Any = None,
    slot_bytes: int = 0,
    own: Mapping[Part, Sequence[Any]] | None = None,
) -> dict[Part, PartHandle]:
    """The engine's modules as plan parts. twins: adapter part -> its twin UNet (named as the part);
    full_unets: the full distilled UNets' parts; slot: the fused slot's UNet, whose own tensors (at
    most slot_bytes) move with the base UNet's, since every other tensor of it is the base's; own: a
    whole pipeline's own text encoders or VAE (engine.contract.placement.own_text_part), by part."""
    shared = [base.unet, *twins.values(), *([slot] if slot is not None else [])]
    distillation_lora = _distillation_lora(str(part) for part in twins)

    def move_base(device: torch.device) -> int:
        # The distillation LoRAs' own matrices are parts of their own; the styles' are shared modules.
        return move_shared(shared, device, skip=distillation_lora)

    def mover(modules: Sequence[Any]) -> Callable[[torch.device], object]:
        return lambda device: [module.to(device) for module in modules]

    parts: dict[Part, PartHandle] = {
        Part.TEXT_ENCODER: PartHandle(module_bytes(base.text_encoder), mover([base.text_encoder])),
        Part.TEXT_ENCODER_2: PartHandle(module_bytes(base.text_encoder_2), mover([base.text_encoder_2])),
        Part.VAE: PartHandle(module_bytes(base.vae), mover([base.vae])),
    }
    base_bytes = sum(
        t.numel() * t.element_size()
        for name, t in (*base.unet.named_parameters(), *base.unet.named_buffers())
        if not distillation_lora(name)
    )
    parts[Part.BASE_UNET] = PartHandle(base_bytes, move_base)
    for part, unet in full_unets.items():
        parts[part] = PartHandle(module_bytes(unet), _to_of(unet))
    for part, twin in twins.items():
        modules = adapter_modules(twin, str(part))
        parts[part] = PartHandle(module_bytes(*modules), mover(modules))
    for part, own_modules in (own or {}).items():
        parts[part] = PartHandle(module_bytes(*own_modules), mover(own_modules))
    if slot is not None:
        # Moved by move_base with the tensors it shares: its own handle moves nothing.
        parts[Part.LORA_SLOT] = PartHandle(slot_bytes, lambda _device: None)
    return parts


def forced_measures(
    residency: Residency, free_bytes: int | None, measures: Iterable[Measure] | None
) -> frozenset[Measure] | None:
    """The measures taken without planning, or None to plan. The residency choice predates the
    planner and keeps its meaning: ALL keeps every part on the device, ONE lets only the full
    distilled UNets wait (on the CPU, on disk). The CPU without --vram plans with its available RAM;
    where that is unknown (no /proc/meminfo), everything stays loaded."""
    if measures is not None:
        return frozenset(measures)
    if residency is Residency.ONE:
        return frozenset({Measure.DISTILLED_UNETS_WAIT})
    if residency is Residency.ALL or free_bytes is None:
        return frozenset()
    return None


def build_placer(
    base: Any,
    twins: Mapping[str, Any],
    full_unets: Mapping[str, Any],
    *,
    device_of: DeviceOf,
    dtype: torch.dtype,
    free_bytes: int | None,
    forced: frozenset[Measure] | None,
    forced_tile: int | None,
    slot: Any = None,
    slot_bytes: int = 0,
    lora_route: LoraRoute = LoraRoute.AUTO,
    ram: bool = False,
    on_disk: Mapping[str, PartHandle] | None = None,
    own: Mapping[Part, Sequence[Any]] | None = None,
) -> Placer:
    """ram: the device is the CPU and free_bytes its available RAM; on_disk: the full UNets not
    loaded yet, by role, each with the handle that reads it from its file and drops it."""
    parts = engine_parts(
        base,
        {part_of_role(role): unet for role, unet in twins.items()},
        {part_of_role(role): unet for role, unet in full_unets.items()},
        slot,
        slot_bytes,
        own,
    )
    parts.update({part_of_role(role): handle for role, handle in (on_disk or {}).items()})
    basis = PlanBasis(
        dtype=dtype_name(dtype),
        free_bytes=free_bytes,
        vae_upcast=bool(getattr(base.vae.config, "force_upcast", True)),
        forced=forced,
        forced_tile=forced_tile,
        lora_route=lora_route,
        ram=ram,
    )
    return Placer(parts, device_of, basis)


def set_tiling(vae: Any, tile: int | None, scale_factor: int) -> None:
    if tile is None:
        vae.disable_tiling()
        return
    # diffusers tiles only latents larger than tile_latent_min_size, which SDXL's VAE config
    # (sample_size 1024) makes 128: without the plan's tile a 1024x1024 decode would stay whole.
    vae.enable_tiling()
    vae.tile_sample_min_size = tile
    vae.tile_latent_min_size = tile // scale_factor
