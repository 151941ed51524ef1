"""The base as an original single-file checkpoint and Lightning as an all-in-one checkpoint, through the
engine and the CLI: the same weights and bit-identical images as the diffusers folder and bare files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import engine.runtime.engine
from devtools.lora_fixtures import write_lightning_checkpoint
from devtools.original_layout import SINGLE_FILE_NAME, write_single_file_checkpoint, write_single_file_config
from devtools.tiny_model import TinyModelSet
from engine.cli import EXIT_BAD_INPUT, EXIT_OK, main
from engine.contract.modes import DEFAULT_COMPARISON, ModelRole
from engine.contract.request import GenerationRequest, ModeSettings, RGBImage
from engine.files.model_files import FileKind, inspect_path
from engine.runtime.engine import Engine
from tests.conftest import model_paths_of

PROMPT = "a blue square on the white background"


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


def request(modes: tuple[str, ...] = DEFAULT_COMPARISON) -> GenerationRequest:
    return GenerationRequest(
        prompt=PROMPT, seeds=(7,), modes=tuple(ModeSettings(mode=m, steps=2) for m in modes)
    )


def images(engine: Engine, modes: tuple[str, ...] = DEFAULT_COMPARISON) -> dict[str, RGBImage]:
    return {r.mode: r.image for r in engine.run(request(modes)).results}


def png(path: Path) -> RGBImage:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_single_file_engine_holds_the_folders_weights(single_engine: Engine, engine_all: Engine) -> None:
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
    # A1111's "AutoV2" short hash, which png_parameters_for writes as `Model hash` (tests/test_infotext.py).
    assert single_engine.run_context().model_hash == whole[:10]


def test_single_file_gives_the_folders_images_in_every_mode(
    single_engine: Engine, engine_all: Engine
) -> None:
    ours, theirs = images(single_engine), images(engine_all)
    for mode in DEFAULT_COMPARISON:
        np.testing.assert_array_equal(ours[mode], theirs[mode], err_msg=mode)


def test_cli_base_single_file_with_the_default_config(
    single_file: Path,
    config_folder: Path,
    engine_all: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The CLI always loads a single file against the shipped SDXL config; stand the tiny one in for it.
    monkeypatch.setattr(engine.runtime.engine, "sdxl_config_dir", lambda: config_folder)
    out = tmp_path / "ddim.png"
    argv = ["generate", "--mode", "ddim", "--steps", "ddim=2", "--seed", "7", "--prompt", PROMPT]
    assert main([*argv, "--base", str(single_file), "--out", str(out)]) == EXIT_OK, capsys.readouterr().err
    np.testing.assert_array_equal(png(out), images(engine_all, ("ddim",))["ddim"])


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
    info = inspect_path(lightning_checkpoint)
    assert (info.kind, info.lightning_steps) == (FileKind.LIGHTNING_CHECKPOINT, 4)
    out = tmp_path / "lightning.png"
    argv = ["generate", "--mode", "lightning", "--steps", "lightning=2", "--seed", "7", "--prompt", PROMPT]
    paths = ["--base", str(tiny_models.base), "--lightning-unet", str(lightning_checkpoint)]
    assert main([*argv, *paths, "--out", str(out)]) == EXIT_OK, capsys.readouterr().err
    np.testing.assert_array_equal(png(out), images(engine_all, ("lightning",))["lightning"])
