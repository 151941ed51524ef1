"""`fewstep info FILE.png`: the reader's view of a PNG as JSON on stdout; one line and exit 2 otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from engine.cli import EXIT_BAD_INPUT, EXIT_OK, main

CIVITAI = (
    "cinematic photo of a red fox, <lora:fox_detail_xl:0.6>\n"
    "Negative prompt: drawing, painting\n"
    "Steps: 30, CFG scale: 5, Sampler: DPM++ 2M Karras, Seed: 2860293914, Size: 832x1216, Clip skip: 2,"
    ' Civitai resources: [{"type":"checkpoint","modelVersionId":128078}], Civitai metadata: {}'
)


def png_with_text(path: Path, text: str | None) -> Path:
    info = PngImagePlugin.PngInfo()
    if text is not None:
        info.add_text("parameters", text)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def test_info_prints_what_fewstep_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(png_with_text(tmp_path / "fox.png", CIVITAI))]) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out == {
        "prompt": "cinematic photo of a red fox,",
        "negative_prompt": "drawing, painting",
        "seed": 2860293914,
        "width": 832,
        "height": 1216,
        "steps": 30,
        "guidance": 5.0,
        "eta": None,
        "mode": "dpmpp-2m",
        "styles": [{"name": "fox_detail_xl", "weight": 0.6, "hash": None}],
        "model": None,
        "model_hash": None,
        "source": "Civitai",
        "ignored": [
            {
                "field": "Schedule type",
                "reason": "Karras approximated: the mode uses leading timestep spacing",
            },
            {
                "field": "Clip skip",
                "reason": "Fewstep uses SDXL's fixed text-encoder layers; clip skip 2 is not applied",
            },
        ],
    }


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: png_with_text(p, None), "holds no generation settings"),
        (lambda p: p.write_bytes(b"GIF89a" + bytes(50)), "is not a PNG image"),
        (lambda p: None, "cannot read"),
    ],
)
def test_info_without_settings_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, message: str
) -> None:
    path = tmp_path / "image.png"
    make(path)  # type: ignore[operator]
    assert main(["info", str(path)]) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err and "image.png" in captured.err
