"""Every mode of the field (issue 21) against plain diffusers run with its model card's snippet, on the
tiny fixtures in the real layouts (devtools/field_fixtures.py): fp32 on the CPU, bit for bit, the base
loaded by the same route on both sides (tests/plain_diffusers.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from devtools.field_fixtures import FieldSet, build_field_set
from devtools.tiny_model import TinyModelSet
from engine.contract.modes import MODES, ModeFile
from engine.contract.placement import (
    LoraRoute,
    Measure,
    Part,
    PlanInput,
    Where,
    own_text_part,
    own_vae_part,
    plan_placement,
)
from engine.contract.request import GenerationRequest, ModeResult, ModeSettings
from engine.files.model_paths import ModelPaths
from engine.files.part_sizes import model_sizes
from engine.outputs.run_writer import write_comparison
from engine.runtime.engine import Engine
from tests.engine.outputs.test_reproduce import assert_replays_bit_for_bit, recipe_of
from tests.plain_diffusers import folder_base
from tests.plain_field_cards import AYS_SDXL, FIELD_CARDS, card_image

PROMPT = "a large red circle on a blue background"
NEGATIVE = "a green square"
SEED = 1234


@pytest.fixture(scope="module")
def field(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> FieldSet:
    return build_field_set(tiny_models, tmp_path_factory.mktemp("field") / "models")


def role_files(field: FieldSet) -> dict[str, Path]:
    """Each role of the field's modes with the fixture its card's run uses."""
    return {
        spec.role: field[FIELD_CARDS[name].file].path
        for name, spec in MODES.items()
        if name in FIELD_CARDS and spec.role is not None
    }


@pytest.fixture(scope="module")
def field_engine(tiny_models: TinyModelSet, field: FieldSet) -> Engine:
    return Engine(ModelPaths.from_roles({"base": tiny_models.base, **role_files(field)}))


def run(engine: Engine, mode: str, negative: str = "", **settings: object) -> ModeResult:
    request = GenerationRequest(
        prompt=PROMPT,
        negative_prompt=negative,
        seeds=(SEED,),
        modes=(ModeSettings(mode=mode, **settings),),  # type: ignore[arg-type]
    )
    return engine.run(request).results[0]


def test_every_field_mode_is_runnable_from_its_files(field_engine: Engine) -> None:
    assert set(FIELD_CARDS) <= set(field_engine.available_modes())


@pytest.mark.parametrize("mode", sorted(FIELD_CARDS))
def test_image_equals_plain_diffusers_with_the_cards_snippet(
    field_engine: Engine, field: FieldSet, tiny_models: TinyModelSet, mode: str
) -> None:
    card = FIELD_CARDS[mode]
    # The CFG modes take the negative prompt, as their cards' snippets pass one.
    negative = NEGATIVE if MODES[mode].default_guidance > 1.0 else ""
    path = field[card.file].path if card.file else None
    # Every LoRA mode runs fused in the one slot (the fused route), as its card fuses it.
    lora = MODES[mode].file is ModeFile.LORA
    expected = card_image(mode, path, folder_base(tiny_models), PROMPT, negative, SEED, fused=lora)
    run(field_engine, "ddim" if mode != "ddim" else "tcd", steps=2)  # switch into the mode
    result = run(field_engine, mode, negative)
    assert result.lora_route == ("fused" if lora else None)
    assert result.image.shape == expected.shape
    np.testing.assert_array_equal(result.image, expected)
    # The card's own settings leave nothing to warn about, but the tiny size for a model trained at 512.
    size = MODES[mode].native_size
    assert result.warnings == ((f"{mode}: trained at 512x512; 64x64 gives poorer images",) if size else ())


@pytest.mark.parametrize(("mode", "lora_scale"), [("tcd", 1.0), ("dmd2-lora", 1.0), ("dmd2-lora", 0.7)])
def test_a_fused_field_lora_equals_load_lora_weights_and_fuse_lora_at_its_scale(
    field_engine: Engine, field: FieldSet, tiny_models: TinyModelSet, mode: str, lora_scale: float
) -> None:
    """Any LoRA role runs in the one fused slot, fused at the mode's lora_scale: bit for bit what
    diffusers' load_lora_weights + fuse_lora(lora_scale=...) + the card's scheduler and call give (TCD
    with its eta, DMD2 with its timesteps), and the slot holds that role."""
    spec = MODES[mode]
    if lora_scale != 1.0:
        spec = replace(spec, name=f"{mode}-scaled", title=f"{spec.title} scaled", lora_scale=lora_scale)
    path = field[FIELD_CARDS[mode].file].path
    expected = card_image(
        mode, path, folder_base(tiny_models), PROMPT, "", SEED, fused=True, lora_scale=lora_scale
    )
    with MODES.added((spec,) if lora_scale != 1.0 else ()):
        run(field_engine, "ddim", steps=2)
        result = run(field_engine, spec.name)
        assert field_engine.lora_route_of(spec.name) is LoraRoute.FUSED
        assert field_engine.slot is not None
        assert (field_engine.slot.fused, field_engine.slot.scale) == (spec.adapter, lora_scale)
    assert result.lora_route == "fused"
    np.testing.assert_array_equal(result.image, expected)
    if lora_scale != 1.0:  # the scale reaches the fuse: the card's scale-1 image differs
        at_one = card_image(mode, path, folder_base(tiny_models), PROMPT, "", SEED, fused=True)
        assert not np.array_equal(result.image, at_one)


@pytest.mark.parametrize(
    ("mode", "timesteps"),
    [
        ("dmd2", [999, 749, 499, 249]),  # passed explicitly: LCM's own 4 steps are [999, 759, 499, 259]
        ("dmd2-lora", [999, 749, 499, 249]),
        ("hyper-unet", [800]),
        ("ays", AYS_SDXL),
        ("turbo", [999]),  # Euler ancestral, trailing, 1 step
        ("hyper-lora", [999, 749, 499, 249]),  # DDIM trailing at the file's 4 steps
        ("pcm-normalcfg", [999, 874, 749, 624, 499, 374, 249, 124]),  # the file's 8 steps, trailing
    ],
)
def test_timesteps_are_the_cards(field_engine: Engine, mode: str, timesteps: list[int]) -> None:
    result = run(field_engine, mode)
    assert [round(t) for t in result.timesteps] == timesteps
    assert result.steps == len(timesteps)


def test_eta_reaches_the_scheduler_and_is_recorded(field_engine: Engine) -> None:
    default = run(field_engine, "tcd")
    deterministic = run(field_engine, "tcd", eta=0.0)
    assert default.eta == 0.3 and deterministic.eta == 0.0
    assert not np.array_equal(default.image, deterministic.image)
    assert run(field_engine, "flash-lora").eta is None  # a mode without eta passes none


def test_leaving_a_cards_settings_warns(field_engine: Engine) -> None:
    assert any("distilled for 4 steps" in w for w in run(field_engine, "hyper-lora", steps=6).warnings)
    assert any("timesteps for 4 steps only" in w for w in run(field_engine, "dmd2-lora", steps=3).warnings)
    assert any("outside the usual 2 to 8" in w for w in run(field_engine, "tcd", steps=12).warnings)
    assert any(
        "below the card's 5 to 8" in w for w in run(field_engine, "hyper-lora-cfg", guidance=2.0).warnings
    )


def test_dmd2s_one_step_file_runs_the_cards_one_step_timesteps(field_engine: Engine) -> None:
    # Only the name tells the 1-step UNet from the 4-step one (the same keys and shapes); the engine
    # reads the step count from it and picks the card's [399].
    four = field_engine.files["dmd2-unet"]
    one = replace(four, path=four.path.with_name("dmd2_sdxl_1step_unet_fp16.safetensors"))
    field_engine.files["dmd2-unet"] = one
    try:
        result = run(field_engine, "dmd2")
    finally:
        field_engine.files["dmd2-unet"] = four
    assert (result.steps, [round(t) for t in result.timesteps], result.warnings) == (1, [399], ())


def test_the_plan_counts_each_roles_own_part(tiny_models: TinyModelSet, field: FieldSet) -> None:
    sizes = model_sizes(ModelPaths.from_roles({"base": tiny_models.base, **role_files(field)})).bytes_in(
        "fp32"
    )
    assert {"dmd2-unet", "hyper-unet", "tcd-lora", "flash-lora"} <= set(sizes)
    plan = plan_placement(
        PlanInput(
            sizes=sizes, dtype="fp32", free_bytes=0, modes=("dmd2", "tcd", "hyper-unet"), width=64, height=64
        ),
        forced=(Measure.DISTILLED_UNETS_WAIT,),
    )
    assert [m.mode for m in plan.modes] == ["tcd", "dmd2", "hyper-unet"]  # base-UNet modes first
    # One full distilled UNet at a time, whatever its role: each comes in for its mode only.
    assert (
        "dmd2-unet" in plan.mode("dmd2").denoise_parts and "hyper-unet" not in plan.mode("dmd2").denoise_parts
    )
    assert {"tcd-lora", "base unet"} <= plan.mode("tcd").denoise_parts
    assert "dmd2-unet" not in plan.mode("hyper-unet").denoise_parts
    assert plan.resting[Part("dmd2-unet")] is Where.CPU and plan.resting[Part("tcd-lora")] is Where.DEVICE


def test_field_modes_replay_bit_for_bit(field_engine: Engine, tmp_path: Path) -> None:
    """reproduce.py rebuilds a whole pipeline's, a full UNet's, an eta mode's and a fused LoRA's at a
    lora_scale other than 1 images with plain diffusers."""
    scaled = replace(MODES["dmd2-lora"], name="dmd2-lora-scaled", title="DMD2 LoRA scaled", lora_scale=0.7)
    modes = ("turbo", "dmd2", "tcd", "hyper-lora", scaled.name)
    request = GenerationRequest(
        prompt=PROMPT, seeds=(SEED,), modes=tuple(ModeSettings(mode=m) for m in modes)
    )
    out = tmp_path / "comparison"
    out.mkdir()
    with MODES.added((scaled,)):
        write_comparison(out, field_engine.run(request), field_engine.run_context())
    recipe = recipe_of(out)
    by_mode = {image["mode"]: image for image in recipe["images"]}
    assert by_mode[scaled.name]["lora_route"] == by_mode["tcd"]["lora_route"] == "fused"
    assert by_mode[scaled.name]["lora_scale"] == 0.7 and by_mode["tcd"]["eta"] == 0.3
    assert recipe["files"]["turbo"]["pipeline"] and recipe["cannot_replay"] == []
    assert_replays_bit_for_bit(out, [image["file"] for image in recipe["images"]], tmp_path)


def test_a_pipeline_whose_text_encoders_and_vae_are_the_bases_shares_them(field_engine: Engine) -> None:
    """Equal bit for bit: the turbo mode runs on the base's own text encoders and VAE, the same tensors
    (no second copy is kept), and the plan and the memory report count no part of its own for them."""
    turbo, base = field_engine.pipes["turbo"], field_engine.base
    for name in ("text_encoder", "text_encoder_2", "vae"):
        assert getattr(turbo, name) is getattr(base, name)
        ours = {t.untyped_storage().data_ptr() for t in getattr(turbo, name).state_dict().values()}
        theirs = {t.untyped_storage().data_ptr() for t in getattr(base, name).state_dict().values()}
        assert ours == theirs
    parts = field_engine.pipelines["turbo"]
    assert not parts.own_text and not parts.own_vae
    assert {own_text_part("turbo"), own_vae_part("turbo")}.isdisjoint(field_engine.placer.parts)
    names = {m.name for m in field_engine.memory_report().models}
    assert {"turbo text encoders", "turbo vae"}.isdisjoint(names)
    assert field_engine.text_key(MODES["turbo"]) == "base"
