"""A prompt's encodings kept across runs (what fewstep bench does, mode by mode): each cell is the very
image a comparison of all the modes gives, and the prompt is encoded once."""

from __future__ import annotations

import numpy as np
import pytest

from engine.contract.request import GenerationRequest, ModeSettings
from engine.outputs.bench_cells import cell_request
from engine.runtime.denoise import PromptEmbeddings
from engine.runtime.engine import Engine, SharedEncodings

PROMPT = "a small green triangle on a white background"
MODES = ("ddim", "lcm-lora", "lightning")


def test_cells_run_one_by_one_match_the_comparison_bit_for_bit(
    engine_all: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tuple(ModeSettings(mode=m, steps=2 if m == "ddim" else None) for m in MODES)
    comparison = engine_all.run(GenerationRequest(prompt=PROMPT, seeds=(3, 4), modes=settings))
    encoded: list[str] = []
    encode = engine_all.encode

    def counting(
        prompt: str, negative: str, *, with_negative: bool, text_key: str = "base"
    ) -> PromptEmbeddings:
        encoded.append(prompt)
        return encode(prompt, negative, with_negative=with_negative, text_key=text_key)

    monkeypatch.setattr(engine_all, "encode", counting)
    kept = SharedEncodings(PROMPT, "", engine_all.needs_negative(settings))
    assert kept.with_negative  # ddim's CFG 5: the negative is encoded for every mode, as compare does
    for result in comparison.results:
        mode = next(s for s in settings if s.mode == result.mode)
        cell = engine_all.run(cell_request(PROMPT, "", mode, result.seed, None), prompt_encodings=kept)
        assert np.array_equal(cell.results[0].image, result.image), (result.mode, result.seed)
    assert encoded == [PROMPT]  # once, for six cells of three modes


def test_encodings_of_another_prompt_or_without_the_negative_are_refused(engine_all: Engine) -> None:
    ddim = cell_request(PROMPT, "", ModeSettings(mode="ddim", steps=2), 0, None)
    with pytest.raises(ValueError, match="another prompt"):
        engine_all.run(ddim, prompt_encodings=SharedEncodings("a red circle", "", True))
    with pytest.raises(ValueError, match="negative prompt"):
        engine_all.run(ddim, prompt_encodings=SharedEncodings(PROMPT, "", False))
