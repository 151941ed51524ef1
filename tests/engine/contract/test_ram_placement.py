"""The plan where RAM is the device (the CPU): only the full distilled UNets may wait, on disk."""

from __future__ import annotations

from engine.contract.modes import DEFAULT_COMPARISON
from engine.contract.placement import (
    GIB,
    ON_DISK_TEXT,
    RAM_RESERVE_BYTES,
    LoraRoute,
    Measure,
    Part,
    Placement,
    PlanInput,
    Where,
    plan_placement,
)
from engine.contract.placement_text import describe_placement
from tests.engine.contract.test_placement import check_consistent
from tests.engine.contract.test_slot_placement import slot_sizes


def ram_plan(ram_gib: float, route: LoraRoute = LoraRoute.AUTO, **kwargs: object) -> Placement:
    inp = PlanInput(
        sizes=slot_sizes("bf16"),
        dtype="bf16",
        free_bytes=int(ram_gib * GIB),
        width=64,
        height=64,
        modes=DEFAULT_COMPARISON,
        ram=True,
    )
    return plan_placement(inp, lora_route=route, **kwargs)  # type: ignore[arg-type]


def test_twenty_gib_fuses_the_slot_with_the_full_unets_on_disk() -> None:
    # bench_fullsize's five modes in bf16: base + LCM + Lightning UNets + slot is about 19.6 GiB of
    # weights, over this budget; with the full UNets on disk the slot fits.
    placement = ram_plan(20)
    assert placement.fits and placement.lora_route is LoraRoute.FUSED
    assert placement.measures == {Measure.DISTILLED_UNETS_WAIT} and placement.tile is None
    assert placement.resting[Part.LCM_UNET] is Where.DISK
    assert placement.resting[Part.LIGHTNING_UNET] is Where.DISK
    assert placement.resting[Part.TEXT_ENCODER] is Where.DEVICE  # nothing else waits in RAM
    check_consistent(placement)
    # One full UNet at a time beside the base UNet and the slot: never both in RAM.
    sizes = placement.inputs.sizes
    most = max(s.weights for m in placement.modes for s in m.steps)
    assert most == sum(sizes.values()) - min(sizes[Part.LCM_UNET], sizes[Part.LIGHTNING_UNET])
    # Read at most once per comparison, the one still loaded from the comparison before first.
    reads = [p for m in placement.modes for s in m.steps for p, _b in s.moved_in]
    assert reads == [Part.LCM_UNET]
    text = "\n".join(describe_placement(placement))
    assert "available RAM (the CPU: RAM is the device)" in text
    assert ON_DISK_TEXT in text
    assert "on disk; read from its file when its mode runs" in text
    assert "waits in CPU RAM" not in text and "reading" in text


def test_plenty_of_ram_keeps_everything_loaded() -> None:
    placement = ram_plan(64)
    assert placement.fits and placement.measures == frozenset() and placement.moved_bytes == 0
    assert placement.lora_route is LoraRoute.FUSED
    assert "with every part loaded" in describe_placement(placement)[1]


def test_too_little_ram_runs_unfused_and_still_waits_on_disk() -> None:
    placement = ram_plan(12)
    assert placement.lora_route is LoraRoute.UNFUSED
    assert placement.measures == {Measure.DISTILLED_UNETS_WAIT}
    assert placement.inputs.reserve == RAM_RESERVE_BYTES


def test_forced_all_on_the_cpu_keeps_the_unets_loaded() -> None:
    placement = ram_plan(64, forced=frozenset())
    assert all(where is Where.DEVICE for where in placement.resting.values())
