"""A table of hostile CLI inputs, one per class of issue 14, each run as a real process: exit 2, one
line on stderr, nothing written, and an answer well inside the time limit (a hang fails the test)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from devtools.tiny_model import TinyModelSet
from engine.contract.validation import _no_gpu_driver
from tests.soak.conftest import report

HANG_LIMIT_S = 60  # refusals answer in about a second; only a hang reaches this
LONG_NAME = "n" * 256
COMPARE = ["compare", "--prompt", "x", "--modes", "ddim", "--out", "{out}"]

# (arguments appended to COMPARE, or a whole command line starting with "generate", "models" or "info"; what
# the one line must say). Placeholders name the hostile files the fixture builds.
CASES: dict[str, tuple[list[str | bytes], str]] = {
    "FIFO as --base": (["--base", "{fifo}"], "FIFO (named pipe)"),
    "FIFO as --lora": (["--lora", "{fifo}"], "FIFO (named pipe)"),
    "FIFO as --base-config": (["--base", "{base}", "--base-config", "{fifo}"], "FIFO (named pipe)"),
    "FIFO as model_index.json": (["--base", "{fifo_index}"], "--base"),
    "device as --lcm-lora": (["--base", "{base}", "--lcm-lora", "/dev/zero"], "character device"),
    "symlink loop as a model": (["--base", "{base}", "--lightning-unet", "{loop}"], "leads nowhere"),
    "FIFO as models folder": (["models", "{fifo}"], "FIFO (named pipe)"),
    "FIFO given to info": (["info", "{fifo}"], "FIFO (named pipe)"),
    "pickle file": (["--base", "{base}", "--lcm-lora", "{pickle}"], "never unpickles"),
    "pickled --lcm-unet folder": (["--base", "{base}", "--lcm-unet", "{pickled_lcm}"], "never unpickles"),
    "pickled --vae folder": (["--vae", "{pickled_vae}"], "never unpickles"),
    "steps --4": (["--steps", "ddim=--4"], "steps must be a whole number"),
    "steps superscript": (["--steps", "ddim=²"], "steps must be a whole number"),
    "steps arabic digit": (["--steps", "ddim=٣"], "steps must be a whole number"),
    "steps nan": (["--steps", "ddim=nan"], "steps must be a whole number"),
    "steps 0": (["--steps", "ddim=0"], "steps must be a whole number"),
    "steps 201": (["--steps", "ddim=201"], "steps must be a whole number"),
    "guidance nan": (["--guidance", "ddim=nan"], "guidance must be"),
    "guidance inf": (["--guidance", "ddim=inf"], "guidance must be"),
    "guidance 1e30": (["--guidance", "ddim=1e30"], "guidance must be"),
    "guidance negative": (["--guidance", "ddim=-1"], "guidance must be"),
    "guidance over 30": (["--guidance", "ddim=31"], "guidance must be"),
    "style weight nan": (["--lora", "{lora}:nan"], "style weight must be"),
    "style weight inf": (["--lora", "{lora}:inf"], "style weight must be"),
    "style weight 1e30": (["--lora", "{lora}:1e30"], "style weight must be"),
    "style weight 11": (["--lora", "{lora}:11"], "style weight must be"),
    "seed superscript": (["--seed", "²"], "seed"),
    "seed negative": (["--seed", "-1"], "seed"),
    "size huge": (["--size", "99992x8"], "at most 4096"),
    "size absurd": (["--size", "999999999x8"], "WIDTHxHEIGHT"),
    "size superscript": (["--size", "²x8"], "WIDTHxHEIGHT"),
    "threads 0": (["--threads", "0"], "at least 1"),
    "unknown mode": (["--modes", "ddim,nope"], "unknown mode"),
    "out empty": (["--out", ""], "--out is empty"),
    "out under a file": (["--out", "{a_file}/x"], "which is a file"),
    "out under /proc": (["--out", "/proc/self/x"], "under /proc"),
    "out under /sys": (["--out", "/sys/x"], "under /sys"),
    "out name over 255 bytes": (["--out", "{sandbox}/" + LONG_NAME], "255 bytes"),
    "out is a file": (["--out", "{a_file}"], "is a file"),
    "out holds other files": (["--out", "{foreign}"], "not a Fewstep comparison"),
    "generate onto an existing file": (
        ["generate", "--mode", "ddim", "--prompt", "x", "--out", "{existing_png}"],
        "already exists",
    ),
    "generate to a .jpg": (["generate", "--mode", "ddim", "--prompt", "x", "--out", "x.jpg"], ".png"),
    "prompt of undecodable bytes": (["--prompt", b"a \xff cat"], "not valid UTF-8"),
    "prompt with a control character": (["--prompt", "a\x01cat"], "control character"),
    "prompt too long": (["--prompt", "x" * 17_000], "shorten it"),
    "negative with a control character": (["--negative", "a\x1bcat"], "the negative prompt"),
    "device misspelt": (["--device", "gpu9"], "unknown device"),
    "device index misspelt": (["--device", "cuda:x"], "unknown device"),
    "dtype misspelt": (["--dtype", "float8"], "unknown dtype"),
}
if _no_gpu_driver():
    CASES["cuda without a GPU"] = (["--device", "cuda"], "no GPU driver")


def pickled_copy(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest)
    for weights in dest.glob("*.safetensors"):
        torch.save(load_file(str(weights)), weights.with_suffix(".bin"))
        weights.unlink()
    return dest


@pytest.fixture(scope="module")
def hostile(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    files = {"base": tiny_models.base, "lora": tiny_models.lcm_lora, "sandbox": root / "sandbox"}
    files["sandbox"].mkdir()
    files["fifo"] = root / "m.safetensors"
    os.mkfifo(files["fifo"])
    files["fifo_index"] = root / "index-fifo"
    files["fifo_index"].mkdir()
    os.mkfifo(files["fifo_index"] / "model_index.json")
    files["loop"] = root / "sdxl_lightning_4step_unet.safetensors"
    files["loop"].symlink_to(files["loop"])
    files["pickle"] = root / "lcm.ckpt"
    files["pickle"].write_bytes(b"\x80\x04not opened")
    files["pickled_lcm"] = pickled_copy(tiny_models.lcm_unet, root / "pickled-lcm")
    files["pickled_vae"] = pickled_copy(tiny_models.base / "vae", root / "pickled-vae")
    sandbox = files["sandbox"]
    files["a_file"] = sandbox / "a-file"
    files["a_file"].write_text("mine")
    files["foreign"] = sandbox / "holiday-photos"
    files["foreign"].mkdir()
    (files["foreign"] / "beach.jpg").write_bytes(b"jpeg")
    files["existing_png"] = sandbox / "old.png"
    files["existing_png"].write_bytes(b"png")
    files["out"] = sandbox / "out"
    return files


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*")}


def command(case: str, files: dict[str, Path]) -> list[str | bytes]:
    extra, _ = CASES[case]
    first = extra[0]
    argv = list(extra) if first in ("generate", "models", "info") else [*COMPARE, *extra]
    names = {k: str(v) for k, v in files.items()}
    return [a.format(**names) if isinstance(a, str) else a for a in argv]


TIMES: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    yield
    if TIMES:
        slowest = max(TIMES, key=lambda k: TIMES[k])
        report(
            f"hostile CLI inputs: {len(TIMES)} cases, each exit 2 with one line and nothing written;"
            f" slowest answer {TIMES[slowest]:.2f} s ({slowest}), median"
            f" {sorted(TIMES.values())[len(TIMES) // 2]:.2f} s"
        )


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input_gets_exit_2_one_line_nothing_written_and_no_hang(
    case: str, hostile: dict[str, Path]
) -> None:
    sandbox = hostile["sandbox"]
    before = snapshot(sandbox)
    argv = [sys.executable.encode(), b"-m", b"engine.cli", *(os.fsencode(a) for a in command(case, hostile))]
    started = time.perf_counter()
    done = subprocess.run(
        argv,
        capture_output=True,
        cwd=sandbox,  # so that an empty --out, were it taken, would write here
        timeout=HANG_LIMIT_S,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONIOENCODING": "utf-8"},
    )
    TIMES[case] = time.perf_counter() - started
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, err
    assert err.count("\n") == 1 and err.startswith("fewstep: error: "), err
    assert CASES[case][1] in err and "Traceback" not in err
    assert snapshot(sandbox) == before, "something was written"


def test_models_listing_survives_a_fifo_and_a_symlink_loop(hostile: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    os.mkfifo(folder / "pipe.safetensors")
    (folder / "again").symlink_to(folder, target_is_directory=True)
    shutil.copy(hostile["lora"], folder / "lcm-lora.safetensors")
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "models", str(folder)],
        capture_output=True,
        text=True,
        timeout=HANG_LIMIT_S,
        env={**os.environ, "HF_HUB_CACHE": str(tmp_path / "no-cache")},
    )
    assert done.returncode == 0, done.stderr
    usable, _, refused = done.stdout.partition("\nrefused (")  # usable files first, refused ones after
    assert "LCM-LoRA" in usable and "pipe.safetensors" in refused and "a FIFO (named pipe)" in refused
