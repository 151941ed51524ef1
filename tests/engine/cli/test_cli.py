"""The CLI contract: names, files written, exit codes, one-line errors that write nothing."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from devtools.refused_files import write_pickle_checkpoint, write_sd15_lora, write_truncated
from devtools.tiny_model import TinyModelSet
from engine.cli import EXIT_BAD_INPUT, EXIT_OK, build_parser, command_modules, main
from engine.cli.terminal_table import fitted_table
from engine.pocket.model import builtin_label
from tests.conftest import REPO_ROOT


def png_text(image: Image.Image) -> dict[str, str]:
    assert isinstance(image, PngImagePlugin.PngImageFile)
    return image.text


def model_args(models: TinyModelSet) -> list[str]:
    return [
        "--base", str(models.base),
        "--lcm-unet", str(models.lcm_unet),
        "--lcm-lora", str(models.lcm_lora),
        "--lightning-unet", str(models.lightning_unet),
        "--lightning-lora", str(models.lightning_lora),
    ]  # fmt: skip


def test_compare_writes_grid_images_and_report(
    tiny_models: TinyModelSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    code = main(
        ["compare", "--prompt", "a red circle", "--seed", "3", "--steps", "ddim=6", "--guidance", "lcm=6.5",
         "--out", str(out), *model_args(tiny_models)]
    )  # fmt: skip
    assert code == EXIT_OK, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    modes = [r["mode"] for r in report["results"]]
    assert modes == ["ddim", "lcm", "lcm-lora", "lightning", "lightning-lora"]
    by_mode = {r["mode"]: r for r in report["results"]}
    assert by_mode["ddim"]["steps"] == 6 and by_mode["lcm"]["guidance"] == 6.5
    assert by_mode["lightning"]["timesteps"] == [999, 749, 499, 249]
    assert by_mode["lcm"]["scheduler"] == "LCMScheduler"
    for record in report["results"]:
        assert record["seed"] == 3
        assert set(record["seconds"]) >= {
            "text_encoding",
            "denoising",
            "per_step",
            "decode",
            "switch",
            "total",
        }
        with Image.open(out / record["file"]) as image:
            assert image.size == (64, 64)
            assert "Steps: " in png_text(image)["parameters"]
    with Image.open(out / "grid.png") as grid:
        assert grid.width > 5 * 64
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["grid.png", "report.json", "reproduce.py", *(f"{m}.png" for m in modes)]
    )


def test_generate_writes_one_png(tiny_models: TinyModelSet, tmp_path: Path) -> None:
    out = tmp_path / "one.png"
    code = main(
        ["generate", "--mode", "lightning", "--prompt", "x", "--out", str(out), *model_args(tiny_models)]
    )
    assert code == EXIT_OK
    with Image.open(out) as image:
        parameters = png_text(image)["parameters"]
    assert parameters.splitlines()[-1].startswith("Steps: 4, Sampler: Euler")
    assert sorted(tmp_path.iterdir()) == [out.with_suffix(".json"), out]
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert (sidecar["format"], sidecar["mode"], sidecar["file"], sidecar["size"]) == (
        "fewstep-image-1",
        "lightning",
        "one.png",
        [64, 64],
    )
    assert sidecar["parameters"] == parameters
    # The tiny base is a folder: A1111's Model hash names single files only.
    assert sidecar["model_hash"] is None


def test_info_reads_back_what_generate_wrote(
    tiny_models: TinyModelSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "one.png"
    argv = ["generate", "--mode", "lcm", "--prompt", "", "--negative", "no fog", "--seed", "11"]
    assert main([*argv, "--guidance", "lcm=6", "--out", str(out), *model_args(tiny_models)]) == EXIT_OK
    capsys.readouterr()
    assert main(["info", str(out)]) == EXIT_OK
    info = json.loads(capsys.readouterr().out)
    assert (info["prompt"], info["negative_prompt"], info["seed"]) == ("", "no fog", 11)
    assert (info["mode"], info["guidance"], info["steps"], info["source"]) == ("lcm", 6.0, 4, "Fewstep")
    assert (info["width"], info["height"], info["ignored"]) == (64, 64, [])


def test_without_model_options_the_builtin_model_is_used_and_labelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "builtin"
    assert main(["compare", "--prompt", "x", "--modes", "lcm,lightning", "--out", str(out)]) == EXIT_OK
    assert builtin_label() in capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == builtin_label() and [r["mode"] for r in report["results"]] == [
        "lcm",
        "lightning",
    ]


def test_a_mode_whose_file_is_not_given_is_skipped_with_a_notice(
    tiny_models: TinyModelSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "partial"
    code = main(["compare", "--prompt", "x", "--modes", "ddim,lcm", "--steps", "ddim=2", "--base",
                 str(tiny_models.base), "--out", str(out)])  # fmt: skip
    assert code == EXIT_OK
    err = capsys.readouterr().err
    assert "skipping lcm: no --lcm-unet given" in err
    assert [r["mode"] for r in json.loads((out / "report.json").read_text())["results"]] == ["ddim"]


BAD_INPUTS = {
    "unknown mode": (["--modes", "ddim,nope"], "unknown mode nope"),
    "size not multiple of 8": (["--size", "100x64"], "multiples of 8"),
    "size malformed": (["--size", "big"], "WIDTHxHEIGHT"),
    "steps below 1": (["--steps", "lcm=0"], "from 1 to 200"),
    "steps not a number": (["--steps", "lcm=four"], "whole number"),
    "steps for unknown mode": (["--steps", "nope=4"], "unknown mode"),
    "negative seed": (["--seed", "-1"], "seed"),
    "missing path": (["--lcm-unet", "/nonexistent/lcm"], "does not exist"),
    "lora given as unet": (
        ["--lightning-unet", "{lightning_lora}"],
        "this is a 4-step SDXL-Lightning LoRA, but",
    ),
    "unet given as lora": (
        ["--lcm-lora", "{lightning_unet}"],
        "this is a 4-step SDXL-Lightning UNet, but --lcm-lora",
    ),
    "base given a lora": (["--base", "{lcm_lora}"], "this is an LCM-LoRA, but --base takes the SDXL base"),
    "lcm given base unet": (["--lcm-unet", "{base}/unet"], "not an LCM UNet"),
    "pickle": (["--lcm-lora", "{pickle}"], "never unpickles"),
    "truncated": (["--lightning-unet", "{truncated}"], "not a readable safetensors"),
    "lightning without step count": (["--lightning-unet", "{renamed}"], "cannot tell the step count"),
    "unreadable": (["--lightning-lora", "{unreadable}"], "not a readable safetensors"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_one_line_exit_2_and_writes_nothing(
    case: str, tiny_models: TinyModelSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.ckpt").write_bytes(b"\x80\x04not really a pickle")
    data = tiny_models.lightning_unet.read_bytes()
    (broken / "sdxl_lightning_4step_unet.safetensors").write_bytes(data[: len(data) // 2])
    (broken / "my_unet.safetensors").write_bytes(data)
    unreadable = broken / "sdxl_lightning_4step_lora.safetensors"
    unreadable.write_bytes(b"")
    names = {
        "lightning_lora": tiny_models.lightning_lora,
        "lightning_unet": tiny_models.lightning_unet,
        "lcm_lora": tiny_models.lcm_lora,
        "base": tiny_models.base,
        "pickle": broken / "model.ckpt",
        "truncated": broken / "sdxl_lightning_4step_unet.safetensors",
        "renamed": broken / "my_unet.safetensors",
        "unreadable": unreadable,
    }
    extra, expected = BAD_INPUTS[case]
    extra = [arg.format(**names) for arg in extra]
    out = tmp_path / "out"
    args = ["compare", "--prompt", "x", "--out", str(out), *model_args(tiny_models)]
    # A later option wins in argparse, so the bad value replaces the good one.
    code = main([*args, *extra])
    captured = capsys.readouterr()
    assert code == EXIT_BAD_INPUT
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert expected in lines[0]
    assert "Traceback" not in captured.err
    assert not out.exists()


def test_other_bad_invocations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "x.png"
    assert main(["generate", "--mode", "nope", "--prompt", "x", "--out", str(png)]) == EXIT_BAD_INPUT
    assert (
        main(["generate", "--mode", "lcm", "--prompt", "x", "--out", str(tmp_path / "x.jpg")])
        == EXIT_BAD_INPUT
    )
    assert main(["compare", "--prompt", "x"]) == EXIT_BAD_INPUT  # --out missing
    assert (
        main(["compare", "--prompt", "x", "--lcm-lora", str(png), "--out", str(tmp_path / "o")])
        == EXIT_BAD_INPUT
    )
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4
    assert "needs --base" in errors[3]
    assert list(tmp_path.iterdir()) == []


def test_console_script_runs_as_a_process(tmp_path: Path) -> None:
    """The installed entry point, as other tools call it: exit code 2 and one line, no traceback."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "compare",
            "--prompt",
            "x",
            "--size",
            "65x64",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert done.returncode == EXIT_BAD_INPUT
    assert done.stderr.strip().count("\n") == 0 and "multiples of 8" in done.stderr


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`fewstep --help` names each subcommand the parser accepts, and `fewstep NAME --help` reaches each."""
    from gui.launcher import main as fewstep

    subcommands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subcommands.choices) == {"compare", "generate", "models", "plan", "info", "bench"}
    assert set(command_modules()) == set(subcommands.choices)  # no command module left out of COMMANDS
    assert fewstep(["--help"]) == EXIT_OK
    usage = capsys.readouterr().out
    for name in subcommands.choices:
        assert f" fewstep {name} ..." in usage, usage
        with pytest.raises(SystemExit) as done:
            fewstep([name, "--help"])
        assert done.value.code == EXIT_OK
        assert capsys.readouterr().out.startswith(f"usage: fewstep {name} ")


@pytest.fixture(scope="module")
def downloads(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A download folder with usable files and refused ones, some in a subfolder."""
    folder = tmp_path_factory.mktemp("scan") / "downloads"
    shutil.copytree(tiny_models.base, folder / "sdxl-base")
    shutil.copy(tiny_models.lightning_unet, folder / "sdxl_lightning_4step_unet.safetensors")
    (folder / "loras").mkdir()
    shutil.copy(tiny_models.lcm_lora, folder / "loras" / "lcm-lora-sdxl.safetensors")
    write_truncated(tiny_models.lightning_unet, folder / "sdxl_lightning_8step_unet.safetensors", keep=0.9)
    write_sd15_lora(folder / "loras" / "detail_tweaker.safetensors")
    write_pickle_checkpoint(folder / "a_checkpoint.ckpt", folder.parent / "UNPICKLED")
    return folder


USABLE = ("sdxl-base/", "sdxl_lightning_4step_unet.safetensors", "loras/lcm-lora-sdxl.safetensors")
REFUSED = ("sdxl_lightning_8step_unet.safetensors", "loras/detail_tweaker.safetensors", "a_checkpoint.ckpt")


@pytest.mark.parametrize("columns", [80, 120])
def test_models_fits_the_terminal_usable_first_paths_relative(
    columns: int,
    downloads: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["models", str(downloads)]) == EXIT_OK
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= columns, out
    assert str(downloads) not in out  # each path relative to the folder given
    # Each file's path whole at the start of a line: usable ones, then the refused ones.
    starts = [line.split()[0] for line in lines if line and not line.startswith(" ")]
    assert starts == ["usable", *sorted(USABLE), "refused", *sorted(REFUSED)], out
    # The truncated file's reason, its own path taken out, wrapped below it: the whole text is there.
    truncated = lines.index(next(line for line in lines if line.startswith(REFUSED[0])))
    reason = " ".join(line.strip() for line in lines[truncated : truncated + 5]).removeprefix(REFUSED[0])
    assert "not a readable safetensors file" in reason and "may be truncated or still downloading" in reason


def test_models_json_keeps_full_paths_and_reasons(
    downloads: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("COLUMNS", "40")  # the JSON does not care
    assert main(["models", str(downloads), "--json"]) == EXIT_OK
    entries = json.loads(capsys.readouterr().out)
    assert [e["usable"] for e in entries] == [True] * len(USABLE) + [False] * len(REFUSED)
    by_name = {e["name"]: e for e in entries}
    assert set(by_name) == {*USABLE, *REFUSED}
    for name, entry in by_name.items():
        assert entry["path"] == str(downloads / name.rstrip("/")) and entry["source"] == "folder"
    assert by_name["sdxl_lightning_4step_unet.safetensors"]["enables"] == ["lightning"]
    truncated = by_name["sdxl_lightning_8step_unet.safetensors"]
    assert truncated["reason"].startswith(f"{downloads / 'sdxl_lightning_8step_unet.safetensors'} is not a")
    assert truncated["enables"] == [] and truncated["what"] is None
    assert "Stable Diffusion 1.x" in by_name["loras/detail_tweaker.safetensors"]["reason"]


@pytest.mark.parametrize("width", [40, 80])
def test_a_fitted_table_narrows_text_first_and_loses_no_word(width: int) -> None:
    path = "folder/sdxl_lightning_8step_unet.safetensors"  # 44 characters: longer than 40 columns
    reason = "not a readable safetensors file (incomplete metadata); it may be truncated or still downloading"
    lines = fitted_table(("refused", "why"), [(path, reason), ("short.ckpt", "a pickle")], width)
    assert max(len(line) for line in lines) <= width, lines
    first = [line[: line.index("  ")] if "  " in line else line for line in lines[1:]]
    if width == 80:  # room for the path whole: only the reason wraps
        assert lines[1].startswith(path + "  ") and len(lines) > 3
    assert "".join(part.strip() for part in first).startswith(path)  # a path cut is a path kept
    assert " ".join(line[len(first[0]) :].strip() for line in lines[1:-1]).split() == reason.split()


def test_a_reader_that_leaves_early_is_not_an_unexpected_failure() -> None:
    """`fewstep plan ... | head`: the pipe closes before the command writes; it says nothing on stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "plan", "--vram", "8"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the first line is written
    with process.stderr:
        error = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1
    assert error == ""
