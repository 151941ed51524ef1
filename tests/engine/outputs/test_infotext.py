"""The A1111 `parameters` text: Fewstep's writer read back by Fewstep's reader, field by field tolerance,
and hostile PNG files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.contract.limits import MAX_PARAMETERS_CHARS, MAX_PROMPT_CHARS
from engine.contract.modes import MODES, GuidanceKind
from engine.contract.request import GenerationRequest, ModeResult, ModeSettings, Timings
from engine.outputs.comparison_files import RunContext, png_bytes, png_parameters_for
from engine.outputs.infotext import parse_infotext
from engine.outputs.png_info import read_settings
from engine.outputs.png_text import (
    MAX_TEXT_CHUNK,
    PNG_SIGNATURE,
    InfotextError,
    read_png_parameters,
    read_png_text,
)

SETTINGS = "Steps: 4, Seed: 1, Size: 64x64"  # three fields: A1111 reads the line as settings


def result(
    mode: str, guidance: float, styles: tuple[tuple[str, float], ...] = (), eta: float | None = None
) -> ModeResult:
    return ModeResult(
        mode=mode,
        seed=1234,
        steps=6,
        guidance=guidance,
        scheduler=MODES[mode].scheduler,
        timesteps=(999.0,),
        timings=Timings(text_encoding=0.1, switch=0.0, denoising=0.2, per_step=(0.2,), decode=0.1),
        image=np.zeros((64, 48, 3), dtype=np.uint8),
        styles=styles,
        eta=eta,
    )


CONTEXT = RunContext(
    model_label="tiny, test: model",
    device="cpu",
    style_names={"style-0": "ink_style", "style-1": "water colour"},
    model_hash="31e35c80fc",
    style_hashes={"style-0": "0123456789ab"},
)


def fewstep_png(
    tmp_path: Path, mode: str, guidance: float, prompt: str, negative: str = "", **kw: object
) -> Path:
    request = GenerationRequest(prompt=prompt, negative_prompt=negative, modes=(ModeSettings(mode=mode),))
    made = result(mode, guidance, **kw)  # type: ignore[arg-type]
    text = png_parameters_for(made, request, 48, 64, CONTEXT)
    path = tmp_path / f"{mode}.png"
    path.write_bytes(png_bytes(Image.fromarray(made.image), text))
    return path


# --- round trips: Fewstep writes, Fewstep reads ---------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_round_trips_with_styles(tmp_path: Path, mode: str) -> None:
    guidance = {"ddim": 6.5, "lcm": 8.0, "lcm-lora": 1.5, "lightning": 0.0, "lightning-lora": 0.0}.get(
        mode, 5.0
    )
    styles = (("style-0", 0.5), ("style-1", -1.25))
    prompt = 'a cat, "quoted": with colons\nand a second line'
    restored = read_settings(fewstep_png(tmp_path, mode, guidance, prompt, "blurry, dark", styles=styles))
    assert (restored.prompt, restored.negative_prompt) == (prompt, "blurry, dark")
    assert (restored.mode, restored.mode_named, restored.source) == (mode, True, "Fewstep")
    assert (restored.seed, restored.steps, restored.guidance) == (1234, 6, guidance)
    assert (restored.width, restored.height) == (48, 64)
    assert (restored.model, restored.model_hash) == ("tiny, test: model", "31e35c80fc")
    assert [(s.name, s.weight, s.hash) for s in restored.styles] == [
        ("ink_style", 0.5, "0123456789ab"),
        ("water colour", -1.25, None),
    ]
    assert restored.ignored == ()
    # What every other tool reads: CFG only where it is real CFG.
    fields = restored.fields
    if MODES[mode].guidance_kind is GuidanceKind.EMBEDDING:
        assert (fields["CFG scale"], fields["LCM guidance embedding"]) == ("1", "8")
    elif guidance <= 1.0:
        assert fields["CFG scale"] == "1"
    else:
        assert fields["CFG scale"] == f"{guidance:g}"
    assert fields["Schedule type"] in ("Automatic", "DDIM", "SGM Uniform", "Align Your Steps")
    assert "<lora:" not in read_png_parameters(tmp_path / f"{mode}.png")


@pytest.mark.parametrize("mode", [name for name in MODES if MODES[name].eta is not None])
def test_a_modes_eta_round_trips(tmp_path: Path, mode: str) -> None:
    restored = read_settings(fewstep_png(tmp_path, mode, 0.0, "a cat", eta=0.65))
    assert (restored.mode, restored.eta, restored.ignored) == (mode, 0.65, ())
    assert restored.fields["Fewstep eta"] == "0.65"


def test_a_mode_without_eta_writes_none() -> None:
    request = GenerationRequest(prompt="a cat", modes=(ModeSettings(mode="lcm"),))
    text = png_parameters_for(result("lcm", 8.0), request, 48, 64, CONTEXT)
    assert "Fewstep eta" not in text
    assert parse_infotext(text).eta is None


@pytest.mark.parametrize(
    ("mode", "eta", "reason"),
    [
        ("tcd", "1.5", "'1.5' is not a number from 0 to 1"),
        ("tcd", "nan", "'nan' is not a number from 0 to 1"),
        ("lightning", "0.3", "SDXL-Lightning UNet takes no eta"),
    ],
)
def test_a_bad_or_misplaced_eta_is_left_out_and_said(mode: str, eta: str, reason: str) -> None:
    restored = parse_infotext(
        f"a cat\nSteps: 4, Seed: 1, Size: 64x64, Fewstep mode: {mode}, Fewstep eta: {eta}"
    )
    assert restored.mode == mode and restored.eta is None
    assert [(i.field, i.reason) for i in restored.ignored] == [("Fewstep eta", reason)]


def test_a1111_names_for_each_mode(tmp_path: Path) -> None:
    names = {}
    for mode in MODES:
        fields = read_settings(fewstep_png(tmp_path, mode, 1.0, "p")).fields
        names[mode] = (fields["Sampler"], fields["Schedule type"])
    assert names == {
        "ddim": ("DDIM", "Automatic"),  # A1111's DDIM steps on leading timesteps by itself
        "lcm": ("LCM", "Automatic"),
        "lcm-lora": ("LCM", "Automatic"),
        "lightning": ("Euler", "SGM Uniform"),  # A1111's nearest to trailing Euler
        "lightning-lora": ("Euler", "SGM Uniform"),
        "euler": ("Euler", "DDIM"),  # leading spacing with offset 1 is A1111's DDIM schedule
        "dpmpp-2m": ("DPM++ 2M", "DDIM"),
        "ays": ("DPM++ 2M SDE", "Align Your Steps"),
        "tcd": ("TCD", "Automatic"),  # TCD picks from its own grid, as LCM
        "hyper-lora": ("DDIM", "SGM Uniform"),  # DDIM on trailing timesteps
        "hyper-lora-1step": ("TCD", "Automatic"),
        "hyper-lora-cfg": ("DDIM", "SGM Uniform"),
        "hyper-unet": ("LCM", "Automatic"),
        "dmd2": ("LCM", "Automatic"),
        "dmd2-lora": ("LCM", "Automatic"),
        "pcm-lora": ("DDIM", "SGM Uniform"),
        "pcm-normalcfg": ("DDIM", "SGM Uniform"),
        "pcm-lcmlike": ("LCM", "Automatic"),
        "flash-lora": ("LCM", "Automatic"),
        "turbo": ("Euler a", "SGM Uniform"),
    }


def test_empty_prompt_non_ascii_and_windows_line_endings_round_trip(tmp_path: Path) -> None:
    restored = read_settings(fewstep_png(tmp_path, "ddim", 5.0, ""))
    assert (restored.prompt, restored.negative_prompt, restored.seed) == ("", "", 1234)
    assert read_png_parameters(tmp_path / "ddim.png").startswith("Steps: 6")  # A1111 leaves no line

    restored = read_settings(fewstep_png(tmp_path, "ddim", 5.0, "", "no fog"))
    assert (restored.prompt, restored.negative_prompt) == ("", "no fog")

    prompt = "un café à Tōkyō, 東京の夜\r\nzweite Zeile\rdritte"
    restored = read_settings(fewstep_png(tmp_path, "euler", 5.0, prompt, "ничего\r\nlaid"))
    assert restored.prompt == "un café à Tōkyō, 東京の夜\nzweite Zeile\ndritte"
    assert restored.negative_prompt == "ничего\nlaid"
    with Image.open(tmp_path / "euler.png") as image:  # other readers (Pillow's) see the same text
        assert image.info["parameters"].startswith("un café à Tōkyō")


def test_windows_line_endings_in_a_foreign_text() -> None:
    text = (
        "line one\r\nline two\r\nNegative prompt: bad\r\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 5\r\n"
    )
    restored = parse_infotext(text)
    assert (restored.prompt, restored.negative_prompt, restored.seed) == ("line one\nline two", "bad", 5)
    assert restored.ignored == ()


# --- tolerance: one bad field drops that field alone ----------------------------------------------


@pytest.mark.parametrize(
    ("bad", "field", "reason"),
    [
        ("Steps: -4", "Steps", "whole number"),
        ("Steps: 100000", "Steps", "whole number"),
        ("Seed: 99999999999999999999999", "Seed", "whole number"),
        ("Seed: ４２", "Seed", "whole number"),  # full-width digits are digits to str.isdigit
        ("CFG scale: nan", "CFG scale", "not a number from"),
        ("CFG scale: inf", "CFG scale", "not a number from"),
        ("CFG scale: 1e400", "CFG scale", "not a number from"),
        ("Size: 1023x1024", "Size", "multiples of 8"),
        ("Size: 99999x8", "Size", "multiples of 8"),
        ("Size: 1024 by 1024", "Size", "look like"),
        ("Fewstep mode: rm -rf", "Fewstep mode", "not a Fewstep mode"),
        ('Model: "\\u12"', "Model", "malformed"),
        ("Model: " + "m" * 5000, "Model", "longer than"),
        ("Model: a\x1bb", "Model", "control characters"),
        ("Sampler: UniPC", "Sampler", "no Fewstep mode"),
    ],
)
def test_a_bad_field_is_dropped_alone(bad: str, field: str, reason: str) -> None:
    good = {"Steps": "4", "CFG scale": "2", "Seed": "9", "Size": "64x64", "Model": "m"}
    good.pop(field, None)
    line = ", ".join([*(f"{key}: {value}" for key, value in good.items()), bad])
    restored = parse_infotext(f"a prompt\nNegative prompt: neg\n{line}")
    assert [i.field for i in restored.ignored] == [field]
    assert reason in restored.ignored[0].reason
    assert (restored.prompt, restored.negative_prompt) == ("a prompt", "neg")
    read = {
        "Steps": restored.steps,
        "CFG scale": restored.guidance,
        "Seed": restored.seed,
        "Size": restored.width,
        "Model": restored.model,
        "Sampler": restored.mode,
        "Fewstep mode": restored.mode,
    }
    assert read.pop(field) is None
    assert all(read[key] is not None for key in good)


def test_a_field_given_twice_keeps_the_first_and_says_so() -> None:
    restored = parse_infotext("p\nSteps: 4, Steps: 5, Seed: 1, Size: 64x64")
    assert restored.steps == 4
    assert [i.field for i in restored.ignored] == ["Steps"]


def test_too_many_fields_are_cut_and_said() -> None:
    restored = parse_infotext("p\n" + SETTINGS + ", " + ", ".join(f"K{i}: {i}" for i in range(100)))
    assert restored.steps == 4 and any("more than" in i.reason for i in restored.ignored)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x" * (MAX_PARAMETERS_CHARS + 1), "longer than"),
        ("a\x00b\n" + SETTINGS, "prompt holds control characters"),
        ("p\nNegative prompt: a\x07b\n" + SETTINGS, "negative prompt holds control characters"),
        ("p" * (MAX_PROMPT_CHARS + 1) + "\n" + SETTINGS, "prompt is longer"),
    ],
)
def test_a_text_that_cannot_be_used_is_refused_whole(text: str, message: str) -> None:
    with pytest.raises(InfotextError, match=message):
        parse_infotext(text)


@pytest.mark.parametrize("line", ["a" * 39_000, "a " * 19_000])
def test_a_long_line_without_colons_is_a_prompt_refused_for_length(line: str) -> None:
    # A1111's unbounded key pattern backtracks for a minute on such a line; Fewstep's is bounded.
    with pytest.raises(InfotextError, match="prompt is longer"):
        parse_infotext("p\n" + line)


@pytest.mark.parametrize(
    "bad",
    [
        "b" * 38_000,
        "Kk: " + "[" * 30_000,  # nesting deeper than json's recursion limit
        "Kk: " + '{"a":' * 7_000,
    ],
)
def test_hostile_settings_fields_are_dropped_alone(bad: str) -> None:
    restored = parse_infotext(f"p\n{SETTINGS}, {bad}")
    assert (restored.prompt, restored.steps, restored.width) == ("p", 4, 64)
    assert len(restored.ignored) == 1


def test_many_lora_tag_openings_are_not_tags() -> None:
    text = "<lora:" * 2_700 + "x\n" + SETTINGS
    assert parse_infotext(text).prompt == "<lora:" * 2_700 + "x"


def test_control_rules_apply_after_line_endings_are_normalised() -> None:
    assert parse_infotext("a\rb\r\n" + SETTINGS).prompt == "a\nb"


def test_a_text_without_settings_line_is_a_prompt() -> None:
    # A1111's rule: fewer than three fields on the last line make it part of the prompt.
    restored = parse_infotext("just a prompt\nSteps: 20, Seed: 4")
    assert restored.prompt == "just a prompt\nSteps: 20, Seed: 4" and restored.seed is None


# --- the PNG container ----------------------------------------------------------------------------


def chunk(kind: bytes, data: bytes, *, crc: int | None = None) -> bytes:
    check = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I4s", len(data), kind) + data + struct.pack(">I", check)


def png_with(tmp_path: Path, *chunks: bytes) -> Path:
    path = tmp_path / "crafted.png"
    path.write_bytes(PNG_SIGNATURE + b"".join(chunks) + chunk(b"IEND", b""))
    return path


def test_utf8_in_a_plain_text_chunk_is_read_as_utf8_and_latin1_still_works(tmp_path: Path) -> None:
    text = "un café, 東京\n" + SETTINGS
    path = png_with(tmp_path, chunk(b"tEXt", b"parameters\0" + text.encode("utf-8")))
    assert read_png_parameters(path) == text
    latin = "un café\n" + SETTINGS
    path = png_with(tmp_path, chunk(b"tEXt", b"parameters\0" + latin.encode("latin-1")))
    assert read_png_parameters(path) == latin


def test_itxt_utf8_and_ztxt_are_read(tmp_path: Path) -> None:
    text = "un café\n" + SETTINGS
    itxt = png_with(tmp_path, chunk(b"iTXt", b"parameters\0\1\0\0\0" + zlib.compress(text.encode())))
    assert read_png_parameters(itxt) == text
    ztxt = png_with(tmp_path, chunk(b"zTXt", b"parameters\0\0" + zlib.compress(b"p\nSteps: 2")))
    assert read_png_parameters(ztxt) == "p\nSteps: 2"


def test_other_chunks_are_named_and_a_large_foreign_one_is_skipped(tmp_path: Path) -> None:
    workflow = b"workflow\0" + b"x" * (MAX_TEXT_CHUNK + 10)  # ComfyUI's workflows can be large
    path = png_with(
        tmp_path, chunk(b"tEXt", workflow), chunk(b"tEXt", b"parameters\0p\n" + SETTINGS.encode())
    )
    found = read_png_text(path)
    assert found.keywords == {"workflow", "parameters"} and found.parameters == "p\n" + SETTINGS


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"GIF89a" + b"\0" * 100, "not a PNG"),
        (PNG_SIGNATURE + b"\0\0", "truncated"),
    ],
)
def test_not_a_png_or_truncated(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "file.png"
    path.write_bytes(content)
    with pytest.raises(InfotextError, match=message):
        read_settings(path)


def test_missing_file_and_no_settings(tmp_path: Path) -> None:
    with pytest.raises(InfotextError, match="cannot read"):
        read_settings(tmp_path / "nope.png")
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    with pytest.raises(InfotextError, match="no generation settings"):
        read_settings(plain)


def test_oversized_parameters_chunk_is_not_read(tmp_path: Path) -> None:
    # Declares a huge chunk without holding it: refused from the length alone, nothing allocated.
    header = struct.pack(">I4s", MAX_TEXT_CHUNK + 1, b"tEXt")
    path = tmp_path / "huge.png"
    path.write_bytes(PNG_SIGNATURE + header + b"parameters\0" + b"x" * 100)
    with pytest.raises(InfotextError, match="larger than"):
        read_png_parameters(path)


def test_compression_bomb_is_capped(tmp_path: Path) -> None:
    bomb = zlib.compress(b"a" * 50_000_000, 9)  # 50 MB of text in about 50 kB
    path = png_with(tmp_path, chunk(b"zTXt", b"parameters\0\0" + bomb))
    with pytest.raises(InfotextError, match="larger than"):
        read_png_parameters(path)


def test_bad_checksum_and_malformed_chunk(tmp_path: Path) -> None:
    path = png_with(tmp_path, chunk(b"tEXt", b"parameters\0p\nSteps: 4", crc=0))
    with pytest.raises(InfotextError, match="checksum"):
        read_png_parameters(path)
    path = png_with(tmp_path, chunk(b"tEXt", b"no separator here"))
    with pytest.raises(InfotextError, match="malformed"):
        read_png_parameters(path)
