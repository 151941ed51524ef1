"""Models in the Hugging Face hub cache, given by repository id, found offline with huggingface_hub's
own cache functions: the comparison runs on them, `fewstep models` lists them, an id that is not
cached is refused in one line, and nothing touches the network."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from devtools.hub_cache_fixture import (
    BASE_REPO,
    LCM_LORA_REPO,
    LCM_REPO,
    LIGHTNING_REPO,
    HubCache,
    write_hub_cache,
)
from devtools.refused_files import write_lightning_checkpoint
from devtools.tiny_model import LCM_LORA_FILE, TinyModelSet
from engine.cli import EXIT_BAD_INPUT, EXIT_OK, main
from engine.contract.modes import DEFAULT_COMPARISON
from engine.contract.request import GenerationRequest, ModeSettings
from engine.files.hub_cache import cached_model_repos, resolve_hub_reference
from engine.files.model_files import FileKind, inspect_path
from engine.runtime.engine import Engine

LIGHTNING_UNET = f"{LIGHTNING_REPO}/sdxl_lightning_4step_unet.safetensors"
LIGHTNING_LORA = f"{LIGHTNING_REPO}/sdxl_lightning_4step_lora.safetensors"
LIGHTNING_CHECKPOINT = f"{LIGHTNING_REPO}/sdxl_lightning_4step.safetensors"
HUB_ARGS = [
    "--base", BASE_REPO,
    "--lcm-unet", LCM_REPO,
    "--lcm-lora", LCM_LORA_REPO,
    "--lightning-unet", LIGHTNING_UNET,
    "--lightning-lora", LIGHTNING_LORA,
]  # fmt: skip


@pytest.fixture(scope="module")
def hub(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> HubCache:
    checkpoint = write_lightning_checkpoint(
        tiny_models, tmp_path_factory.mktemp("aio") / "sdxl_lightning_4step.safetensors"
    )
    return write_hub_cache(tiny_models, tmp_path_factory.mktemp("hf") / "hub", lightning_extra=[checkpoint])


@pytest.fixture(autouse=True)
def offline(hub: HubCache, monkeypatch: pytest.MonkeyPatch) -> None:
    """The synthetic cache is the only one, and any attempt to reach the network fails the test."""
    monkeypatch.setenv("HF_HUB_CACHE", str(hub.root))

    def no_network(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)


def test_the_cache_has_the_real_layout(hub: HubCache) -> None:
    repo = hub.root / "models--stabilityai--stable-diffusion-xl-base-1.0"
    commit = (repo / "refs" / "main").read_text()
    assert len(commit) == 40 and hub.snapshots[BASE_REPO] == repo / "snapshots" / commit
    weights = repo / "snapshots" / commit / "unet" / "diffusion_pytorch_model.safetensors"
    assert weights.is_symlink() and not Path(weights.readlink()).is_absolute()
    assert weights.resolve().parent == repo / "blobs"
    assert {r.repo_id for r in cached_model_repos()} == {BASE_REPO, LCM_REPO, LCM_LORA_REPO, LIGHTNING_REPO}


def test_hub_ids_resolve_offline_to_the_snapshots(hub: HubCache) -> None:
    assert resolve_hub_reference(BASE_REPO) == hub.snapshots[BASE_REPO]
    assert (
        resolve_hub_reference(LIGHTNING_UNET)
        == hub.snapshots[LIGHTNING_REPO] / "sdxl_lightning_4step_unet.safetensors"
    )
    assert inspect_path(Path(BASE_REPO)).kind is FileKind.SDXL_FOLDER
    assert inspect_path(Path(LCM_REPO)).kind is FileKind.LCM_UNET
    lightning = inspect_path(Path(LIGHTNING_UNET))
    assert (lightning.kind, lightning.lightning_steps) == (FileKind.LIGHTNING_UNET, 4)
    checkpoint = inspect_path(Path(LIGHTNING_CHECKPOINT))
    assert (checkpoint.kind, checkpoint.lightning_steps) == (FileKind.LIGHTNING_CHECKPOINT, 4)
    assert resolve_hub_reference("stabilityai/sdxl-turbo") is None


def test_the_cached_lcm_lora_is_an_lcm_lora(capsys: pytest.CaptureFixture[str]) -> None:
    assert inspect_path(Path(LCM_LORA_REPO)).kind is FileKind.LCM_LORA
    assert inspect_path(Path(f"{LCM_LORA_REPO}/{LCM_LORA_FILE}")).kind is FileKind.LCM_LORA
    assert cached_models(capsys)[LCM_LORA_REPO]["what"] == "LCM-LoRA"


def test_compare_runs_on_hub_ids_and_equals_the_local_files(
    engine_all: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    code = main(["compare", "--prompt", "a red circle", "--steps", "ddim=2", "--out", str(out), *HUB_ARGS])
    assert code == EXIT_OK, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert [r["mode"] for r in report["results"]] == list(DEFAULT_COMPARISON)
    request = GenerationRequest(
        prompt="a red circle",
        seeds=(0,),
        modes=tuple(ModeSettings(mode=m, steps=2 if m == "ddim" else None) for m in DEFAULT_COMPARISON),
    )
    local = {r.mode: r.image for r in engine_all.run(request).results}
    for record in report["results"]:
        with Image.open(out / record["file"]) as image:
            np.testing.assert_array_equal(
                np.asarray(image.convert("RGB")), local[record["mode"]], record["mode"]
            )


def cached_models(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    """`fewstep models --json` with no folder: each entry by the name it is listed (and given) by."""
    assert main(["models", "--json"]) == EXIT_OK
    entries = json.loads(capsys.readouterr().out)
    assert {e["source"] for e in entries} == {"huggingface-cache"}
    return {e["name"]: e for e in entries}


def test_models_lists_the_cached_repositories(
    hub: HubCache, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = cached_models(capsys)
    assert listed[BASE_REPO]["what"] == "SDXL base (diffusers folder)"
    assert listed[BASE_REPO]["path"] == str(hub.snapshots[BASE_REPO])
    assert "LCM UNet" in listed[LCM_REPO]["what"]
    assert "LoRA" in listed[LCM_LORA_REPO]["what"]
    # A file of a repository of several is listed by the reference compare takes (--lightning-unet ...).
    assert "4-step SDXL-Lightning UNet" in listed[LIGHTNING_UNET]["what"]
    assert "4-step SDXL-Lightning LoRA" in listed[LIGHTNING_LORA]["what"]
    assert "all-in-one" in listed[LIGHTNING_CHECKPOINT]["what"]
    assert all(entry["usable"] for entry in listed.values())
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["models"]) == EXIT_OK
    table = capsys.readouterr().out
    for name in listed:
        assert f"{name} (HF cache)" in table, table


def test_models_with_an_empty_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # read at call time, not at import
    assert cached_model_repos() == []
    assert main(["models"]) == EXIT_OK
    assert "no model files found in the Hugging Face cache" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["--base", "stabilityai/sdxl-turbo"],
        ["--base", BASE_REPO, "--lightning-unet", f"{LIGHTNING_REPO}/sdxl_lightning_2step_unet.safetensors"],
        ["--base", BASE_REPO, "--lora", "someone/watercolor-sdxl-lora:0.7"],
    ],
    ids=["repo", "file", "lora"],
)
def test_an_id_that_is_not_cached_is_refused_in_one_line(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["compare", "--prompt", "x", "--out", str(out), *args]) == EXIT_BAD_INPUT
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    missing = args[-1].split(":")[0]
    assert missing in lines[0] and "Hugging Face cache" in lines[0] and "never downloads" in lines[0], lines[
        0
    ]
    assert not out.exists()
