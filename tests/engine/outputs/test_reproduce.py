"""The reproduce.py of a comparison folder rebuilds every image with plain diffusers, bit for bit on the CPU."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from devtools.lora_fixtures import write_style_files
from devtools.original_layout import SINGLE_FILE_NAME, write_single_file_checkpoint, write_single_file_config
from devtools.refused_files import write_lightning_checkpoint
from devtools.tiny_model import TinyModelSet
from engine.contract.modes import DEFAULT_COMPARISON
from engine.contract.placement import LoraRoute
from engine.contract.request import GenerationRequest, ModeSettings
from engine.files.model_paths import StyleLora
from engine.outputs.run_writer import write_comparison
from engine.runtime.engine import Engine
from tests.conftest import model_paths_of

# Runs the script with every Fewstep package made unimportable: it must need none of them.
BLOCKER = """
import runpy, sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("engine", "gui", "devtools", "tests"):
            raise ImportError(f"reproduce.py imported {name}")
        return None
sys.meta_path.insert(0, Blocker())
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


def replay(folder: Path, out: Path) -> None:
    """Runs folder's reproduce.py into out with Fewstep unimportable and no thread setting handed down
    (the script sets Fewstep's own count from its recipe); a failed run fails the test."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "FEWSTEP_THREADS")}
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER, str(folder / "reproduce.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=out.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def assert_replays_bit_for_bit(out: Path, files: list[str], tmp_path: Path) -> None:
    """out's reproduce.py, run apart (replay), remakes each of these image files byte for byte."""
    replayed = tmp_path / "replayed"
    replay(out, replayed)
    for name in files:
        ours = np.asarray(Image.open(out / name).convert("RGB"))
        theirs = np.asarray(Image.open(replayed / name).convert("RGB"))
        np.testing.assert_array_equal(theirs, ours, err_msg=name)


def recipe_of(folder: Path) -> dict[str, Any]:
    """The RECIPE a comparison folder's reproduce.py carries, read back from its text."""
    text = (folder / "reproduce.py").read_text(encoding="utf-8")
    literal = text.split("RECIPE: dict[str, Any] = json.loads(", 1)[1].split(")\n", 1)[0]
    recipe: dict[str, Any] = json.loads(ast.literal_eval(literal))
    return recipe


@pytest.fixture(scope="module")
def styled_folder(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A five-mode, two-seed comparison with a style LoRA that patches the UNet and both text encoders."""
    styles = write_style_files(tiny_models, tmp_path_factory.mktemp("styles"))
    style = styles["kohya-diffusers"]
    assert style.matrices.patches_text_encoders
    paths = replace(model_paths_of(tiny_models), styles=(StyleLora(style.path, 0.8),))
    engine = Engine(paths)
    request = GenerationRequest(
        prompt="a large red circle on a blue background",
        negative_prompt="green",
        seeds=(3, 4),
        modes=tuple(ModeSettings(mode=m, steps=4 if m == "ddim" else None) for m in DEFAULT_COMPARISON),
    )
    comparison = engine.run(request)
    out = tmp_path_factory.mktemp("comparison")
    write_comparison(out, comparison, engine.run_context())
    return out


def test_script_imports_nothing_from_fewstep(styled_folder: Path) -> None:
    tree = ast.parse((styled_folder / "reproduce.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"engine", "gui", "devtools", "tests", "fewstep"}
    assert {"diffusers", "torch"} <= imported


def test_reproduce_rebuilds_every_image_bit_for_bit(styled_folder: Path, tmp_path: Path) -> None:
    report = json.loads((styled_folder / "report.json").read_text(encoding="utf-8"))
    assert report["reproduce"] == {"script": "reproduce.py", "cannot_replay": []}
    out = tmp_path / "replayed"
    assert recipe_of(styled_folder)["threads"] == 1  # the count replay() leaves the script to set
    replay(styled_folder, out)
    records = report["results"]
    assert {r["mode"] for r in records} == set(DEFAULT_COMPARISON)
    assert len(records) == 10
    for record in records:
        ours = np.asarray(Image.open(styled_folder / record["file"]).convert("RGB"))
        theirs = np.asarray(Image.open(out / record["file"]).convert("RGB"))
        np.testing.assert_array_equal(theirs, ours, err_msg=record["file"])


def test_the_style_changed_the_images_it_should(styled_folder: Path) -> None:
    """The replay above proves something about styles only if the style was on: the base-UNet modes
    carry it in their recipe, the full distilled UNets do not."""
    for image in recipe_of(styled_folder)["images"]:
        has_style = bool(image["styles"])
        assert has_style == (image["mode"] in ("ddim", "lcm-lora", "lightning-lora")), image["mode"]


def test_modes_that_did_not_run_are_listed_with_the_reason(tiny_models: TinyModelSet, tmp_path: Path) -> None:
    engine = Engine(model_paths_of(tiny_models, without=("lightning_unet",)))
    request = GenerationRequest(
        prompt="a square", modes=(ModeSettings(mode="lcm", steps=2), ModeSettings(mode="lightning"))
    )
    comparison = engine.run(request)
    report = write_comparison(tmp_path, comparison, engine.run_context())
    assert report["reproduce"]["cannot_replay"] == [
        {"mode": "lightning", "reason": "it did not run in Fewstep (needs --lightning-unet)"}
    ]
    done = subprocess.run(
        [sys.executable, str(tmp_path / "reproduce.py"), "--out", str(tmp_path / "again")],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert done.returncode == 3
    assert "cannot replay lightning: it did not run in Fewstep" in done.stderr
    again = np.asarray(Image.open(tmp_path / "again" / "lcm.png").convert("RGB"))
    np.testing.assert_array_equal(again, comparison.results[0].image)


def test_a_single_file_base_and_a_lightning_checkpoint_replay_bit_for_bit(
    tiny_models: TinyModelSet, tmp_path: Path
) -> None:
    """The artist's usual files: an original single-file base (read with its config folder) and an
    all-in-one Lightning checkpoint, whose UNet alone is used."""
    base = write_single_file_checkpoint(tiny_models, tmp_path / SINGLE_FILE_NAME, dtype=torch.float32)
    config = write_single_file_config(tiny_models, tmp_path / "tiny-sdxl-config")
    lightning = write_lightning_checkpoint(tiny_models, tmp_path / "sdxl_lightning_4step.safetensors")
    paths = replace(model_paths_of(tiny_models), base=base, base_config=config, lightning_unet=lightning)
    engine = Engine(paths)
    request = GenerationRequest(
        prompt="a blue square on the white background",
        seeds=(7,),
        modes=tuple(ModeSettings(mode=m, steps=2) for m in ("ddim", "lightning", "lcm-lora")),
    )
    comparison = engine.run(request)
    out = tmp_path / "comparison"
    out.mkdir()
    report = write_comparison(out, comparison, engine.run_context())
    assert report["reproduce"]["cannot_replay"] == []
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER, str(out / "reproduce.py"), "--out", str(tmp_path / "again")],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for result, record in zip(comparison.results, report["results"], strict=True):
        again = np.asarray(Image.open(tmp_path / "again" / record["file"]).convert("RGB"))
        np.testing.assert_array_equal(again, result.image, err_msg=record["file"])


def test_each_lora_mode_replays_by_the_route_it_ran(
    styled_folder: Path, tiny_models: TinyModelSet, tmp_path: Path
) -> None:
    """Fused LoRA modes replay through load_lora_weights + fuse_lora (above); an engine that runs them
    unfused (--lora-route unfused) writes a record that replays them unfused, with the style too."""
    fused = {i["mode"]: i["lora_route"] for i in recipe_of(styled_folder)["images"]}
    assert fused == {
        "ddim": None,
        "lcm": None,
        "lightning": None,
        "lcm-lora": "fused",
        "lightning-lora": "fused",
    }
    style = next(iter(write_style_files(tiny_models, tmp_path / "styles").values()))
    paths = replace(model_paths_of(tiny_models), styles=(StyleLora(style.path, 0.8),))
    engine = Engine(paths, lora_route=LoraRoute.UNFUSED)
    request = GenerationRequest(
        prompt="a large red circle on a blue background",
        seeds=(3,),
        modes=(ModeSettings(mode="lcm-lora"), ModeSettings(mode="lightning-lora")),
    )
    folder = tmp_path / "unfused"
    write_comparison(folder, engine.run(request), engine.run_context())
    assert {i["lora_route"] for i in recipe_of(folder)["images"]} == {"unfused"}
    out = tmp_path / "replayed"
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER, str(folder / "reproduce.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for record in json.loads((folder / "report.json").read_text(encoding="utf-8"))["results"]:
        assert record["lora_route"] == "unfused"
        ours = np.asarray(Image.open(folder / record["file"]).convert("RGB"))
        theirs = np.asarray(Image.open(out / record["file"]).convert("RGB"))
        np.testing.assert_array_equal(theirs, ours, err_msg=record["file"])
