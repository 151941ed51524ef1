"""`fewstep plan` on the tiny fixtures' files, part sizes from headers, and --vram in compare."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from devtools.original_layout import SINGLE_FILE_NAME, write_single_file_checkpoint
from devtools.tiny_model import TinyModelSet
from engine.cli import EXIT_BAD_INPUT, EXIT_OK, main
from engine.cli.plan import folded
from engine.contract.placement import Part
from engine.contract.placement_text import size_text
from engine.files.model_paths import ModelPaths
from engine.files.part_sizes import model_sizes
from engine.runtime.engine import Engine
from tests.conftest import REPO_ROOT, model_paths_of
from tests.engine.cli.test_cli import model_args


def test_plan_prints_each_part_from_the_headers(
    tiny_models: TinyModelSet, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", *model_args(tiny_models), "--vram", "1", "--size", "64x64"]) == EXIT_OK
    out = capsys.readouterr().out
    sizes = model_sizes(model_paths_of(tiny_models)).bytes_in("fp16")
    for part in (Part.BASE_UNET, Part.LCM_UNET, Part.LIGHTNING_LORA, Part.VAE):
        assert f"{part}" in out and size_text(sizes[part]) in out
    assert "Plan for 1.00 GiB of free device memory, fp16, 64x64" in out
    assert "fits at 64x64 with nothing moved" in out
    assert "five-mode comparison: " in out  # at 1024x1024, whatever the size asked
    for mode in ("ddim", "lcm", "lcm-lora", "lightning", "lightning-lora"):
        assert f"\n  {mode} " in out


def test_plan_in_fp32_counts_twice_the_bytes(
    tiny_models: TinyModelSet, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", *model_args(tiny_models), "--vram", "1", "--dtype", "fp32"]) == EXIT_OK
    sizes = model_sizes(model_paths_of(tiny_models))
    assert size_text(sizes.parts[Part.BASE_UNET].bytes_in("fp32")) in capsys.readouterr().out
    assert sizes.parts[Part.BASE_UNET].bytes_in("fp32") == 2 * sizes.parts[Part.BASE_UNET].bytes_in("fp16")


def test_plan_loads_no_weights_and_imports_no_torch(tiny_models: TinyModelSet) -> None:
    code = (
        "import sys; from engine.cli import main;"
        f" rc = main(['plan', *{model_args(tiny_models)!r}, '--vram', '6']);"
        " print(rc, 'torch' in sys.modules, 'diffusers' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout.strip().splitlines()[-1] == "0 False False", done.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--vram", "0"], "above 0"),
        (["--vram", "eight"], "not a number of GiB"),
        (["--vram", "8", "--dtype", "fp8"], "invalid choice"),
        (["--vram", "8", "--modes", "ddim,nope"], "unknown mode nope"),
        (["--vram", "8", "--size", "1000x7"], "multiples of 8"),
        (["--vram", "8", "--base", "/no/such/model"], "does not exist"),
    ],
)
def test_plan_refuses_bad_input_in_one_line(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", *args]) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0]


def test_header_sizes_equal_the_loaded_modules(tiny_models: TinyModelSet, engine_all: Engine) -> None:
    from_headers = model_sizes(model_paths_of(tiny_models)).bytes_in("fp32")
    loaded = {part: handle.size for part, handle in engine_all.placer.parts.items()}
    assert set(from_headers) == set(loaded)
    for part in loaded:
        if part in (Part.TEXT_ENCODER, Part.TEXT_ENCODER_2):
            # CLIP's position ids are a buffer the module builds, not a tensor of the file (77 x int64).
            assert 0 <= loaded[part] - from_headers[part] <= 77 * 8, part
        else:
            assert loaded[part] == from_headers[part], part


def test_single_file_sizes_equal_the_folders(tiny_models: TinyModelSet, tmp_path: Path) -> None:
    single = write_single_file_checkpoint(tiny_models, tmp_path / SINGLE_FILE_NAME, dtype=torch.float16)
    folder = model_sizes(
        model_paths_of(tiny_models, without=("lcm_unet", "lcm_lora", "lightning_unet", "lightning_lora"))
    )
    one_file = model_sizes(ModelPaths(base=Path(single)))
    for part in (Part.BASE_UNET, Part.VAE, Part.TEXT_ENCODER_2):
        assert one_file.parts[part].floats == folder.parts[part].floats, part
    # The original layout keeps CLIP-L's position ids (int64): the same floats, plus those bytes.
    assert one_file.parts[Part.TEXT_ENCODER].floats == folder.parts[Part.TEXT_ENCODER].floats
    assert one_file.vae_upcast  # the shipped SDXL config's VAE says force_upcast


def test_compare_with_vram_records_the_placement(
    tiny_models: TinyModelSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    code = main(
        ["compare", "--prompt", "a red circle", "--modes", "ddim,lcm,lightning-lora", "--vram", "0.6",
         "--device", "cpu", "--out", str(out), *model_args(tiny_models)]
    )  # fmt: skip
    assert code == EXIT_OK, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert "memory" in report and "results" in report  # the existing keys stay
    placement = report["placement"]
    assert placement["planned"] is True and placement["free_bytes"] == int(0.6 * 1024**3)
    assert placement["parts"]["lcm unet"]["rests_on"] == "cpu"
    moves = placement["moves"]
    assert moves and {m["mode"] for m in moves} <= {"ddim", "lcm", "lightning-lora"}
    assert any(m["part"] == "lcm unet" and m["direction"] == "in" and m["step"] == "denoise" for m in moves)
    assert all(set(m) == {"mode", "step", "part", "direction", "to", "bytes", "seconds"} for m in moves)
    assert placement["moved_bytes"] == sum(m["bytes"] for m in moves)


def test_plan_on_the_cpu_says_the_full_unets_wait_on_disk(
    tiny_models: TinyModelSet, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1 GiB of RAM is under the 2 GiB reserve: nothing fits, and the full UNets wait on disk.
    assert main(["plan", *model_args(tiny_models), "--ram", "1", "--size", "64x64"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "of available RAM (the CPU: RAM is the device)" in out
    assert "the full distilled UNets wait on disk; read from its file when its mode runs" in out
    assert f"  {Part.LCM_UNET}" in out and "on disk; read from its file when its mode runs" in out
    assert "waits in CPU RAM" not in out
    assert main(["plan", *model_args(tiny_models), "--ram", "64", "--size", "64x64"]) == EXIT_OK
    roomy = capsys.readouterr().out
    assert "with every part loaded" in roomy and "on disk" not in roomy
    assert main(["plan", *model_args(tiny_models), "--ram", "8", "--vram", "8"]) == EXIT_BAD_INPUT


def test_a_terminals_plan_is_folded_to_its_width_and_a_piped_one_is_not() -> None:
    lines = [
        "LoRA modes: fused, as their model cards run them; the slot (6 MiB, the layers the LoRA touches)"
        " lives beside the base UNet and is re-fused at each switch between LoRAs",
        "  ddim              4.32 GiB        0 B  every part",
    ]
    assert folded(lines, None) == lines
    out = folded(lines, 80)
    assert all(len(line) <= 80 for line in out) and len(out) > 2
    assert out[1].startswith("    ") and out[-1] == lines[1]  # a fold is indented; a short row stays
    assert " ".join(part.strip() for part in out[:-1]) == lines[0]  # nothing lost but the fold's spaces
