"""The fused slot planned like every other part, at SDXL's real sizes (torch-free).

The slot of the field's LoRAs (LCM-LoRA, Lightning, TCD, Hyper-SD, DMD2, PCM: the 14 "LCM targets",
788 modules, docs/field-layouts.md) holds the base weights of the layers they touch: 2,558,566,400
parameters, counted on SDXL's UNet config (99.7% of the UNet's 2,567,463,684), 4.77 GiB in fp16.
"""

from __future__ import annotations

import pytest

from engine.contract.modes import DEFAULT_COMPARISON, ModelRole
from engine.contract.placement import (
    GIB,
    LoraRoute,
    Part,
    Placement,
    PlanInput,
    Step,
    comparison_order,
    plan_placement,
    smallest_fit,
    without_slot,
)
from engine.contract.placement_text import describe_placement
from tests.engine.contract.test_placement import check_consistent, sizes

SLOT_PARAMETERS = 2_558_566_400


def slot_sizes(dtype: str) -> dict[Part, int]:
    return {**sizes(dtype), Part.LORA_SLOT: SLOT_PARAMETERS * (4 if dtype == "fp32" else 2)}


def plan(
    card_gb: float,
    route: LoraRoute = LoraRoute.AUTO,
    *,
    modes: tuple[str, ...] = DEFAULT_COMPARISON,
    guidance: dict[str, float] | None = None,
) -> Placement:
    inp = PlanInput(
        sizes=slot_sizes("fp16"),
        dtype="fp16",
        free_bytes=int(card_gb * GIB),
        modes=modes,
        guidance=guidance or {},
    )
    return plan_placement(inp, lora_route=route)


@pytest.mark.parametrize(
    ("card", "route"), [(8, LoraRoute.UNFUSED), (12, LoraRoute.UNFUSED), (24, LoraRoute.FUSED)]
)
def test_auto_fuses_where_the_slot_fits_untiled(card: int, route: LoraRoute) -> None:
    placement = plan(card)
    assert placement.fits and placement.lora_route is route
    check_consistent(placement)
    unfused = plan(card, LoraRoute.UNFUSED)
    # Where the LoRA modes run unfused, nothing of today's plan changes; fused never costs the picture.
    if route is LoraRoute.UNFUSED:
        assert placement == unfused
    assert (placement.tile or 1 << 30) >= (unfused.tile or 1 << 30)


def test_12_gb_would_fit_the_slot_only_with_a_tiled_decode() -> None:
    fused = plan(12, LoraRoute.FUSED)
    assert fused.fits and fused.tiled and not plan(12, LoraRoute.UNFUSED).tiled


def test_the_slot_sits_beside_the_base_unet_while_a_lora_mode_denoises() -> None:
    placement = plan(24)
    for mode in ("lcm-lora", "lightning-lora"):
        assert {Part.BASE_UNET, Part.LORA_SLOT} <= placement.mode(mode).denoise_parts
    assert placement.resting[Part.LORA_SLOT] == "device"
    text = "\n".join(describe_placement(placement))
    assert "lora slot" in text and "LoRA modes: fused" in text
    assert "LoRA modes: unfused" in "\n".join(describe_placement(plan(8)))


def test_forced_routes_are_taken_as_they_are() -> None:
    assert plan(8, LoraRoute.FUSED).lora_route is LoraRoute.FUSED
    assert plan(80, LoraRoute.UNFUSED).lora_route is LoraRoute.UNFUSED
    assert Part.LORA_SLOT not in plan(80, LoraRoute.UNFUSED).inputs.sizes


def test_no_lora_mode_no_slot() -> None:
    placement = plan(80, modes=("ddim", "lcm", "lightning"))
    assert placement.lora_route is None and Part.LORA_SLOT not in placement.inputs.sizes


def test_the_smallest_card_is_that_of_the_unfused_route() -> None:
    with_slot = smallest_fit(slot_sizes("fp16"), "fp16")
    assert with_slot == smallest_fit(sizes("fp16"), "fp16")


def test_cfg_above_one_doubles_a_lora_modes_step() -> None:
    off = plan(80).mode("lcm-lora")
    on = plan(80, guidance={"lcm-lora": 2.0}).mode("lcm-lora")
    denoise = {p.step: p for p in off.steps}[Step.DENOISE]
    doubled = {p.step: p for p in on.steps}[Step.DENOISE]
    assert doubled.activations > denoise.activations
    # A card that fits the comparison at the card's guidance may not fit it with CFG on.
    fits_off = next(gb for gb in range(6, 40) if plan(gb, LoraRoute.UNFUSED).fits)
    fits_on = next(gb for gb in range(6, 40) if plan(gb, LoraRoute.UNFUSED, guidance={"lcm-lora": 2.0}).fits)
    assert fits_on >= fits_off


def test_the_lora_the_slot_holds_runs_first() -> None:
    modes = ["lcm-lora", "ddim", "lightning-lora", "lcm"]
    assert comparison_order(modes) == ["ddim", "lcm-lora", "lightning-lora", "lcm"]
    assert comparison_order(modes, ModelRole.LIGHTNING_LORA) == ["ddim", "lightning-lora", "lcm-lora", "lcm"]


def test_the_steady_state_fuses_once_per_switch_between_loras() -> None:
    """The plan's reported (second) comparison starts with the LoRA the first one ended with."""
    placement = plan(80)
    order = [m.mode for m in placement.modes]
    assert order.index("lightning-lora") < order.index("lcm-lora")
    assert without_slot(placement.inputs).sizes.keys() == sizes("fp16").keys()
