"""A placement plan in words: what `fewstep plan` prints and the GUI's Models tab shows."""

from __future__ import annotations

from collections.abc import Iterable

from engine.contract.memory_estimates import decode_bytes
from engine.contract.placement import (
    FIXED_PARTS,
    ON_DISK_TEXT,
    LoraRoute,
    Measure,
    Part,
    Placement,
    Where,
)

GIB = 1024**3


def size_text(count: int) -> str:
    if count == 0:
        return "0 B"
    if abs(count) >= GIB / 10:
        return f"{count / GIB:.2f} GiB"
    if abs(count) >= 1024**2:
        return f"{count / 1024**2:.0f} MiB"
    return f"{count / 1024:.0f} KiB" if abs(count) >= 1024 else f"{count} B"


def in_order(parts: Iterable[Part]) -> list[Part]:
    """The fixed parts in their order, then the parts of the other roles by name."""
    given = set(parts)
    return [p for p in FIXED_PARTS if p in given] + sorted(given - set(FIXED_PARTS))


def _parts_text(parts: frozenset[Part], every: frozenset[Part]) -> str:
    """The parts held, said by what is not held where that is shorter: a dozen part names per mode
    made lines of 170 characters that said "all of them" in most rows."""
    if parts >= every:
        return "every part"
    absent = every - parts
    if len(absent) < len(parts):
        return "every part but " + ", ".join(in_order(absent))
    return ", ".join(in_order(parts)) or "-"


def measure_text(measure: Measure, *, ram: bool) -> str:
    """A measure in words; where RAM is the device, a full UNet that waits waits on disk."""
    return ON_DISK_TEXT if ram and measure is Measure.DISTILLED_UNETS_WAIT else str(measure)


# Where a part rests between steps, in words.
_RESTING_TEXT = {
    Where.DEVICE: "on the device",
    Where.CPU: "waits in CPU RAM",
    Where.DISK: "on disk; read from its file when its mode runs",
}


def verdict(placement: Placement) -> str:
    """One line: does it fit, and at what cost."""
    inp = placement.inputs
    size = f"{inp.width}x{inp.height}"
    if not placement.modes:
        return f"no mode can run with these files at {size}"
    if placement.fits:
        moved = placement.moved_bytes
        if inp.ram:
            # A move in is a read of the file; a move out, a drop that reads nothing.
            read = sum(b for mode in placement.modes for step in mode.steps for _p, b in step.moved_in)
            how = (
                "with every part loaded"
                if moved == 0
                else f"reading {size_text(read)} from disk per comparison"
            )
        else:
            how = "with nothing moved" if moved == 0 else f"moving {size_text(moved)} per comparison"
        tiled = f", VAE decode in {placement.tile}x{placement.tile} tiles" if placement.tiled else ""
        return f"fits at {size} {how}{tiled} (peak {size_text(placement.peak)}, estimated)"
    if inp.ram:
        return (
            f"does not fit at {size}: the largest step needs {size_text(placement.peak + inp.reserve)} of RAM"
            " with the full distilled UNets on disk"
        )
    streamed = (
        f"; streaming the UNets layer by layer (group offloading, which Fewstep does not do) would need"
        f" {size_text(placement.streamed_peak + inp.reserve)}"
    )
    return (
        f"does not fit at {size}: the largest step needs {size_text(placement.peak + inp.reserve)}"
        f" with every measure{streamed}"
    )


def lora_route_line(placement: Placement) -> str | None:
    """How the LoRA modes run under this plan: fused in the slot beside the base UNet, or unfused
    (and then why: the slot did not fit, or the route was chosen)."""
    route = placement.lora_route
    if route is None:
        return None
    if route is LoraRoute.FUSED:
        slot = placement.inputs.sizes.get(Part.LORA_SLOT, 0)
        return (
            f"LoRA modes: fused, as their model cards run them; the slot ({size_text(slot)}, the layers"
            " the LoRA touches) lives beside the base UNet and is re-fused at each switch between LoRAs"
        )
    return (
        "LoRA modes: unfused, on twins of the base UNet (slower per step than their model cards' fused"
        " route; their speed is marked unfused)"
    )


def describe_placement(placement: Placement, five_modes: Placement | None = None) -> list[str]:
    inp = placement.inputs
    memory = "available RAM (the CPU: RAM is the device)" if inp.ram else "free device memory"
    lines = [
        f"Plan for {size_text(inp.free_bytes)} of {memory}, {inp.dtype}, {inp.width}x{inp.height}"
        f" ({size_text(inp.reserve)} kept in reserve; sizes from the files, activations estimated)",
        verdict(placement),
    ]
    if placement.measures or placement.tiled:
        lines.append("measures:")
        lines += [f"  - {measure_text(m, ram=inp.ram)}" for m in sorted(placement.measures)]
        if placement.tiled:
            whole = decode_bytes(inp.width, inp.height, inp.decode_dtype, None)
            lines.append(
                f"  - the VAE decodes in tiles of {placement.tile}x{placement.tile} pixels"
                f" (whole, its {inp.decode_dtype} decode would need about {size_text(whole)})"
            )
    else:
        lines.append("measures: none, every part stays on the device")
    lines.append("parts:")
    for part in in_order(inp.sizes):
        if (size := inp.sizes.get(part)) is None or size == 0:
            continue
        where = _RESTING_TEXT[placement.resting.get(part, Where.DEVICE)]
        where = "loaded in RAM" if inp.ram and where == _RESTING_TEXT[Where.DEVICE] else where
        lines.append(f"  {part:29} {size_text(size):>10}  {where}")
    if placement.modes:
        lines.append("modes, in the order a comparison runs them:")
        held = "in RAM" if inp.ram else "on the device"
        lines.append(f"  {'mode':15} {'peak':>10} {'moved':>10}  {held} while denoising")
        every = frozenset(part for part, size in inp.sizes.items() if size)
        for mode in placement.modes:
            lines.append(
                f"  {mode.mode:15} {size_text(mode.peak):>10} {size_text(mode.moved_bytes):>10}"
                f"  {_parts_text(mode.denoise_parts, every)}"
            )
    if (route := lora_route_line(placement)) is not None:
        lines.append(route)
    if placement.skipped:
        lines.append(f"not planned (their files are not given): {', '.join(placement.skipped)}")
    if five_modes is not None:
        lines.append(f"five-mode comparison: {verdict(five_modes)}")
    return lines
