"""Fewstep's PNGs read by a third-party reader (sd-parsers, a test-only dependency): prompt, negative
prompt, seed, steps, sampler and model name come out as Fewstep wrote them, the pocket model included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sd_parsers import ParserManager

from engine.contract.modes import MODES
from engine.contract.request import GenerationRequest, ModeResult, ModeSettings, Timings
from engine.outputs.comparison_files import RunContext, png_bytes, png_parameters_for
from engine.outputs.infotext import parse_infotext
from engine.outputs.png_info import read_settings
from engine.outputs.sampler_names import a1111_names
from engine.pocket.model import POCKET_LABEL, POCKET_NAME

PROMPT = "a large red circle on a blue background, top left"
NEGATIVE = "blurry, dark"


def fewstep_png(tmp_path: Path, mode: str, model_label: str) -> Path:
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    made = ModeResult(
        mode=mode,
        seed=4242,
        steps=4,
        guidance=1.5,
        scheduler=MODES[mode].scheduler,
        timesteps=(999.0,),
        timings=Timings(text_encoding=0.1, switch=0.0, denoising=0.2, per_step=(0.2,), decode=0.1),
        image=image,
    )
    request = GenerationRequest(prompt=PROMPT, negative_prompt=NEGATIVE, modes=(ModeSettings(mode=mode),))
    text = png_parameters_for(made, request, 64, 64, RunContext(model_label=model_label, device="cpu"))
    path = tmp_path / f"{mode}.png"
    path.write_bytes(png_bytes(Image.fromarray(image), text))
    return path


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(
    ("label", "name"), [(POCKET_LABEL, POCKET_NAME), ("sd_xl_base_1.0", "sd_xl_base_1.0")]
)
def test_sd_parsers_reads_fewstep_pngs(tmp_path: Path, mode: str, label: str, name: str) -> None:
    path = fewstep_png(tmp_path, mode, label)
    info = ParserManager().parse(path)
    assert info is not None, "sd-parsers recognised no generator"
    assert (info.full_prompt, info.full_negative_prompt) == (PROMPT, NEGATIVE)
    [sampler] = info.samplers
    assert sampler.name == a1111_names(MODES[mode])[0]
    assert (sampler.parameters["seed"], sampler.parameters["steps"]) == (
        "4242",
        "4",
    )  # sd-parsers keeps A1111 values as text
    assert sampler.model is not None and sampler.model.name == name
    # Fewstep itself reads the name back as the model it described.
    assert read_settings(path).model == label


def test_old_pngs_name_the_pocket_model() -> None:
    """Fewstep before this version wrote the pocket model's description, quoted, as its `Model:`."""
    old = (
        "a small yellow triangle on a purple background\nSteps: 4, Sampler: Euler, Schedule type: SGM Uniform,"
        ' CFG scale: 1, Seed: 3, Size: 64x64, Model: "built-in pocket model (64x64 shapes, trained by Fewstep)",'
        " Fewstep mode: lightning, Version: fewstep 0.1.0"
    )
    assert parse_infotext(old).model == POCKET_LABEL
    new = old.replace('"built-in pocket model (64x64 shapes, trained by Fewstep)"', POCKET_NAME)
    assert parse_infotext(new).model == POCKET_LABEL and parse_infotext(new).fields["Model"] == POCKET_NAME
