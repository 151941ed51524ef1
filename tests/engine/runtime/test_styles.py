"""Style LoRAs stacked on the modes that use the base UNet, toggled without reloading."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file, save_file

from devtools.tiny_model import TinyModelSet, write_kohya_lora
from engine.contract.errors import RequestError
from engine.contract.modes import DEFAULT_COMPARISON
from engine.contract.request import GenerationRequest, ModeSettings, RGBImage
from engine.files.model_paths import StyleLora
from engine.runtime.engine import Engine
from tests.conftest import model_paths_of

PROMPT = "a small blue square on a yellow background"


@pytest.fixture(scope="module")
def style_files(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A rank-4 alpha-2 style LoRA, and the same matrices with alpha 4."""
    folder = tmp_path_factory.mktemp("styles")
    unet = UNet2DConditionModel.from_pretrained(tiny_models.base, subfolder="unet")
    alpha2 = folder / "watercolor_style.safetensors"
    write_kohya_lora(alpha2, unet, rank=4, alpha=2.0, seed=11, strength=0.3, metadata={"ss_network_dim": "4"})
    state = load_file(str(alpha2))
    doubled = {k: (torch.full_like(v, 4.0) if k.endswith(".alpha") else v) for k, v in state.items()}
    alpha4 = folder / "watercolor_style_alpha4.safetensors"
    save_file(doubled, str(alpha4))
    return alpha2, alpha4


@pytest.fixture(scope="module")
def styled_engine(tiny_models: TinyModelSet, style_files: tuple[Path, Path]) -> Engine:
    paths = replace(
        model_paths_of(tiny_models),
        styles=(StyleLora(style_files[0], 1.0), StyleLora(style_files[1], 0.0)),
    )
    return Engine(paths)


def images(engine: Engine, weights: tuple[tuple[str, float], ...] | None) -> dict[str, RGBImage]:
    request = GenerationRequest(
        prompt=PROMPT,
        seeds=(5,),
        modes=tuple(ModeSettings(mode=m, steps=2) for m in DEFAULT_COMPARISON),
        style_weights=weights,
    )
    return {r.mode: r.image for r in engine.run(request).results}


def test_style_at_weight_zero_equals_no_style(styled_engine: Engine, engine_all: Engine) -> None:
    off = images(styled_engine, (("style-0", 0.0), ("style-1", 0.0)))
    plain = images(engine_all, None)
    for mode in DEFAULT_COMPARISON:
        np.testing.assert_array_equal(off[mode], plain[mode], err_msg=mode)


def test_style_changes_every_base_unet_mode_and_only_those(styled_engine: Engine) -> None:
    off = images(styled_engine, (("style-0", 0.0),))
    on = images(styled_engine, None)  # style-0 at its own weight 1, style-1 at 0
    for mode in ("ddim", "lcm-lora", "lightning-lora"):
        assert np.abs(on[mode].astype(int) - off[mode].astype(int)).mean() > 0.5, mode
    for mode in ("lcm", "lightning"):  # full distilled UNets carry no base-UNet LoRA
        np.testing.assert_array_equal(on[mode], off[mode])


def test_alpha_over_rank_is_honoured(styled_engine: Engine) -> None:
    # Scale = weight * alpha / rank: alpha 2 at weight 1 equals the same matrices with alpha 4 at 0.5.
    alpha2 = images(styled_engine, (("style-0", 1.0), ("style-1", 0.0)))
    alpha4 = images(styled_engine, (("style-0", 0.0), ("style-1", 0.5)))
    alpha4_full = images(styled_engine, (("style-0", 0.0), ("style-1", 1.0)))
    for mode in ("ddim", "lcm-lora"):
        np.testing.assert_array_equal(alpha2[mode], alpha4[mode], err_msg=mode)
        assert not np.array_equal(alpha2[mode], alpha4_full[mode])


def test_toggling_a_style_reloads_nothing(styled_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.runtime.loading

    def no_load(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a toggle loaded a file")

    monkeypatch.setattr(engine.runtime.loading, "read_safetensors", no_load)
    for weights in ((("style-0", 0.0),), (("style-0", 0.7),), None):
        images(styled_engine, weights)


def test_style_matrices_are_held_once(styled_engine: Engine) -> None:
    from engine.contract.modes import ModelRole

    def lora_storages(unet: object) -> set[int]:
        return {
            p.untyped_storage().data_ptr()
            for n, p in unet.named_parameters()  # type: ignore[attr-defined]
            if "style-0" in n
        }

    base = lora_storages(styled_engine.base.unet)
    assert base
    for role in (ModelRole.LCM_LORA, ModelRole.LIGHTNING_LORA):
        assert lora_storages(styled_engine.pipes[role].unet) == base


def test_unknown_style_name_is_refused(styled_engine: Engine) -> None:
    with pytest.raises(RequestError, match="no style LoRA named"):
        images(styled_engine, (("style-9", 1.0),))


def test_saved_images_name_the_style_files(styled_engine: Engine) -> None:
    from engine.outputs.comparison_files import png_parameters_for

    request = GenerationRequest(prompt=PROMPT, modes=(ModeSettings(mode="ddim", steps=2),))
    result = styled_engine.run(request).results[0]
    text = png_parameters_for(result, request, 64, 64, styled_engine.run_context())
    assert 'Fewstep styles: "watercolor_style: 1"' in text  # A1111 quotes values holding a colon
    # A1111's short hash of the LoRA's tensors, so that other tools (and Civitai) can find the file.
    from engine.outputs.hash_cache import lora_hash

    style_file = styled_engine.styles[0].file.path
    assert f'Lora hashes: "watercolor_style: {lora_hash(style_file)}"' in text
