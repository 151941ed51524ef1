"""Files Fewstep cannot use are refused by the CLI with exit code 2 and one line naming the file and
what it is, and nothing written; `fewstep models` lists each with what it is or why it is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.refused_files import (
    write_empty_safetensors,
    write_foreign_lora,
    write_pickle_checkpoint,
    write_sd2_checkpoint,
    write_sd15_checkpoint,
    write_sd15_lora,
    write_sdxl_inpainting_checkpoint,
    write_truncated,
    write_wrong_shape_lightning_unet,
)
from devtools.tiny_model import TinyModelSet
from engine.cli import EXIT_BAD_INPUT, EXIT_OK, main


@dataclass(frozen=True)
class Bad:
    path: Path
    what: str  # what the one line must say the file is


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def marker(folder: Path) -> Path:
    return folder.parent / "UNPICKLED"


@pytest.fixture(scope="module")
def bad(tiny_models: TinyModelSet, folder: Path, marker: Path) -> dict[str, Bad]:
    """Everything an artist's download folder may hold that Fewstep must refuse before loading."""
    return {
        "sd15 lora": Bad(
            write_sd15_lora(folder / "detail_tweaker.safetensors"), "a LoRA for Stable Diffusion 1.x"
        ),
        "sd lora without metadata": Bad(
            write_sd15_lora(folder / "old_style.safetensors", metadata=False),
            "a LoRA for Stable Diffusion 1.x or 2.x",
        ),
        "sd15 checkpoint": Bad(
            write_sd15_checkpoint(folder / "v1-5-pruned-emaonly.safetensors"),
            "a Stable Diffusion 1.x checkpoint",
        ),
        "sd2 checkpoint": Bad(
            write_sd2_checkpoint(folder / "v2-1_768-ema-pruned.safetensors"),
            "a Stable Diffusion 2.x checkpoint",
        ),
        "sdxl inpainting": Bad(
            write_sdxl_inpainting_checkpoint(
                tiny_models, folder / "sd_xl_base_1.0_inpainting_0.1.safetensors"
            ),
            "an SDXL inpainting checkpoint (9 input channels)",
        ),
        "empty": Bad(
            write_empty_safetensors(folder / "export_failed.safetensors"), "an empty safetensors file"
        ),
        "truncated data": Bad(
            write_truncated(
                tiny_models.lightning_unet, folder / "sdxl_lightning_8step_unet.safetensors", keep=0.9
            ),
            "truncated",
        ),
        "truncated header": Bad(
            write_truncated(
                tiny_models.lightning_lora, folder / "sdxl_lightning_2step_lora.safetensors", keep=0.0005
            ),
            "truncated",
        ),
        "zero bytes": Bad(
            write_truncated(tiny_models.lcm_lora, folder / "lcm_partial.safetensors", keep=0), "truncated"
        ),
        "ckpt": Bad(write_pickle_checkpoint(folder / "sd_xl_base_1.0.ckpt", marker), "pickle"),
        "pt": Bad(write_pickle_checkpoint(folder / "style.pt", marker), "pickle"),
        "bin": Bad(write_pickle_checkpoint(folder / "pytorch_lora_weights.bin", marker), "pickle"),
    }


_LIBRARIES = ("diffusers", "transformers", "peft", "huggingface_hub", "accelerate")
RunCli = Callable[[list[str], Path], tuple[int, list[str]]]


@pytest.fixture
def cli(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> RunCli:
    """Run `fewstep compare` in-process; return its exit code and every line the user would see on stderr."""

    def run(args: list[str], out: Path) -> tuple[int, list[str]]:
        caplog.clear()
        code = main(["compare", "--prompt", "a red circle", "--steps", "ddim=2", "--out", str(out), *args])
        lines = capfd.readouterr().err.strip().splitlines()
        # The libraries' own handlers write to the stream they found at import, which pytest's capture
        # keeps from capfd; every record they let through reaches the user's terminal.
        logged = [
            f"{r.name}: {line}"
            for r in caplog.records
            if r.name.split(".")[0] in _LIBRARIES
            for line in r.getMessage().splitlines()
        ]
        return code, logged + lines

    return run


CASES = [
    "sd15 lora",
    "sd lora without metadata",
    "sd15 checkpoint",
    "sd2 checkpoint",
    "sdxl inpainting",
    "empty",
    "truncated data",
    "truncated header",
    "zero bytes",
    "ckpt",
    "pt",
    "bin",
]
NOT_SDXL = ("sd15 lora", "sd lora without metadata", "sd15 checkpoint", "sd2 checkpoint", "sdxl inpainting")


@pytest.mark.parametrize("option", ["--base", "--lora", "--lightning-unet"])
@pytest.mark.parametrize("case", CASES)
def test_bad_file_is_refused_in_one_line_naming_it(
    case: str,
    option: str,
    bad: dict[str, Bad],
    tiny_models: TinyModelSet,
    marker: Path,
    tmp_path: Path,
    cli: RunCli,
) -> None:
    item = bad[case]
    out = tmp_path / "out"
    base = [] if option == "--base" else ["--base", str(tiny_models.base)]
    code, lines = cli([*base, option, str(item.path)], out)
    assert code == EXIT_BAD_INPUT
    assert len(lines) == 1, lines
    assert str(item.path) in lines[0] and item.what in lines[0], lines[0]
    assert "Traceback" not in lines[0]
    assert not out.exists()
    assert not marker.exists(), "a pickle was unpickled"


def test_refusal_reads_as_a_sentence(
    bad: dict[str, Bad],
    tiny_models: TinyModelSet,
    tmp_path: Path,
    cli: RunCli,
) -> None:
    for case, option in (("sd15 lora", "--lora"), ("sd15 checkpoint", "--base"), ("empty", "--lora")):
        base = [] if option == "--base" else ["--base", str(tiny_models.base)]
        _code, lines = cli([*base, option, str(bad[case].path)], tmp_path / "out")
        assert f"this is {bad[case].what}," in lines[0], lines[0]


def test_lightning_unet_with_wrong_shapes_is_refused(
    tiny_models: TinyModelSet,
    folder: Path,
    tmp_path: Path,
    cli: RunCli,
) -> None:
    # Named as ByteDance names it, so only its tensors can tell: the headers, compared before loading.
    unet = write_wrong_shape_lightning_unet(folder / "other_widths" / "sdxl_lightning_4step_unet.safetensors")
    out = tmp_path / "out"
    code, lines = cli(["--base", str(tiny_models.base), "--lightning-unet", str(unet)], out)
    assert code == EXIT_BAD_INPUT
    assert len(lines) == 1, lines
    assert str(unet) in lines[0] and "do not fit" in lines[0], lines[0]
    assert not out.exists()


def test_lora_for_another_model_is_refused_in_one_line(
    tiny_models: TinyModelSet,
    folder: Path,
    tmp_path: Path,
    cli: RunCli,
) -> None:
    lora = write_foreign_lora(folder / "style_for_other_widths.safetensors")
    out = tmp_path / "out"
    code, lines = cli(["--base", str(tiny_models.base), "--lora", f"{lora}:0.8"], out)
    assert code == EXIT_BAD_INPUT
    assert not out.exists()
    assert len(lines) == 1, lines[:3]
    assert str(lora) in lines[0] and "not fit" in lines[0], lines[0]


def test_lora_for_another_model_is_refused_and_writes_nothing(
    tiny_models: TinyModelSet,
    folder: Path,
    tmp_path: Path,
    cli: RunCli,
) -> None:
    lora = write_foreign_lora(folder / "style_for_other_widths_2.safetensors")
    out = tmp_path / "out"
    code, lines = cli(["--base", str(tiny_models.base), "--lora", str(lora)], out)
    assert code == EXIT_BAD_INPUT
    assert not out.exists()
    last = lines[-1]
    assert last.startswith("fewstep: error:") and str(lora) in last and "not fit" in last, last


def _listing(folder: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    """`fewstep models --json`: each entry by its full path."""
    assert main(["models", str(folder), "--json"]) == EXIT_OK
    return {entry["path"]: entry for entry in json.loads(capsys.readouterr().out)}


def test_models_lists_each_file_with_what_it_is_or_why_refused(
    bad: dict[str, Bad], folder: Path, marker: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = _listing(folder, capsys)
    for case, item in bad.items():
        entry = listed.get(str(item.path))
        assert entry is not None, f"{case}: {item.path.name} is not listed"
        assert not entry["usable"] and entry["enables"] == [], entry
        assert item.what in entry["reason"], entry
    assert not marker.exists()


def test_models_lists_unrecognised_files_too(
    bad: dict[str, Bad], folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = _listing(folder, capsys).get(str(bad["empty"].path))
    assert entry is not None and "an empty safetensors file" in entry["reason"]
