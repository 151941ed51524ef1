"""The placement planner at SDXL's real sizes: what fits on 6, 8, 12, 16, 24 and 80 GB cards.

Part sizes are built from the real parameter counts (the diffusers configs' counts, and the LoRA
files' sizes: 393,854,592 bytes in fp16 for a rank-64 Lightning LoRA, about as much for LCM-LoRA).
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from engine.contract.memory_estimates import DTYPE_BYTES, STEP_FIXED_BYTES, decode_bytes, unet_step_bytes
from engine.contract.modes import DEFAULT_COMPARISON
from engine.contract.placement import (
    GIB,
    TEXT_PARTS,
    Measure,
    Part,
    Placement,
    PlanInput,
    comparison_order,
    five_mode_check,
    mode_parts,
    plan_placement,
    smallest_fit,
)
from engine.contract.placement_text import describe_placement

# Parameters (floating-point elements) of each part.
SDXL_PARAMETERS: Mapping[Part, int] = {
    Part.BASE_UNET: 2_567_463_684,
    Part.TEXT_ENCODER: 123_060_480,  # CLIP-L
    Part.TEXT_ENCODER_2: 694_659_840,  # OpenCLIP bigG with its projection
    Part.VAE: 83_653_863,
    Part.LCM_UNET: 2_567_463_684 + 320 * 256,  # plus time_embedding.cond_proj [320, 256]
    Part.LIGHTNING_UNET: 2_567_463_684,
    Part.LCM_LORA: 196_900_000,
    Part.LIGHTNING_LORA: 196_900_000,
}
# Two artist's style LoRAs at rank 32 (half a rank-64 LoRA's UNet matrices), one also patching the
# text encoders.
STYLE_PARAMETERS: Mapping[Part, int] = {Part.STYLE_LORAS: 2 * 98_450_000, Part.STYLE_TEXT: 6_800_000}
CARDS_GB = (6, 8, 12, 16, 24, 80)


def sizes(dtype: str, *, styles: bool = False) -> dict[Part, int]:
    parameters = {**SDXL_PARAMETERS, **(STYLE_PARAMETERS if styles else {})}
    # CLIP's position ids, an int64 buffer of 77, whatever the dtype.
    return {p: n * DTYPE_BYTES[dtype] + (616 if p is Part.TEXT_ENCODER else 0) for p, n in parameters.items()}


def plan(card_gb: float, dtype: str = "fp16", *, styles: bool = False, size: int = 1024) -> Placement:
    return plan_placement(
        PlanInput(
            sizes=sizes(dtype, styles=styles),
            dtype=dtype,
            free_bytes=int(card_gb * GIB),
            width=size,
            height=size,
            modes=DEFAULT_COMPARISON,
        )
    )


def check_consistent(placement: Placement) -> None:
    """Every step has what it needs on the device, and the moves account for every change."""
    on: frozenset[Part] | None = None
    for mode in placement.modes:
        for step in mode.steps:
            if step.step == "encode":
                assert set(TEXT_PARTS) & set(placement.inputs.sizes) <= step.on_device
            elif step.step == "denoise":
                assert set(mode_parts(mode.mode)) & set(placement.inputs.sizes) <= step.on_device
            elif step.step == "decode":
                assert Part.VAE in step.on_device
            if on is not None:
                moved_in = {p for p, _ in step.moved_in}
                moved_out = {p for p, _ in step.moved_out}
                assert step.on_device == (on - moved_out) | moved_in
            assert step.weights == sum(placement.inputs.sizes[p] for p in step.on_device)
            on = step.on_device


@pytest.mark.parametrize("card", CARDS_GB)
@pytest.mark.parametrize("dtype", ["fp16", "fp32"])
@pytest.mark.parametrize("styles", [False, True])
def test_every_plan_is_consistent_and_fits_its_budget_or_says_not(
    card: int, dtype: str, styles: bool
) -> None:
    placement = plan(card, dtype, styles=styles)
    check_consistent(placement)
    assert [m.mode for m in placement.modes] == comparison_order(DEFAULT_COMPARISON)
    if placement.fits:
        assert placement.peak <= placement.inputs.budget
    else:  # the fallback takes every measure and the smallest tiles, and says it does not fit
        assert placement.measures == frozenset(Measure)
        assert placement.peak > placement.inputs.budget


@pytest.mark.parametrize("styles", [False, True])
def test_24_gb_in_fp16_holds_everything_and_a_switch_moves_nothing(styles: bool) -> None:
    placement = plan(24, "fp16", styles=styles)
    assert placement.fits and not placement.measures and not placement.tiled
    assert all(mode.moved_bytes == 0 for mode in placement.modes)
    assert placement.waits == ()


@pytest.mark.parametrize("styles", [False, True])
def test_8_gb_in_fp16_fits_every_mode_with_offloading_and_tiling(styles: bool) -> None:
    placement = plan(8, "fp16", styles=styles)
    assert placement.fits
    assert [m.mode for m in placement.modes] == comparison_order(DEFAULT_COMPARISON)
    # Two full UNets (4.8 GiB each) never share an 8 GB card: the base UNet and the distilled ones
    # take turns, and the fp32 decode of a whole 1024x1024 image (about 4 GiB) is tiled.
    assert Measure.DISTILLED_UNETS_WAIT in placement.measures
    full_unets = {Part.BASE_UNET, Part.LCM_UNET, Part.LIGHTNING_UNET}
    assert all(len(s.on_device & full_unets) <= 1 for m in placement.modes for s in m.steps)
    assert placement.tiled
    lcm = placement.mode("lcm")
    assert Part.BASE_UNET not in lcm.denoise_parts and Part.LCM_UNET in lcm.denoise_parts
    assert lcm.moved_bytes >= sizes("fp16")[Part.LCM_UNET]


def test_6_gb_in_fp16_needs_the_stretch_streaming() -> None:
    placement = plan(6, "fp16")
    # The base UNet alone is 4.8 GiB; with its step's activations and the decode beside it, no
    # placement of whole parts fits the 5.5 GiB left after the reserve...
    assert not placement.fits
    # ...and streaming the UNet layer by layer (group offloading) would.
    assert placement.fits_streamed
    # The largest step is one with a whole UNet on the device.
    worst = max((s for m in placement.modes for s in m.steps), key=lambda s: s.peak)
    assert worst.on_device & {Part.BASE_UNET, Part.LCM_UNET, Part.LIGHTNING_UNET}


def test_more_memory_never_costs_more() -> None:
    for dtype in ("fp16", "fp32"):
        costs = [(not p.fits, p.tiled, p.moved_bytes) for p in (plan(card, dtype) for card in CARDS_GB)]
        assert costs == sorted(costs, reverse=True), dtype


def test_fp32_needs_more_than_fp16() -> None:
    def smallest_card(dtype: str) -> int:
        return next(card for card in CARDS_GB if plan(card, dtype).fits)

    assert smallest_card("fp16") == 8
    assert smallest_card("fp32") > smallest_card("fp16")
    assert plan(24, "fp32").moved_bytes > 0 == plan(24, "fp16").moved_bytes
    for card in CARDS_GB:
        assert plan(card, "fp32").weights == 2 * plan(card, "fp16").weights - 616
    assert not plan(80, "fp32").measures  # an 80 GB card holds all of it even in fp32


def test_style_loras_add_their_bytes() -> None:
    style_bytes = sum(n * 2 for n in STYLE_PARAMETERS.values())
    plain, styled = plan(80, "fp16"), plan(80, "fp16", styles=True)
    assert styled.weights - plain.weights == style_bytes
    # On a card that holds everything, every mode's peak carries them.
    for mode in DEFAULT_COMPARISON:
        assert styled.mode(mode).peak - plain.mode(mode).peak == style_bytes
    # On a small card the style matrices live with the base UNet, and move with it.
    ddim = plan(8, "fp16", styles=True).mode("ddim")
    assert Part.STYLE_LORAS in ddim.denoise_parts
    lcm = plan(8, "fp16", styles=True).mode("lcm")
    assert Part.STYLE_LORAS in {p for s in lcm.steps for p, _ in s.moved_out}


def test_bf16_has_fp16s_weights_but_decodes_without_upcasting() -> None:
    fp16, bf16 = plan(80, "fp16"), plan(80, "bf16")
    assert fp16.weights == bf16.weights
    decode16 = next(s for s in fp16.mode("ddim").steps if s.step == "decode")
    decodeb = next(s for s in bf16.mode("ddim").steps if s.step == "decode")
    assert decode16.activations > decodeb.activations  # SDXL's VAE decodes in fp32 from fp16


def test_the_decode_estimate_takes_gigabytes_untiled_and_tiles_cut_it() -> None:
    whole = decode_bytes(1024, 1024, "fp32", None)
    assert 3 * GIB < whole < 6 * GIB  # three 256-channel 1024x1024 fp32 tensors are 3 GiB
    assert decode_bytes(1024, 1024, "fp32", 512) < whole / 3
    assert decode_bytes(1024, 1024, "fp32", 256) < decode_bytes(1024, 1024, "fp32", 512)
    # A UNet step: CFG doubles the batch, and the activations scale with the pixels.
    one, two = unet_step_bytes(1024, 1024, "fp16", 1), unet_step_bytes(1024, 1024, "fp16", 2)
    assert two - STEP_FIXED_BYTES == 2 * (one - STEP_FIXED_BYTES)
    assert unet_step_bytes(2048, 2048, "fp16", 1) - STEP_FIXED_BYTES == 4 * (one - STEP_FIXED_BYTES)


def test_a_smaller_image_needs_less() -> None:
    assert plan(8, "fp16", size=512).moved_bytes <= plan(8, "fp16").moved_bytes
    assert not plan(8, "fp16", size=512).tiled


def test_forced_measures_are_taken_as_they_are() -> None:
    placement = plan_placement(
        PlanInput(sizes=sizes("fp16"), dtype="fp16", free_bytes=80 * GIB),
        forced=[Measure.DISTILLED_UNETS_WAIT],
    )
    assert placement.measures == {Measure.DISTILLED_UNETS_WAIT}
    lightning_in = placement.mode("lightning").steps[0]
    assert dict(lightning_in.moved_out) == {Part.LCM_UNET: sizes("fp16")[Part.LCM_UNET]}
    assert dict(lightning_in.moved_in) == {Part.LIGHTNING_UNET: sizes("fp16")[Part.LIGHTNING_UNET]}
    assert placement.mode("ddim").moved_bytes == placement.mode("lcm-lora").moved_bytes == 0


def test_modes_without_files_are_not_planned() -> None:
    partial: dict[Part, int] = {
        p: b for p, b in sizes("fp16").items() if p not in (Part.LCM_UNET, Part.LCM_LORA)
    }
    placement = plan_placement(PlanInput(sizes=partial, dtype="fp16", free_bytes=8 * GIB))
    assert placement.skipped == ("lcm", "lcm-lora")
    assert {m.mode for m in placement.modes} == {"ddim", "lightning", "lightning-lora"}


def test_five_mode_check_and_text() -> None:
    check = five_mode_check(sizes("fp16"), "fp16", 8 * GIB)
    assert check.fits and (check.inputs.width, check.inputs.height) == (1024, 1024)
    text = "\n".join(describe_placement(plan(8, "fp16"), check))
    assert "five-mode comparison: fits at 1024x1024 moving" in text
    assert "the base UNet waits in CPU RAM while a full distilled UNet runs" in text
    assert "tiles of 512x512" in text
    big = "\n".join(describe_placement(plan(24, "fp16")))
    assert "with nothing moved" in big and "measures: none" in big
    small = "\n".join(describe_placement(plan(6, "fp16")))
    assert "does not fit at 1024x1024" in small and "group offloading" in small


# `python -m tests.engine.contract.test_placement` prints the goal's plans.
def print_plans() -> None:  # pragma: no cover
    for card in (6, 8, 12, 24):
        print("\n".join(describe_placement(plan(card, "fp16"))), end="\n\n")


if __name__ == "__main__":  # pragma: no cover
    print_plans()


def test_smallest_fit_is_where_plans_start_to_fit() -> None:
    for dtype in ("fp16", "bf16", "fp32"):
        least = smallest_fit(sizes(dtype), dtype)
        assert five_mode_check(sizes(dtype), dtype, least).fits
        assert not five_mode_check(sizes(dtype), dtype, least - GIB // 4).fits
    assert 6 * GIB < smallest_fit(sizes("fp16"), "fp16") <= 8 * GIB
    assert smallest_fit(sizes("bf16"), "bf16") <= smallest_fit(sizes("fp16"), "fp16")  # no fp32 decode
    assert smallest_fit(sizes("fp32"), "fp32") > smallest_fit(sizes("fp16"), "fp16")


def mode_rows(lines: list[str]) -> dict[str, str]:
    """The modes table's rows by mode: what each holds while denoising, as said."""
    table = lines[lines.index(next(line for line in lines if line.startswith("modes, in the order"))) + 2 :]
    rows = {}
    for line in table:
        if not line.startswith("  "):
            break
        rows[line.split()[0]] = line.split("  ")[-1]
    return rows


def test_the_modes_table_says_every_part_or_what_is_not_held() -> None:
    """A row names the parts held while denoising, or what is not held where that is shorter."""
    roomy = plan(24, "fp16")
    assert set(mode_rows(describe_placement(roomy)).values()) == {"every part"}
    for placement in (plan(8, "fp16"), plan(12, "fp16"), plan(8, "fp16", styles=True)):
        every = {part for part, size in placement.inputs.sizes.items() if size}
        rows = mode_rows(describe_placement(placement))
        assert set(rows) == {m.mode for m in placement.modes}
        for mode, said in rows.items():
            held = placement.mode(mode).denoise_parts
            if said.startswith("every part but "):
                assert set(said.removeprefix("every part but ").split(", ")) == every - held, mode
            else:
                assert set(said.split(", ")) == held, mode
