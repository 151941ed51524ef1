"""The engine carrying out a placement plan, on the CPU with forced plans and the tiny fixtures."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from devtools.tiny_model import TinyModelSet
from engine.contract.modes import DEFAULT_COMPARISON, ModelRole
from engine.contract.placement import Measure, Part, Step
from engine.contract.request import GenerationRequest, ModeSettings
from engine.runtime.engine import Engine
from engine.runtime.placer import move_shared
from tests.conftest import model_paths_of

PROMPT = "a red circle"


def request(*modes: str, size: int = 64) -> GenerationRequest:
    return GenerationRequest(
        prompt=PROMPT,
        seeds=(1,),
        width=size,
        height=size,
        modes=tuple(ModeSettings(mode=m) for m in modes),
    )


@pytest.fixture(scope="module")
def placed_engine(tiny_models: TinyModelSet) -> Engine:
    """Every measure forced, no tiling: every part moves as a small card would move it."""
    return Engine(model_paths_of(tiny_models), measures=list(Measure))


def test_every_measure_moves_what_the_plan_says(placed_engine: Engine) -> None:
    placed_engine.run(request(*DEFAULT_COMPARISON))  # the first comparison starts from the resting state
    placed_engine.run(request(*DEFAULT_COMPARISON))
    report = placed_engine.placement_report()
    assert report["planned"] is False and set(report["measures"]) == {m.name.lower() for m in Measure}
    done = [(m["mode"], m["step"], m["part"], m["direction"], m["bytes"]) for m in report["moves"]]
    planned = [
        (mode.mode, str(step.step), str(part), direction, size)
        for mode in placed_engine.placer.placement.modes
        for step in mode.steps
        for direction, moves in (("out", step.moved_out), ("in", step.moved_in))
        for part, size in moves
    ]
    assert done == planned
    assert report["moved_bytes"] == placed_engine.placer.placement.moved_bytes > 0
    assert all(m["seconds"] >= 0 for m in report["moves"])
    # A full distilled UNet never shares the device with the base UNet under these measures.
    assert ("lcm", "denoise", "base unet", "out") in [d[:4] for d in done]


def test_moving_parts_changes_no_image(placed_engine: Engine, engine_all: Engine) -> None:
    moved = placed_engine.run(request(*DEFAULT_COMPARISON))
    still = engine_all.run(request(*DEFAULT_COMPARISON))
    for a, b in zip(moved.results, still.results, strict=True):
        assert a.mode == b.mode
        np.testing.assert_array_equal(a.image, b.image)


def test_the_residency_report_follows_the_placer(placed_engine: Engine) -> None:
    placed_engine.run(request("lcm"))
    report = placed_engine.memory_report()
    models = report.to_json()["models"]
    placer = placed_engine.placer
    assert report.residency == "one"
    assert Part.TEXT_ENCODER not in placer.on and Part.VAE not in placer.on  # they wait after use
    assert Part.LCM_UNET in placer.on and Part.BASE_UNET not in placer.on
    assert models["lcm unet"]["on"] == "cpu"  # this device is the CPU: "cpu" either way
    assert report.placement is not None and report.placement["parts"]["lcm unet"]["rests_on"] == "cpu"
    assert report.to_json()["placement"]["measures"] == sorted(m.name.lower() for m in Measure)


def test_move_shared_keeps_the_twins_sharing(tiny_models: TinyModelSet) -> None:
    engine = Engine(model_paths_of(tiny_models))
    twins = [engine.pipes[r].unet for r in (ModelRole.LCM_LORA, ModelRole.LIGHTNING_LORA)]
    before = engine.run(request("ddim", "lcm-lora"))
    lora_before = {n: p.data_ptr() for n, p in twins[0].named_parameters() if ".lcm-lora." in n}
    base_bytes = sum(
        p.numel() * p.element_size() for n, p in engine.base.unet.named_parameters() if "lora_" not in n
    ) + sum(b.numel() * b.element_size() for b in engine.base.unet.buffers())
    copies: list[int] = []

    def copy(tensor: torch.Tensor, _device: torch.device) -> torch.Tensor:
        copies.append(tensor.numel())
        return tensor.clone()  # a real copy, as a move to another device makes

    # "meta" only so that no tensor counts as already there; the copies stay on the CPU.
    moved = move_shared(
        [engine.base.unet, *twins],
        torch.device("meta"),
        skip=lambda name: ".lcm-lora." in name or ".lightning-lora." in name,
        convert=copy,
    )
    assert moved == base_bytes  # each shared tensor once, not once per twin
    # peft names a wrapped layer's own weight "...base_layer.weight".
    base = {n.replace(".base_layer", ""): p for n, p in engine.base.unet.named_parameters()}
    for twin in twins:
        for name, parameter in twin.named_parameters():
            if "lora_" not in name:
                shared = base[name.replace(".base_layer", "")]
                assert parameter.data_ptr() == shared.data_ptr(), name  # still shared
    assert {n: p.data_ptr() for n, p in twins[0].named_parameters() if ".lcm-lora." in n} == lora_before
    after = engine.run(request("ddim", "lcm-lora"))
    for a, b in zip(before.results, after.results, strict=True):
        np.testing.assert_array_equal(a.image, b.image)


def test_a_forced_tile_tiles_the_decode(tiny_models: TinyModelSet, engine_all: Engine) -> None:
    whole = engine_all.run(request("lightning-lora")).results[0].image
    assert not engine_all.base.vae.use_tiling
    images = {}
    for tile in (32, 64):
        tiled = Engine(
            model_paths_of(tiny_models, without=("lcm_unet", "lightning_unet")), measures=(), tile=tile
        )
        images[tile] = tiled.run(request("lightning-lora")).results[0].image
        vae = tiled.base.vae
        assert vae.use_tiling and vae.tile_sample_min_size == tile
        assert vae.tile_latent_min_size == tile // tiled.base.vae_scale_factor
        assert tiled.placement_report()["tiled_decode"] == tile
    # 32-pixel tiles split a 64x64 decode into overlapping tiles (random weights: visibly different);
    # a tile as large as the image leaves it whole, bit for bit.
    assert np.abs(images[32].astype(int) - whole.astype(int)).max() > 0
    np.testing.assert_array_equal(images[64], whole)


def test_vram_plans_from_the_given_memory(tiny_models: TinyModelSet) -> None:
    # The activation estimates are SDXL's: 0.6 GiB leaves less than a step needs after the reserve,
    # so every measure is taken, and the plan says it does not fit.
    small = Engine(replace(model_paths_of(tiny_models), lcm_unet=None), vram=0.6)
    report = small.placement_report()
    assert report["planned"] is True and report["free_bytes"] == int(0.6 * 1024**3)
    assert report["fits"] is False and "base_unet_waits" in report["measures"]
    assert "do not fit 0.60 GiB of free GPU memory" in small.placement_warnings()[0]
    roomy = Engine(replace(model_paths_of(tiny_models), lcm_unet=None), vram=80)
    assert roomy.placement_report()["measures"] == [] and roomy.placement_report()["fits"] is True
    assert roomy.memory_report().residency == "all" and roomy.placement_warnings() == []


def test_encoding_comes_before_the_switch(placed_engine: Engine) -> None:
    placed_engine.run(request("lcm", "ddim"))
    steps = [(m["mode"], m["step"]) for m in placed_engine.placement_report()["moves"]]
    first_denoise = steps.index(("ddim", str(Step.DENOISE)))
    assert ("ddim", str(Step.ENCODE)) in steps[:first_denoise]


def test_a_repeated_request_reuses_its_plan(placed_engine: Engine) -> None:
    placed_engine.replan(64, 64, ("ddim",))
    first = placed_engine.placer.placement
    placed_engine.replan(64, 64, ("ddim",))
    assert placed_engine.placer.placement is first
    placed_engine.replan(128, 128, ("ddim",))
    assert placed_engine.placer.placement is not first and placed_engine.placer.placement.inputs.width == 128
