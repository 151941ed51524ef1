"""Comparisons as a whole: shared encoding, order, costs, progress, cancellation."""

from __future__ import annotations

import numpy as np
import pytest

from devtools.tiny_model import TinyModelSet
from engine.contract.errors import JobCancelled, RequestError
from engine.contract.modes import DEFAULT_COMPARISON, ModelRole
from engine.contract.request import GenerationRequest, ModeResult, ModeSettings, Progress
from engine.runtime.engine import Engine
from tests.conftest import model_paths_of

PROMPT = "a small green triangle on a white background"


def request_for(*modes: str, seeds: tuple[int, ...] = (7,), steps: int | None = None) -> GenerationRequest:
    return GenerationRequest(
        prompt=PROMPT, seeds=seeds, modes=tuple(ModeSettings(mode=m, steps=steps) for m in modes)
    )


def test_comparison_encodes_once_and_reports_every_cost(engine_all: Engine) -> None:
    delivered: list[ModeResult] = []
    comparison = engine_all.run(request_for(*DEFAULT_COMPARISON), on_result=delivered.append)
    assert [r.mode for r in comparison.results] == list(DEFAULT_COMPARISON)
    assert sorted(r.mode for r in delivered) == sorted(DEFAULT_COMPARISON)
    paid = [r for r in comparison.results if not r.text_encoding_shared]
    assert len(paid) == 1, "the prompt must be encoded once for all modes"
    for result in comparison.results:
        t = result.timings
        assert t.text_encoding > 0 and t.denoising > 0 and t.decode > 0 and t.switch >= 0
        assert len(t.per_step) == result.steps
        assert t.denoising == pytest.approx(sum(t.per_step))


def test_several_seeds_share_initial_noise_per_seed(engine_all: Engine) -> None:
    both = engine_all.run(request_for("lcm", "lightning", seeds=(1, 2))).results
    assert [(r.mode, r.seed) for r in both] == [("lcm", 1), ("lightning", 1), ("lcm", 2), ("lightning", 2)]
    alone = engine_all.run(request_for("lightning", seeds=(2,))).results[0]
    np.testing.assert_array_equal(both[3].image, alone.image)


def test_progress_is_reported_in_order_with_previews(engine_all: Engine) -> None:
    events: list[Progress] = []
    request = GenerationRequest(prompt=PROMPT, modes=(ModeSettings(mode="lcm", steps=3),), want_previews=True)
    engine_all.run(request, on_progress=events.append)
    assert [(e.step, e.total) for e in events] == [(1, 3), (2, 3), (3, 3)]
    preview = events[-1].preview
    assert preview is not None and preview.dtype == np.uint8 and preview.shape == (8, 8, 3)


def test_cancel_midway_then_a_new_run_works(engine_all: Engine) -> None:
    steps_seen: list[int] = []

    def cancel_after_two() -> bool:
        return len(steps_seen) >= 2

    with pytest.raises(JobCancelled):
        engine_all.run(
            request_for("ddim", "lcm-lora", steps=6),
            on_progress=lambda p: steps_seen.append(p.step),
            should_cancel=cancel_after_two,
        )
    assert steps_seen == [1, 2], "the job must stop at the step where cancel was seen"
    # The engine is usable and unchanged: the same run as a fresh one gives the same image.
    after = engine_all.run(request_for("lcm-lora", steps=2)).results[0]
    again = engine_all.run(request_for("lcm-lora", steps=2)).results[0]
    np.testing.assert_array_equal(after.image, again.image)


def test_modes_without_files_are_skipped_and_named(tiny_models: TinyModelSet) -> None:
    engine = Engine(model_paths_of(tiny_models, without=("lcm_unet", "lightning_lora")))
    comparison = engine.run(request_for("ddim", "lcm", "lightning-lora", steps=2))
    assert [r.mode for r in comparison.results] == ["ddim"]
    assert {s.mode: s.reason for s in comparison.skipped} == {
        "lcm": "needs --lcm-unet",
        "lightning-lora": "needs --lightning-lora",
    }
    with pytest.raises(RequestError, match="none of the chosen modes"):
        engine.run(request_for("lcm"))


def test_contract_warnings_reach_the_result(engine_all: Engine) -> None:
    result = engine_all.run(
        GenerationRequest(
            prompt=PROMPT,
            negative_prompt="blurry",
            modes=(ModeSettings(mode="lightning", steps=8, guidance=0.0),),
        )
    ).results[0]
    assert any("distilled for 4 steps" in w for w in result.warnings)
    assert any("negative prompt has no effect" in w for w in result.warnings)


def test_switching_reads_no_file(engine_all: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a mode switch opened a file: {args}")

    for mode in DEFAULT_COMPARISON:
        engine_all.switch_to(mode)  # schedulers built once
    monkeypatch.setattr(builtins, "open", no_open)
    for mode in (*DEFAULT_COMPARISON, *reversed(DEFAULT_COMPARISON)):
        assert engine_all.switch_to(mode) < 1.0


def test_requests_are_validated() -> None:
    with pytest.raises(RequestError, match="multiple of 8"):
        GenerationRequest(prompt="x", width=100, height=64, modes=(ModeSettings(mode="ddim"),)).validate()
    with pytest.raises(RequestError, match="steps must be between"):
        GenerationRequest(prompt="x", modes=(ModeSettings(mode="ddim", steps=0),)).validate()
    with pytest.raises(RequestError, match="unknown mode"):
        GenerationRequest(prompt="x", modes=(ModeSettings(mode="nope"),)).validate()


def test_shared_weights_are_held_once(engine_all: Engine) -> None:
    base = engine_all.base
    for key, pipe in engine_all.pipes.items():
        assert pipe.vae is base.vae and pipe.text_encoder is base.text_encoder, key
        assert pipe.text_encoder_2 is base.text_encoder_2, key
    base_storage = {p.untyped_storage().data_ptr() for p in base.unet.parameters()}
    for role in ("lcm-lora", "lightning-lora"):
        twin = engine_all.pipes[ModelRole(role)].unet
        assert twin is not base.unet
        wrapped = {
            name.replace(".base_layer", ""): p.untyped_storage().data_ptr()
            for name, p in twin.named_parameters()
            if "lora_" not in name
        }
        assert set(wrapped.values()) == base_storage, f"{role} copied base weights"
