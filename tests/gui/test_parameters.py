"""Restoring settings from PNG text: Fewstep's own, AUTOMATIC1111's, and hostile files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.contract.request import ComparisonResult, GenerationRequest, ModeResult, ModeSettings, Timings
from engine.outputs.comparison_files import RunContext, png_bytes, png_parameters
from gui.state.parameters import (
    MAX_PARAMETERS_CHARS,
    MAX_TEXT_CHUNK,
    PNG_SIGNATURE,
    ParametersError,
    parse_parameters,
    read_png_parameters,
    restore_from_png,
)

A1111 = (
    "a prompt\n"
    "Negative prompt: a negative prompt\n"
    "Steps: 4, Sampler: Euler, Schedule type: SGM Uniform, CFG scale: 1, Seed: 0, Size: 1024x1024,"
    " Model: sdxl_lightning_4step, Version: v1.10.1"
)


def fewstep_png(tmp_path: Path, prompt: str, negative: str = "") -> Path:
    result = ModeResult(
        mode="lcm-lora",
        seed=1234,
        steps=6,
        guidance=1.5,
        scheduler="LCMScheduler",
        timesteps=(999.0,),
        timings=Timings(text_encoding=0.1, switch=0.0, denoising=0.2, per_step=(0.2,), decode=0.1),
        image=np.zeros((64, 48, 3), dtype=np.uint8),
    )
    request = GenerationRequest(
        prompt=prompt, negative_prompt=negative, seeds=(1234,), modes=(ModeSettings(mode="lcm-lora"),)
    )
    comparison = ComparisonResult(request=request, results=(result,), width=48, height=64)
    text = png_parameters(result, comparison, RunContext(model_label="tiny, test: model", device="cpu"))
    path = tmp_path / "fewstep.png"
    path.write_bytes(png_bytes(Image.fromarray(result.image), text))
    return path


def chunk(kind: bytes, data: bytes, *, crc: int | None = None) -> bytes:
    check = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I4s", len(data), kind) + data + struct.pack(">I", check)


def png_with(tmp_path: Path, *chunks: bytes) -> Path:
    path = tmp_path / "crafted.png"
    path.write_bytes(PNG_SIGNATURE + b"".join(chunks) + chunk(b"IEND", b""))
    return path


def test_fewstep_png_round_trip(tmp_path: Path) -> None:
    prompt = 'a cat, "quoted": with colons\nand a second line'
    restored = restore_from_png(fewstep_png(tmp_path, prompt, "blurry, dark"))
    assert restored.prompt == prompt
    assert restored.negative_prompt == "blurry, dark"
    assert (restored.seed, restored.steps, restored.guidance) == (1234, 6, 1.5)
    assert (restored.width, restored.height) == (48, 64)
    assert restored.mode == "lcm-lora" and restored.mode_named
    assert restored.model == "tiny, test: model"  # JSON-quoted on the way out, unquoted on the way in


def test_a1111_text_maps_its_sampler_to_a_mode() -> None:
    restored = parse_parameters(A1111)
    assert restored.prompt == "a prompt"
    assert restored.negative_prompt == "a negative prompt"
    assert (restored.steps, restored.guidance, restored.seed) == (4, 1.0, 0)
    assert (restored.width, restored.height) == (1024, 1024)
    assert restored.mode == "lightning-lora" and not restored.mode_named


def test_a1111_without_negative_and_unknown_sampler() -> None:
    restored = parse_parameters("just a prompt\nSteps: 20, Sampler: UniPC, CFG scale: 7, Seed: 42")
    assert restored.negative_prompt == ""
    assert restored.mode is None
    assert restored.seed == 42


def test_multiline_negative_prompt() -> None:
    text = "p1\np2\nNegative prompt: n1\nn2\nSteps: 2, Seed: 1"
    restored = parse_parameters(text)
    assert (restored.prompt, restored.negative_prompt) == ("p1\np2", "n1\nn2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x" * (MAX_PARAMETERS_CHARS + 1), "longer than"),
        ("a prompt", "no settings line"),
        ("a\x00b\nSteps: 4", "control characters"),
        ("p\nSteps: 4, Steps: 5", "twice"),
        ("p\nSteps: -4", "whole number"),
        ("p\nSteps: 100000", "whole number"),
        ("p\nSteps: 4, Seed: 99999999999999999999999", "whole number"),
        ("p\nSteps: 4, CFG scale: nan", "between"),
        ("p\nSteps: 4, CFG scale: inf", "between"),
        ("p\nSteps: 4, CFG scale: 1e400", "between"),
        ("p\nSteps: 4, Size: 1023x1024", "multiples of 8"),
        ("p\nSteps: 4, Size: 99999x8", "up to"),
        ("p\nSteps: 4, Size: 1024 by 1024", "must look like"),
        ("p\nSteps: 4, Fewstep mode: rm -rf", "unknown"),
        ('p\nSteps: 4, Model: "unterminated', "malformed"),
        ('p\nSteps: 4, Model: "\\u12"', "malformed"),
        ("p\nSteps: 4, " + ", ".join(f"K{i}: {i}" for i in range(100)), "too many"),
        ("p\nSteps: 4, Model: " + "m" * 5000, "too long"),
        ("p" * 20_000 + "\nSteps: 4", "prompt is longer"),
    ],
)
def test_malformed_or_hostile_text_is_refused(text: str, message: str) -> None:
    with pytest.raises(ParametersError, match=message):
        parse_parameters(text)


def test_not_a_png(tmp_path: Path) -> None:
    path = tmp_path / "fake.png"
    path.write_bytes(b"GIF89a" + b"\0" * 100)
    with pytest.raises(ParametersError, match="not a PNG"):
        read_png_parameters(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ParametersError, match="cannot read"):
        read_png_parameters(tmp_path / "nope.png")


def test_truncated_png(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    path.write_bytes(PNG_SIGNATURE + b"\0\0")
    with pytest.raises(ParametersError, match="truncated"):
        read_png_parameters(path)


def test_png_without_parameters(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    with pytest.raises(ParametersError, match="no generation settings"):
        read_png_parameters(path)


def test_oversized_text_chunk_is_not_read(tmp_path: Path) -> None:
    # Declares a huge chunk without holding it: refused from the length alone, nothing allocated.
    header = struct.pack(">I4s", MAX_TEXT_CHUNK + 1, b"tEXt")
    path = tmp_path / "huge.png"
    path.write_bytes(PNG_SIGNATURE + header + b"parameters\0")
    with pytest.raises(ParametersError, match="larger than"):
        read_png_parameters(path)


def test_compression_bomb_is_capped(tmp_path: Path) -> None:
    bomb = zlib.compress(b"a" * 50_000_000, 9)  # 50 MB of text in about 50 kB
    path = png_with(tmp_path, chunk(b"zTXt", b"parameters\0\0" + bomb))
    with pytest.raises(ParametersError, match="larger than"):
        read_png_parameters(path)


def test_bad_checksum(tmp_path: Path) -> None:
    path = png_with(tmp_path, chunk(b"tEXt", b"parameters\0p\nSteps: 4", crc=0))
    with pytest.raises(ParametersError, match="checksum"):
        read_png_parameters(path)


def test_itxt_utf8_and_ztxt_are_read(tmp_path: Path) -> None:
    text = "un café\nSteps: 4, Seed: 3"
    itxt = png_with(tmp_path, chunk(b"iTXt", b"parameters\0\1\0\0\0" + zlib.compress(text.encode())))
    assert read_png_parameters(itxt) == text
    ztxt = png_with(tmp_path, chunk(b"zTXt", b"parameters\0\0" + zlib.compress(b"p\nSteps: 2")))
    assert read_png_parameters(ztxt) == "p\nSteps: 2"


def test_malformed_text_chunk(tmp_path: Path) -> None:
    path = png_with(tmp_path, chunk(b"tEXt", b"no separator here"))
    with pytest.raises(ParametersError, match="malformed"):
        read_png_parameters(path)
