"""The half-precision paths a GPU runs (fp16, and bf16 where a card has it), exercised on the CPU.

Each mode in float16 and bfloat16 against the model card's recipe in plain diffusers in the same
dtype, loaded by the same route (fp16 files for fp16 runs, the full weights cast for bf16), so the
images must agree bit for bit. And no library warning reaches the user's terminal in fp16.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from devtools.tiny_model import TinyModelSet
from engine.contract.modes import DEFAULT_COMPARISON
from engine.runtime.device import DevicePlan
from engine.runtime.engine import Engine
from tests.conftest import REPO_ROOT, model_paths_of
from tests.engine.runtime.test_engine_modes import PROMPT, SEED, run_mode
from tests.plain_diffusers import CARDS, folder_base

HALF_DTYPES = (torch.float16, torch.bfloat16)


@pytest.fixture(scope="module", params=HALF_DTYPES, ids=lambda d: str(d).removeprefix("torch."))
def half_engine(request: pytest.FixtureRequest, tiny_models: TinyModelSet) -> Iterator[Engine]:
    dtype: torch.dtype = request.param
    yield Engine(model_paths_of(tiny_models), DevicePlan(torch.device("cpu"), dtype, threads=1))


def _weight_dtypes(engine: Engine) -> set[torch.dtype]:
    modules = [engine.base.text_encoder, engine.base.text_encoder_2, engine.base.vae]
    modules += [pipe.unet for pipe in engine.pipes.values()]
    return {p.dtype for m in modules for p in m.parameters()}


def test_every_weight_is_held_in_the_asked_dtype(half_engine: Engine) -> None:
    assert _weight_dtypes(half_engine) == {half_engine.plan.dtype}


@pytest.mark.parametrize("mode", DEFAULT_COMPARISON)
def test_half_precision_image_equals_plain_diffusers_in_the_same_dtype(
    half_engine: Engine, tiny_models: TinyModelSet, mode: str
) -> None:
    dtype = half_engine.plan.dtype
    with warnings.catch_warnings():
        # The plain diffusers recipe prints diffusers' own upcast notice in fp16; that is its business.
        warnings.simplefilter("ignore", FutureWarning)
        expected = CARDS[mode](tiny_models, folder_base(tiny_models), PROMPT, SEED, dtype=dtype)
    other = "lcm-lora" if mode == "ddim" else "ddim"
    run_mode(half_engine, other, steps=2)  # so the engine has to switch into this mode
    result = run_mode(half_engine, mode)
    assert result.image.shape == expected.shape
    assert int(result.image.max()) > 0, "a black image: the decode overflowed"
    np.testing.assert_array_equal(result.image, expected)
    # The VAE is back in the run's dtype after diffusers' fp32 decode (fp16's force_upcast).
    assert half_engine.base.vae.dtype == dtype


def test_half_precision_differs_from_float32(half_engine: Engine, engine_all: Engine) -> None:
    """The half runs really ran in half precision: same seed, visibly close, not identical."""
    half = run_mode(half_engine, "lightning").image.astype(int)
    full = run_mode(engine_all, "lightning").image.astype(int)
    assert not np.array_equal(half, full)
    assert np.abs(half - full).mean() < 8.0


def test_fp16_run_raises_no_warning(tiny_models: TinyModelSet) -> None:
    engine = Engine(model_paths_of(tiny_models), DevicePlan(torch.device("cpu"), torch.float16, threads=1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # What Python shows a user: DeprecationWarning only for code run as __main__ (torch's
        # Tensor.__array__ notice from the Euler scheduler is one, in every dtype).
        warnings.simplefilter("ignore", DeprecationWarning)
        for mode in DEFAULT_COMPARISON:
            run_mode(engine, mode, steps=2)
    assert [str(w.message) for w in caught] == []


def test_fp16_cli_run_prints_no_warning(tiny_models: TinyModelSet, tmp_path: Path) -> None:
    out = tmp_path / "out"
    t = tiny_models
    command = [
        sys.executable,  # with Python's default warning filters, as a user's terminal has them
        "-m",
        "engine.cli",
        "compare",
        "--prompt",
        "a red circle",
        "--base",
        str(t.base),
        "--lcm-unet",
        str(t.lcm_unet),
        "--lcm-lora",
        str(t.lcm_lora),
        "--lightning-unet",
        str(t.lightning_unet),
        "--lightning-lora",
        str(t.lightning_lora),
        "--dtype",
        "float16",
        "--threads",
        "1",
        "--steps",
        "ddim=3",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "deprecate" not in done.stderr, done.stderr
    assert (out / "grid.png").is_file()
