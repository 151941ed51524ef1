"""SDXL-Turbo whose text encoders and VAE differ from the base's: loaded once, apart, and its mode encodes
with its own text encoders and decodes with its own VAE. Against plain diffusers loading the turbo
pipeline whole (AutoPipelineForText2Image for the folder, StableDiffusionXLPipeline.from_single_file for
the single file) run with its card's settings: fp32 on the CPU, bit for bit, on the tiny fixtures of
devtools/field_fixtures.write_turbo_apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import AutoPipelineForText2Image, EulerAncestralDiscreteScheduler, StableDiffusionXLPipeline

from devtools.field_fixtures import write_turbo_apart, write_turbo_folder
from devtools.tiny_model import TinyModelSet
from engine.cli import EXIT_OK, main
from engine.contract.modes import MODES
from engine.contract.placement import (
    Measure,
    Part,
    PlanInput,
    Step,
    own_text_part,
    own_vae_part,
    plan_placement,
)
from engine.contract.placement_text import describe_placement
from engine.contract.request import GenerationRequest, ModeSettings
from engine.files.model_paths import ModelPaths
from engine.files.part_sizes import model_sizes
from engine.outputs.run_writer import write_comparison
from engine.runtime.engine import Engine
from tests.engine.outputs.test_reproduce import assert_replays_bit_for_bit, recipe_of

PROMPT = "a large red circle on a blue background"
SEED = 1234
LAYOUTS = ("folder", "single-file")


@pytest.fixture(scope="module")
def apart(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder, single = write_turbo_apart(tiny_models, tmp_path_factory.mktemp("turbo-apart"))
    return {"folder": folder, "single-file": single}


@pytest.fixture(scope="module")
def engines(tiny_models: TinyModelSet, apart: dict[str, Path]) -> dict[str, Engine]:
    return {
        layout: Engine(ModelPaths.from_roles({"base": tiny_models.base, "turbo": path}))
        for layout, path in apart.items()
    }


def card_image(path: Path, config: Path) -> np.ndarray:
    """The card's run: the whole pipeline (its folder with its own scheduler, EulerAncestral trailing;
    the single file with the base's configs and the scheduler set by hand), 1 step, guidance 0."""
    if path.is_dir():
        pipe: Any = AutoPipelineForText2Image.from_pretrained(
            path, dtype=torch.float32, local_files_only=True
        )
        assert type(pipe.scheduler) is EulerAncestralDiscreteScheduler
    else:
        pipe = StableDiffusionXLPipeline.from_single_file(
            str(path), config=str(config), local_files_only=True, dtype=torch.float32
        )
        pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(
            pipe.scheduler.config, timestep_spacing="trailing"
        )
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator("cpu").manual_seed(SEED)
    out = pipe(PROMPT, num_inference_steps=1, guidance_scale=0.0, generator=generator)
    return np.asarray(out.images[0])


def compare(engine: Engine, *modes: str) -> Any:
    request = GenerationRequest(
        prompt=PROMPT, seeds=(SEED,), modes=tuple(ModeSettings(mode=m) for m in modes)
    )
    return engine.run(request)


def storages(*modules: Any) -> set[int]:
    return {t.untyped_storage().data_ptr() for m in modules for t in m.state_dict().values()}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_its_own_text_encoders_and_vae_are_held_apart(engines: dict[str, Engine], layout: str) -> None:
    engine = engines[layout]
    parts = engine.pipelines["turbo"]
    assert parts.own_text and parts.own_vae
    turbo, base = engine.pipes["turbo"], engine.base
    # Its own objects, no tensor shared with the base's; every other pipeline keeps the base's.
    assert storages(turbo.text_encoder, turbo.text_encoder_2, turbo.vae).isdisjoint(
        storages(base.text_encoder, base.text_encoder_2, base.vae)
    )
    assert engine.pipes["base"].text_encoder is base.text_encoder
    assert engine.text_key(MODES["turbo"]) == "turbo" and engine.text_key(MODES["ddim"]) == "base"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_turbo_image_equals_plain_diffusers_loading_the_pipeline_whole(
    engines: dict[str, Engine], apart: dict[str, Path], tiny_models: TinyModelSet, layout: str
) -> None:
    engine = engines[layout]
    comparison = compare(engine, "ddim", "turbo")
    ddim, turbo = comparison.results
    # Two encodings: the base's text encoders for ddim, the turbo's own for turbo.
    assert not ddim.text_encoding_shared and not turbo.text_encoding_shared
    expected = card_image(apart[layout], tiny_models.base)
    np.testing.assert_array_equal(turbo.image, expected)


def test_its_own_parts_change_the_image(
    engines: dict[str, Engine], tiny_models: TinyModelSet, tmp_path: Path
) -> None:
    """The same UNet with the base's text encoders and VAE gives another image: the turbo mode really
    encodes and decodes with its own."""
    shared = Engine(
        ModelPaths.from_roles({"base": tiny_models.base, "turbo": write_turbo_folder(tiny_models, tmp_path)})
    )
    assert not shared.pipelines["turbo"].own_text
    ours = compare(engines["folder"], "turbo").results[0].image
    assert not np.array_equal(ours, compare(shared, "turbo").results[0].image)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_plan_and_the_memory_report_count_its_own_parts(
    engines: dict[str, Engine], apart: dict[str, Path], tiny_models: TinyModelSet, layout: str
) -> None:
    engine = engines[layout]
    text, vae = own_text_part("turbo"), own_vae_part("turbo")
    # From the headers (`fewstep plan`) as from the loaded modules (the engine): the same bytes, but for
    # the buffers a module makes itself where the file lacks them (each CLIP's 77 int64 position ids).
    sizes = model_sizes(ModelPaths.from_roles({"base": tiny_models.base, "turbo": apart[layout]})).bytes_in(
        "fp32"
    )
    held = engine.placer.parts
    assert 0 <= held[text].size - sizes[text] <= 2 * 77 * 8
    assert held[text].size == held[Part.TEXT_ENCODER].size + held[Part.TEXT_ENCODER_2].size
    assert sizes[vae] == held[vae].size == held[Part.VAE].size
    report = {m.name: m.bytes for m in engine.memory_report().models}
    assert report["turbo text encoders"] == held[text].size and report["turbo vae"] == held[vae].size
    plan = plan_placement(
        PlanInput(sizes=sizes, dtype="fp32", free_bytes=0, modes=("ddim", "turbo"), width=64, height=64),
        forced=(Measure.TEXT_ENCODERS_WAIT, Measure.VAE_WAITS),
    )
    turbo_steps = {s.step: s for s in plan.mode("turbo").steps}
    # turbo encodes again, with its own text encoders only, and decodes with its own VAE only.
    assert text in turbo_steps[Step.ENCODE].on_device
    assert Part.TEXT_ENCODER not in turbo_steps[Step.ENCODE].on_device
    assert vae in turbo_steps[Step.DECODE].on_device and Part.VAE not in turbo_steps[Step.DECODE].on_device
    lines = "\n".join(describe_placement(plan))
    assert "turbo text encoders" in lines and "turbo vae" in lines


def test_fewstep_plan_shows_its_own_parts(
    apart: dict[str, Path], tiny_models: TinyModelSet, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["plan", "--base", str(tiny_models.base), "--model", f"turbo={apart['folder']}"]
    assert main([*argv, "--vram", "1", "--size", "64x64", "--modes", "ddim,turbo"]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "turbo text encoders" in printed and "turbo vae" in printed


def test_the_placer_moves_its_own_parts_for_its_mode(engines: dict[str, Engine]) -> None:
    engine = engines["folder"]
    text, vae = own_text_part("turbo"), own_vae_part("turbo")
    engine.placer.prepare(Step.ENCODE, "turbo")
    assert text in engine.placer.on
    engine.placer.prepare(Step.DECODE, "turbo")
    assert vae in engine.placer.on


def test_the_shared_case_counts_no_part_of_its_own(tiny_models: TinyModelSet, tmp_path: Path) -> None:
    turbo = write_turbo_folder(tiny_models, tmp_path)
    sizes = model_sizes(ModelPaths.from_roles({"base": tiny_models.base, "turbo": turbo})).bytes_in("fp32")
    assert {own_text_part("turbo"), own_vae_part("turbo")}.isdisjoint(sizes)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_reproduce_replays_it_loading_the_pipeline_whole(
    engines: dict[str, Engine], apart: dict[str, Path], layout: str, tmp_path: Path
) -> None:
    engine = engines[layout]
    out = tmp_path / "comparison"
    out.mkdir()
    write_comparison(out, compare(engine, "ddim", "turbo"), engine.run_context())
    recipe = recipe_of(out)
    assert recipe["files"]["turbo"]["pipeline"] and recipe["cannot_replay"] == []
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    turbo_files = [r["path"] for r in report["model_files"] if r["role"] == "turbo"]
    assert turbo_files and all(Path(p).is_relative_to(apart[layout]) for p in turbo_files)
    assert_replays_bit_for_bit(out, [image["file"] for image in recipe["images"]], tmp_path)
