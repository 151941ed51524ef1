"""Settings texts as each tool writes them, read with the fields an artist expects back.

Each text follows its tool's own writer: AUTOMATIC1111's create_infotext (1.x, with its `Hashes`
object and the `Schedule type` of 1.9+), Forge and reForge (their `f…` versions, Forge's extra keys),
SD.Next (`App`, `Backend`, `Pipeline`), ComfyUI's metadata savers (ComfyUI's sampler spellings,
`Version: ComfyUI`), Civitai's generator (`Civitai resources` as a bare JSON list, an unquoted date),
and the old suffixed sampler names of A1111 before 1.9.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from engine.outputs.infotext import parse_infotext
from engine.outputs.png_info import info_record, read_settings
from engine.outputs.png_text import PNG_SIGNATURE

CORPUS: dict[str, tuple[str, dict[str, Any]]] = {
    "a1111 1.10 with Hashes JSON and a lora tag": (
        "masterpiece, a lighthouse at dusk, <lora:ink_style:0.8>\n"
        "Negative prompt: blurry, lowres\n"
        "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 3141592653,"
        " Size: 832x1216, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, VAE hash: 235745af8d,"
        ' VAE: sdxl_vae.safetensors, Lora hashes: "ink_style: 0123456789ab",'
        ' Hashes: {"vae": "235745af8d", "lora:ink_style": "0123456789ab", "model": "31e35c80fc"},'
        " Version: v1.10.1",
        {
            "prompt": "masterpiece, a lighthouse at dusk,",
            "negative_prompt": "blurry, lowres",
            "steps": 30,
            "mode": "dpmpp-2m",
            "guidance": 7.0,
            "seed": 3141592653,
            "width": 832,
            "height": 1216,
            "model": "sd_xl_base_1.0",
            "model_hash": "31e35c80fc",
            "styles": [{"name": "ink_style", "weight": 0.8, "hash": "0123456789ab"}],
            "source": "AUTOMATIC1111",
            "ignored": ["Schedule type", "VAE"],
        },
    ),
    "a1111 1.6, old sampler name, hires fix, clip skip": (
        "a cat in a hat\n"
        "Negative prompt: ugly\n"
        "Steps: 25, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 42, Size: 1024x1024,"
        " Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Denoising strength: 0.35, Clip skip: 2,"
        " Hires upscale: 1.5, Hires steps: 10, Hires upscaler: 4x-UltraSharp, Version: v1.6.0",
        {
            "prompt": "a cat in a hat",
            "mode": "dpmpp-2m",
            "guidance": 6.5,
            "steps": 25,
            "source": "AUTOMATIC1111",
            "ignored": ["Schedule type", "Clip skip", "Hires fix"],
        },
    ),
    "a1111 old Euler a Karras": (
        "a dog\nSteps: 20, Sampler: Euler a Karras, CFG scale: 7, Seed: 1, Size: 512x768",
        {"mode": "euler", "ignored": ["Sampler", "Schedule type"], "width": 512, "source": None},
    ),
    "a1111 old DPM++ 2M SDE Exponential": (
        "a dog\nSteps: 20, Sampler: DPM++ 2M SDE Exponential, CFG scale: 7, Seed: 1, Size: 512x768",
        {"mode": "dpmpp-2m", "ignored": ["Sampler", "Schedule type"]},
    ),
    "a1111 old DPM++ 2M SGM Uniform": (
        "a dog\nSteps: 20, Sampler: DPM++ 2M SGM Uniform, CFG scale: 7, Seed: 1, Size: 512x768",
        {"mode": "dpmpp-2m", "ignored": ["Schedule type"]},
    ),
    "a1111 lightning recipe": (
        "a red fox\nSteps: 4, Sampler: Euler, Schedule type: SGM Uniform, CFG scale: 1, Seed: 0,"
        " Size: 1024x1024, Model: sdxl_lightning_4step, Version: v1.10.1",
        {"mode": "lightning-lora", "guidance": 1.0, "steps": 4, "ignored": []},
    ),
    "a1111 DDIM and LCM": (
        "Steps: 30, Sampler: DDIM, Schedule type: Automatic, CFG scale: 5, Seed: 3, Size: 1024x1024",
        {"prompt": "", "mode": "ddim", "ignored": []},
    ),
    "a1111 LCM": (
        "a bowl of fruit\nSteps: 6, Sampler: LCM, Schedule type: Automatic, CFG scale: 1.5, Seed: 3,"
        " Size: 1024x1024, Version: v1.10.1",
        {"mode": "lcm-lora", "guidance": 1.5, "steps": 6, "ignored": []},
    ),
    "forge with its own keys": (
        "a fox in the snow\n"
        "Steps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Distilled CFG Scale: 3.5,"
        " Seed: 7, Size: 896x1152, Model hash: 31e35c80fc, Model: sd_xl_base_1.0,"
        " Version: f2.0.1v1.10.1-previous-313-g8a042934, Module 1: sdxl_vae",
        {
            "mode": "euler",
            "source": "Forge",
            "ignored": ["Schedule type", "Distilled CFG Scale", "Module 1"],
        },
    ),
    "reforge": (
        "a fox\nNegative prompt: \nSteps: 28, Sampler: Euler a, Schedule type: Automatic, CFG scale: 5,"
        " Seed: 99, Size: 1024x1024, Model hash: 31e35c80fc, Model: sdxl,"
        " Version: f1.1.0-v1.10.1RC-latest-2016-g1cc9c8b2",
        {"mode": "euler", "negative_prompt": "", "source": "Forge", "ignored": ["Sampler"]},
    ),
    "sd.next": (
        "photo of a woman, golden hour\n"
        "Negative prompt: cartoon\n"
        "Steps: 20, Seed: 1620085323, Sampler: DPM++ 2M, CFG scale: 6, Size: 1024x1024,"
        " Parser: Full parser, Model: sd_xl_base_1.0, Model hash: 31e35c80fc, Backend: Diffusers,"
        " App: SD.Next, Version: 4ca4733, Operations: txt2img, Pipeline: StableDiffusionXLPipeline",
        {"mode": "dpmpp-2m", "seed": 1620085323, "source": "SD.Next", "ignored": ["Parser"]},
    ),
    "comfyui image saver": (
        "a castle on a hill\n"
        "Negative prompt: blurry\n"
        "Steps: 20, Sampler: dpmpp_2m_sde_karras, CFG scale: 7.0, Seed: 123, Size: 1024x1024,"
        ' Clip skip: 1, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Hashes: {"model": "31e35c80fc"},'
        " Version: ComfyUI",
        {"mode": "dpmpp-2m", "source": "ComfyUI", "ignored": ["Sampler", "Schedule type"]},
    ),
    "comfyui saver with a Scheduler key": (
        "a castle\nSteps: 4, Sampler: euler, Scheduler: sgm_uniform, CFG scale: 1.0, Seed: 5,"
        " Size: 1024x1024, Version: ComfyUI",
        {"mode": "lightning-lora", "source": "ComfyUI", "ignored": []},
    ),
    "civitai": (
        "cinematic photo of a red fox, <lora:fox_detail_xl:0.6>, <lora:missing_one:1>\n"
        "Negative prompt: drawing, painting\n"
        "Steps: 30, CFG scale: 5, Sampler: DPM++ 2M Karras, Seed: 2860293914, Size: 832x1216,"
        " Clip skip: 2, Created Date: 2024-05-04T09:12:00.0000000Z,"
        ' Civitai resources: [{"type":"checkpoint","modelVersionId":128078},'
        '{"type":"lora","weight":0.6,"modelVersionId":135867}], Civitai metadata: {}',
        {
            "prompt": "cinematic photo of a red fox, ,",
            "seed": 2860293914,
            "source": "Civitai",
            "styles": [
                {"name": "fox_detail_xl", "weight": 0.6, "hash": None},
                {"name": "missing_one", "weight": 1.0, "hash": None},
            ],
            "ignored": ["Schedule type", "Clip skip"],
        },
    ),
    "windows line endings": (
        "a lake\r\nwith mountains\r\nNegative prompt: people\r\nSteps: 20, Sampler: Euler,"
        " CFG scale: 7, Seed: 8, Size: 1024x1024, Version: v1.10.1\r\n",
        {"prompt": "a lake\nwith mountains", "negative_prompt": "people", "seed": 8, "ignored": []},
    ),
    "empty prompt, settings first": (
        "Steps: 4, Sampler: Euler, Schedule type: SGM Uniform, CFG scale: 1, Seed: 0, Size: 1024x1024",
        {"prompt": "", "negative_prompt": "", "mode": "lightning-lora", "seed": 0},
    ),
    "empty prompt, negative first": (
        "Negative prompt: text, watermark\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 0, Size: 1024x1024",
        {"prompt": "", "negative_prompt": "text, watermark", "mode": "euler"},
    ),
    "bad size drops only the size": (
        "a tall portrait\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 77, Size: 540x960, Version: v1.10.1",
        {
            "prompt": "a tall portrait",
            "seed": 77,
            "steps": 20,
            "width": None,
            "height": None,
            "mode": "euler",
            "ignored": ["Size"],
        },
    ),
    "fewstep before this version": (
        "a cat\nSteps: 4, Sampler: LCM, Schedule type: Leading, CFG scale: 8, Seed: 1, Size: 64x64,"
        ' Model: tiny, Fewstep mode: lcm, Fewstep styles: "ink_style:0.5 watercolor:1", Version: fewstep 0.1.0',
        {
            "mode": "lcm",
            "guidance": 8.0,
            "source": "Fewstep",
            "styles": [
                {"name": "ink_style", "weight": 0.5, "hash": None},
                {"name": "watercolor", "weight": 1.0, "hash": None},
            ],
            "ignored": [],
        },
    ),
}


def check(record: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if key == "ignored":
            assert [item["field"] for item in record["ignored"]] == value, record["ignored"]
        else:
            assert record[key] == value, key


@pytest.mark.parametrize("name", list(CORPUS))
def test_each_tools_text_reads_right(name: str) -> None:
    text, expected = CORPUS[name]
    restored = parse_infotext(text)
    check(info_record(restored), expected)
    assert "<lora:" not in restored.prompt


def test_approximations_are_named() -> None:
    restored = parse_infotext(CORPUS["a1111 1.6, old sampler name, hires fix, clip skip"][0])
    reasons = {item.field: item.reason for item in restored.ignored}
    assert "Karras approximated" in reasons["Schedule type"]
    assert "not applied" in reasons["Hires fix"] and "clip skip 2" in reasons["Clip skip"]


def test_json_values_are_read_whole() -> None:
    restored = parse_infotext(CORPUS["a1111 1.10 with Hashes JSON and a lora tag"][0])
    assert restored.fields["Hashes"].startswith('{"vae"') and restored.fields["Version"] == "v1.10.1"
    civitai = parse_infotext(CORPUS["civitai"][0])
    assert civitai.fields["Civitai resources"].endswith("135867}]")
    assert civitai.fields["Created Date"] == "2024-05-04T09:12:00.0000000Z"


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I4s", len(data), kind) + data + struct.pack(">I", zlib.crc32(kind + data))


def test_stability_matrix_utf8_text_chunk(tmp_path: Path) -> None:
    """Stability Matrix writes UTF-8 into a plain tEXt chunk, beside its own `parameters-json` and `smproj`."""
    text = (
        "un café sous la pluie, 東京の夜\nNegative prompt: flou\n"
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5, Seed: 42, Size: 1024x1024,"
        " Model: sd_xl_base_1.0"
    )
    path = tmp_path / "stability.png"
    path.write_bytes(
        PNG_SIGNATURE
        + chunk(b"tEXt", b"parameters\0" + text.encode("utf-8"))
        + chunk(b"tEXt", b'parameters-json\0{"PositivePrompt": "un caf\xc3\xa9"}')
        + chunk(b"tEXt", b"smproj\0{}")
        + chunk(b"IEND", b"")
    )
    record = info_record(read_settings(path))
    check(
        record,
        {
            "prompt": "un café sous la pluie, 東京の夜",
            "negative_prompt": "flou",
            "mode": "dpmpp-2m",
            "source": "Stability Matrix",
            "ignored": ["Schedule type"],
        },
    )


# AUTOMATIC1111's extra_networks.parse_prompt: every `<kind:args>` tag becomes "", the rest stays.
A1111_EXTRA_NETWORK = re.compile(r"<(\w+):([^>]+)>")
SETTINGS = "Steps: 4, Sampler: Euler, Schedule type: SGM Uniform, CFG scale: 1, Seed: 0, Size: 1024x1024"


def a1111_encodes(prompt_lines: str) -> str:
    """The text A1111 hands the encoder for a pasted prompt: its lines stripped (parse_generation_parameters),
    its tags removed (parse_prompt); then CLIP's whitespace_clean, since the tokenizer sees no more."""
    pasted = "\n".join(line.strip() for line in prompt_lines.split("\n"))
    return re.sub(r"\s+", " ", A1111_EXTRA_NETWORK.sub("", pasted)).strip()


@pytest.mark.parametrize(
    ("prompt", "restored"),
    [
        pytest.param(
            "1girl, solo, hatsune miku, テスト, \n<lora:NoobV065sHyperDmd:1> masterpiece, best quality",
            "1girl, solo, hatsune miku, テスト,\nmasterpiece, best quality",
            id="easy-reforge: tag opening the second line",
        ),
        pytest.param("<lora:ink:0.8>, a lighthouse, dusk", ", a lighthouse, dusk", id="at the start"),
        pytest.param("a lighthouse, dusk, <lora:ink:0.8>", "a lighthouse, dusk,", id="at the end"),
        pytest.param("a lighthouse <lora:ink:0.8> at dusk", "a lighthouse at dusk", id="mid-line"),
        pytest.param("a light<lora:ink:0.8>house", "a lighthouse", id="inside a word"),
        pytest.param("a, <lora:ink:0.8>, <lyco:wash:1>, b", "a, , , b", id="two tags between commas"),
        pytest.param("a lighthouse,\n<lora:ink:0.8>\nat dusk", "a lighthouse,\nat dusk", id="a line of tags"),
    ],
)
def test_a_tag_is_removed_and_nothing_else(prompt: str, restored: str) -> None:
    """What Fewstep restores is what A1111 encodes: whitespace differs only where CLIP cannot see it."""
    read = parse_infotext(f"{prompt}\nNegative prompt: blurry\n{SETTINGS}")
    assert read.prompt == restored
    assert re.sub(r"\s+", " ", read.prompt).strip() == a1111_encodes(prompt)
    assert read.styles and read.negative_prompt == "blurry"


@pytest.mark.parametrize(
    ("prompt", "restored", "kinds"),
    [
        pytest.param(
            "a lighthouse <hypernet:ink:0.6> at dusk", "a lighthouse at dusk", ["hypernet"], id="hypernet"
        ),
        pytest.param(
            "a, <lora:ink:0.8>, <wildcard:colours>, b",
            "a, , , b",
            ["wildcard"],
            id="an extension's kind beside a LoRA",
        ),
    ],
)
def test_other_extra_network_tags_leave_the_prompt_as_in_a1111(
    prompt: str, restored: str, kinds: list[str]
) -> None:
    read = parse_infotext(f"{prompt}\n{SETTINGS}")
    assert read.prompt == restored
    assert re.sub(r"\s+", " ", read.prompt).strip() == a1111_encodes(prompt)
    said = [i.reason for i in read.ignored if i.field.startswith("<")]
    assert said == [f"Fewstep has no {kind} networks; the tag is not applied" for kind in kinds]
