"""Each mode against docs/modes.md and against plain diffusers run as its model card says, from the
same folder through the same route (bit-exact on any CPU; see tests/plain_diffusers.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from devtools.tiny_model import TinyModelSet
from engine.contract.modes import DEFAULT_COMPARISON
from engine.contract.request import GenerationRequest, ModeResult, ModeSettings
from engine.runtime.engine import Engine
from tests.plain_diffusers import CARDS, folder_base

PROMPT = "a large red circle on a blue background"
SEED = 1234


def run_mode(engine: Engine, mode: str, *, seed: int = SEED, **settings: Any) -> ModeResult:
    request = GenerationRequest(prompt=PROMPT, seeds=(seed,), modes=(ModeSettings(mode=mode, **settings),))
    return engine.run(request).results[0]


def generator() -> torch.Generator:
    return torch.Generator("cpu").manual_seed(SEED)


def plain_base(models: TinyModelSet) -> Any:
    return folder_base(models).pipeline()


# The timesteps diffusers and Refiners both give for these settings: LCM 4 steps index a 50-step
# trailing grid, Euler trailing 4 steps [999, 749, 499, 249], DDIM leading offset 1 ends at 1.
EXPECTED_TIMESTEPS = {
    "ddim": list(range(958, 0, -33)),  # [958, 925, ..., 34, 1]
    "lcm": [999, 759, 499, 259],
    "lcm-lora": [999, 759, 499, 259],
    "lightning": [999, 749, 499, 249],
    "lightning-lora": [999, 749, 499, 249],
}


@pytest.mark.parametrize("mode", DEFAULT_COMPARISON)
def test_timesteps_match_modes_md(engine_all: Engine, mode: str) -> None:
    result = run_mode(engine_all, mode)
    assert [round(t) for t in result.timesteps] == EXPECTED_TIMESTEPS[mode]
    assert all(float(t).is_integer() for t in result.timesteps)
    assert result.steps == len(EXPECTED_TIMESTEPS[mode])


@pytest.mark.parametrize("mode", DEFAULT_COMPARISON)
def test_image_equals_plain_diffusers_with_card_settings(
    engine_all: Engine, tiny_models: TinyModelSet, mode: str
) -> None:
    # The same folder through the same route as the engine: see tests/plain_diffusers.py.
    expected = CARDS[mode](tiny_models, folder_base(tiny_models), PROMPT, SEED)
    # Run a different mode first so that the engine has to switch into this one.
    other = "lcm-lora" if mode == "ddim" else "ddim"
    run_mode(engine_all, other, steps=2)
    result = run_mode(engine_all, mode)
    assert result.image.shape == expected.shape
    np.testing.assert_array_equal(result.image, expected)


def test_same_seed_twice_is_identical_and_seeds_differ(engine_all: Engine) -> None:
    first = run_mode(engine_all, "lcm")
    second = run_mode(engine_all, "lcm")
    other_seed = run_mode(engine_all, "lcm", seed=SEED + 1)
    np.testing.assert_array_equal(first.image, second.image)
    assert not np.array_equal(first.image, other_seed.image)


def test_modes_differ_from_one_another(engine_all: Engine) -> None:
    request = GenerationRequest(
        prompt=PROMPT, seeds=(SEED,), modes=tuple(ModeSettings(mode=m) for m in DEFAULT_COMPARISON)
    )
    images = {r.mode: r.image for r in engine_all.run(request).results}
    assert list(images) == list(DEFAULT_COMPARISON)
    names = list(images)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            difference = np.abs(images[a].astype(int) - images[b].astype(int)).mean()
            assert difference > 1.0, f"{a} and {b} gave nearly the same image"


def test_adapters_off_equals_the_base_exactly(engine_all: Engine, tiny_models: TinyModelSet) -> None:
    run_mode(engine_all, "lightning-lora")  # leave an adapter active, then go back to the base
    with_adapters_loaded = run_mode(engine_all, "ddim", steps=5)
    pipe = plain_base(tiny_models)  # no LoRA ever loaded
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    plain = np.asarray(
        pipe(PROMPT, num_inference_steps=5, guidance_scale=5.0, generator=generator()).images[0]
    )
    np.testing.assert_array_equal(with_adapters_loaded.image, plain)
