"""The base as an original single-file checkpoint and Lightning as an all-in-one checkpoint, through the
engine and the CLI.

What is exact and against what: the weights equal the diffusers folder's and the bare files' bit for
bit; each image equals plain diffusers' from the same file through the same route (from_single_file
with the same config folder), on any CPU and instruction set. Images of one route against the other
(single file against folder) may differ by one grey level in a few pixels, from memory alignment:
tests/rounding.py says why and bounds it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from PIL import Image

import engine.runtime.engine
from devtools.original_layout import SINGLE_FILE_NAME, write_single_file_checkpoint, write_single_file_config
from devtools.refused_files import write_lightning_checkpoint
from devtools.tiny_model import TinyModelSet
from engine.cli import EXIT_BAD_INPUT, EXIT_OK, main
from engine.contract.modes import DEFAULT_COMPARISON, ModelRole
from engine.contract.request import GenerationRequest, ModeSettings, RGBImage
from engine.files.model_files import FileKind, inspect_path
from engine.runtime.engine import Engine
from tests.conftest import REPO_ROOT, model_paths_of
from tests.plain_diffusers import CARDS, BaseFiles, card_lightning, folder_base
from tests.rounding import MAX_FRACTION, MAX_LEVELS, assert_equal_but_for_alignment

PROMPT = "a blue square on the white background"
SEED = 7


@pytest.fixture(scope="module")
def single_file(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # fp32, as the CPU engine loads the folder's fp32 weights: the same numbers on both sides.
    return write_single_file_checkpoint(
        tiny_models, tmp_path_factory.mktemp("checkpoints") / SINGLE_FILE_NAME, dtype=torch.float32
    )


@pytest.fixture(scope="module")
def config_folder(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_single_file_config(tiny_models, tmp_path_factory.mktemp("config") / "tiny-sdxl-config")


@pytest.fixture(scope="module")
def lightning_checkpoint(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lightning_checkpoint(
        tiny_models, tmp_path_factory.mktemp("lightning") / "sdxl_lightning_4step.safetensors"
    )


@pytest.fixture(scope="module")
def single_engine(tiny_models: TinyModelSet, single_file: Path, config_folder: Path) -> Engine:
    paths = replace(model_paths_of(tiny_models), base=single_file, base_config=config_folder)
    return Engine(paths)


@pytest.fixture(scope="module")
def single_images(single_engine: Engine) -> dict[str, RGBImage]:
    """Every mode at its model card's settings, from the single file."""
    return images(single_engine, steps=None)


def request(modes: tuple[str, ...], steps: int | None) -> GenerationRequest:
    return GenerationRequest(
        prompt=PROMPT, seeds=(SEED,), modes=tuple(ModeSettings(mode=m, steps=steps) for m in modes)
    )


def images(
    engine: Engine, modes: tuple[str, ...] = DEFAULT_COMPARISON, *, steps: int | None = 2
) -> dict[str, RGBImage]:
    return {r.mode: r.image for r in engine.run(request(modes, steps)).results}


def png(path: Path) -> RGBImage:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_single_file_engine_holds_the_folders_weights(single_engine: Engine, engine_all: Engine) -> None:
    """Bit for bit: the values loaded do not depend on the CPU, only where they sit in memory does."""
    assert single_engine.files[ModelRole.BASE].kind is FileKind.SDXL_SINGLE_FILE
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        ours = getattr(single_engine.base, name).state_dict()
        theirs = getattr(engine_all.base, name).state_dict()
        assert ours.keys() == theirs.keys(), name
        for key, value in theirs.items():
            assert ours[key].dtype == value.dtype and torch.equal(ours[key], value), f"{name}.{key}"
    assert dict(single_engine.original_scheduler_config) == dict(engine_all.original_scheduler_config)


def test_a_single_file_base_gets_a1111s_model_hash(single_engine: Engine, single_file: Path) -> None:
    import hashlib

    whole = hashlib.sha256(single_file.read_bytes()).hexdigest()
    # A1111's "AutoV2" short hash, which png_parameters_for writes as `Model hash` (tests/engine/outputs/test_infotext.py).
    assert single_engine.run_context().model_hash == whole[:10]


@pytest.mark.parametrize("mode", DEFAULT_COMPARISON)
def test_single_file_image_equals_plain_diffusers_from_the_same_file(
    single_images: dict[str, RGBImage],
    tiny_models: TinyModelSet,
    single_file: Path,
    config_folder: Path,
    mode: str,
) -> None:
    """Like with like, so exact on any CPU: the model card's recipe with the base loaded by
    from_single_file from the same file and config folder, as the engine loads it."""
    expected = CARDS[mode](tiny_models, BaseFiles(single_file, config_folder), PROMPT, SEED)
    np.testing.assert_array_equal(single_images[mode], expected, err_msg=mode)


def test_single_file_gives_the_folders_images_but_for_alignment(
    single_images: dict[str, RGBImage], engine_all: Engine
) -> None:
    """The two routes, within a stated bound rather than made equal.

    Their weights are bitwise equal, but the folder's tensors stay in the mmapped file at its byte
    offsets while the single file's converted ones are partly fresh 64-byte-aligned copies, and CPU
    kernels pick their summation order by alignment and instruction set: the images may differ by
    one grey level in a few pixels (on an AMD EPYC, 0 to 2 of 12288 values per image). Copying every
    loaded tensor into fresh aligned storage would make the routes equal, but then neither would
    match plain diffusers, whose from_pretrained leaves the folder's tensors in the file; the engine
    keeps diffusers' loading, so each route equals plain diffusers on that route exactly (the test
    above, and test_engine_modes for the folder), and the routes agree within the bound."""
    theirs = images(engine_all, steps=None)
    for mode in DEFAULT_COMPARISON:
        assert_equal_but_for_alignment(single_images[mode], theirs[mode], mode)


def test_cli_base_single_file_with_the_default_config(
    single_file: Path,
    config_folder: Path,
    single_engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The CLI always loads a single file against the shipped SDXL config; stand the tiny one in for it.
    monkeypatch.setattr(engine.runtime.engine, "sdxl_config_dir", lambda: config_folder)
    out = tmp_path / "ddim.png"
    argv = ["generate", "--mode", "ddim", "--steps", "ddim=2", "--seed", str(SEED), "--prompt", PROMPT]
    assert main([*argv, "--base", str(single_file), "--out", str(out)]) == EXIT_OK, capsys.readouterr().err
    # The same file and config as the single-file engine: the same route, so exact.
    np.testing.assert_array_equal(png(out), images(single_engine, ("ddim",))["ddim"])


def test_cli_single_file_that_does_not_fit_the_shipped_config_is_refused(
    single_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.png"
    argv = ["generate", "--mode", "ddim", "--prompt", "x", "--base", str(single_file), "--out", str(out)]
    assert main(argv) == EXIT_BAD_INPUT
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert str(single_file) in lines[0] and "cannot load it as SDXL base" in lines[0]
    assert not out.exists()


def test_cli_takes_a_config_folder_for_a_single_file(
    single_file: Path, config_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "x.png"
    argv = ["generate", "--mode", "ddim", "--steps", "ddim=2", "--prompt", "x", "--out", str(out)]
    assert main([*argv, "--base", str(single_file), "--base-config", str(config_folder)]) == EXIT_OK
    assert out.is_file()


def test_all_in_one_lightning_checkpoint_equals_the_bare_unet(
    tiny_models: TinyModelSet,
    lightning_checkpoint: Path,
    engine_all: Engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The checkpoint's UNet holds the bare file's weights bit for bit; its image equals plain
    diffusers' from the same checkpoint (UNet2DConditionModel.from_single_file) exactly, and the
    bare UNet's within the bound of tests/rounding.py, being another load route."""
    info = inspect_path(lightning_checkpoint)
    assert (info.kind, info.lightning_steps) == (FileKind.LIGHTNING_CHECKPOINT, 4)
    out = tmp_path / "lightning.png"
    argv = ["generate", "--mode", "lightning", "--seed", str(SEED), "--prompt", PROMPT]
    paths = ["--base", str(tiny_models.base), "--lightning-unet", str(lightning_checkpoint)]
    assert main([*argv, *paths, "--out", str(out)]) == EXIT_OK, capsys.readouterr().err
    unet = UNet2DConditionModel.from_single_file(
        str(lightning_checkpoint),
        config=str(tiny_models.base),
        subfolder="unet",
        local_files_only=True,
        dtype=torch.float32,
    )
    bare = engine_all.pipes[ModelRole.LIGHTNING_UNET].unet.state_dict()
    ours = unet.state_dict()
    assert ours.keys() == bare.keys()
    assert all(torch.equal(ours[k], v) for k, v in bare.items())
    plain = card_lightning(tiny_models, folder_base(tiny_models), PROMPT, SEED, unet=unet)
    np.testing.assert_array_equal(png(out), plain)
    assert_equal_but_for_alignment(png(out), images(engine_all, ("lightning",), steps=None)["lightning"])


def test_same_route_parity_does_not_depend_on_the_instruction_set(
    tiny_models: TinyModelSet, single_file: Path, config_folder: Path
) -> None:
    """Fewstep equals plain diffusers, route by route and mode by mode, also with torch's plain kernels.

    A child process runs tests/parity_run.py under ATEN_CPU_CAPABILITY=default (ATen without
    vector kernels), with oneDNN held to SSE4.1 and MKL to SSE4.2: other kernels, other summation
    orders, and still exact, because each side runs the same computation on tensors at the same
    alignments. What does depend on the instruction set is which values the two routes round apart
    (on an AMD EPYC, other modes and pixels under AVX-512, AVX2 and the plain kernels, 0 to 2 values
    an image): that is only bounded, by tests/rounding.py."""
    env = {
        **os.environ,
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.parity_run",
            str(tiny_models.root),
            str(single_file),
            str(config_folder),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["capability"] == "DEFAULT"
    for route in ("folder", "single-file"):
        assert report["same_route"][route] == {mode: [0, 0] for mode in DEFAULT_COMPARISON}, route
    assert report["across_routes"].keys() == set(DEFAULT_COMPARISON)
    for mode, (levels, count) in report["across_routes"].items():
        assert levels <= MAX_LEVELS and count <= MAX_FRACTION * report["values"], (mode, levels, count)
