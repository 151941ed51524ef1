"""Style LoRAs in every layout of docs/model-files.md: each is a style LoRA, loads into every base-UNet mode,
equals the same matrices in any other layout, re-encodes the prompt only where its text-encoder
part must be off, and at weight 0 is exactly no LoRA."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open

from devtools.lora_fixtures import STYLE_CASES, StyleFile, write_lora, write_style_files
from devtools.tiny_model import TinyModelSet
from engine.cli import EXIT_OK, main
from engine.contract.modes import DEFAULT_COMPARISON, ModelRole
from engine.contract.request import ComparisonResult, GenerationRequest, ModeSettings, RGBImage
from engine.files.model_files import FileKind, check_style_lora, inspect_path
from engine.files.model_paths import StyleLora
from engine.runtime.engine import Engine
from engine.runtime.loading import count_adapter_modules
from tests.conftest import model_paths_of

PROMPT = "a red circle on the blue background"
BASE_UNET_MODES = ("ddim", "lcm-lora", "lightning-lora")
FULL_UNET_MODES = ("lcm", "lightning")

# Layouts the engine cannot load correctly; each name maps to why. Empty: every layout loads.
KNOWN_BROKEN: dict[str, str] = {}
WORKING = tuple(name for name, _layout, _group in STYLE_CASES if name not in KNOWN_BROKEN)
# Each group's reference: a layout the engine loads today.
REFERENCE = {"full": "kohya-sgm", "attention": "kohya-diffusers-attention"}


@pytest.fixture(scope="module")
def style_files(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, StyleFile]:
    return write_style_files(tiny_models, tmp_path_factory.mktemp("styles"))


@pytest.fixture(scope="module")
def styled(tiny_models: TinyModelSet, style_files: dict[str, StyleFile]) -> Engine:
    """All five modes and every working layout, each loaded at weight 0 (off unless a request turns it on)."""
    styles = tuple(StyleLora(style_files[name].path, 0.0) for name in WORKING)
    return Engine(replace(model_paths_of(tiny_models), styles=styles))


def adapter(name: str) -> str:
    return f"style-{WORKING.index(name)}"


def compare(
    engine: Engine, weights: tuple[tuple[str, float], ...], modes: tuple[str, ...] = DEFAULT_COMPARISON
) -> ComparisonResult:
    request = GenerationRequest(
        prompt=PROMPT,
        seeds=(5,),
        modes=tuple(ModeSettings(mode=m, steps=2) for m in modes),
        style_weights=weights,
    )
    return engine.run(request)


def images(result: ComparisonResult) -> dict[str, RGBImage]:
    return {r.mode: r.image for r in result.results}


@pytest.fixture(scope="module")
def runs(styled: Engine) -> dict[str, ComparisonResult]:
    """One comparison with every style off, then one per working layout with only it on."""
    done = {"off": compare(styled, ())}
    for name in WORKING:
        done[name] = compare(styled, ((adapter(name), 1.0),))
    return done


def differ(a: RGBImage, b: RGBImage) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# ---------------------------------------------------------------------------------------------
# The files


def _keys(path: Path) -> tuple[set[str], dict[str, str]]:
    with safe_open(str(path), framework="pt") as handle:
        return set(handle.keys()), dict(handle.metadata() or {})


def test_fixture_files_follow_formats_md(style_files: dict[str, StyleFile]) -> None:
    keys, metadata = _keys(style_files["kohya-sgm"].path)
    for key in (
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight",
        "lora_unet_input_blocks_4_1_proj_in.lora_up.weight",
        "lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight",  # down_blocks.0.resnets.0.conv1
        "lora_unet_input_blocks_3_0_op.lora_down.weight",  # down_blocks.0.downsamplers.0.conv
        "lora_unet_middle_block_1_transformer_blocks_0_ff_net_2.alpha",
        "lora_unet_output_blocks_2_2_conv.lora_down.weight",  # up_blocks.0.upsamplers.0.conv
        "lora_unet_output_blocks_0_0_skip_connection.lora_down.weight",
        "lora_unet_output_blocks_0_0_emb_layers_1.lora_down.weight",
        "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight",
        "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight",
    ):
        assert key in keys, key
    assert not any("down_blocks" in k or "up_blocks" in k for k in keys)
    assert metadata["ss_base_model_version"] == "sdxl_base_v1-0"
    assert metadata["modelspec.architecture"] == "stable-diffusion-xl-v1-base/lora"
    assert (metadata["ss_network_dim"], metadata["ss_network_alpha"]) == ("4", "2.0")

    keys, _ = _keys(style_files["kohya-diffusers"].path)
    assert "lora_unet_down_blocks_1_attentions_0_proj_in.lora_down.weight" in keys

    keys, metadata = _keys(style_files["peft"].path)
    assert "unet.down_blocks.1.attentions.0.proj_in.lora_A.weight" in keys
    assert "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight" in keys
    assert "text_encoder_2.text_model.encoder.layers.9.mlp.fc2.lora_A.weight" in keys
    assert '"unet.lora_alpha": 2.0' in metadata["lora_adapter_metadata"]

    keys, _ = _keys(style_files["peft-mixed"].path)  # pocket.md's trap, as diffusers writes it
    assert "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora.down.weight" in keys
    assert "unet.down_blocks.1.attentions.0.proj_in.lora_A.weight" in keys

    keys, _ = _keys(style_files["diffusers-old"].path)
    assert "unet.down_blocks.1.attentions.0.proj_in.lora.down.weight" in keys
    assert "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.up.weight" in keys

    keys, _ = _keys(style_files["diffusers-old-processor"].path)
    assert (
        "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.up.weight" in keys
    )
    assert all(".processor.to_" in k for k in keys)


def test_the_files_are_deterministic(
    tiny_models: TinyModelSet, style_files: dict[str, StyleFile], tmp_path: Path
) -> None:
    # The two writers with several metadata keys, which safetensors and peft would otherwise order by hash.
    for name in ("kohya-sgm", "peft"):
        style = style_files[name]
        again = write_lora(tmp_path / style.path.name, style.layout, style.matrices, tiny_models)
        assert again.read_bytes() == style.path.read_bytes(), name


@pytest.mark.parametrize("name", [name for name, _layout, _group in STYLE_CASES])
def test_each_layout_is_classified_a_style_lora(name: str, style_files: dict[str, StyleFile]) -> None:
    style = style_files[name]
    info = inspect_path(style.path)
    assert info.kind is FileKind.STYLE_LORA, info.describe()
    assert info.text_encoder_keys == style.matrices.patches_text_encoders
    assert check_style_lora(style.path) == info


# ---------------------------------------------------------------------------------------------
# Through the engine


def test_every_module_of_each_file_holds_the_adapter(
    styled: Engine, style_files: dict[str, StyleFile]
) -> None:
    """pocket.md: diffusers drops LoRA keys it cannot place with only a log line; every one must land,
    in the base UNet and text encoders and in each LoRA twin."""
    base = styled.base
    for name in WORKING:
        matrices = style_files[name].matrices
        loaded = count_adapter_modules([base.unet, base.text_encoder, base.text_encoder_2], adapter(name))
        assert loaded == matrices.module_count, name
        for role in (ModelRole.LCM_LORA, ModelRole.LIGHTNING_LORA):
            assert count_adapter_modules([styled.pipes[role].unet], adapter(name)) == len(matrices.unet)


@pytest.mark.parametrize("name", WORKING)
def test_a_style_changes_the_base_unet_modes_and_only_those(
    name: str, runs: dict[str, ComparisonResult]
) -> None:
    off, on = images(runs["off"]), images(runs[name])
    for mode in BASE_UNET_MODES:
        assert differ(on[mode], off[mode]) > 0.5, mode
    for mode in FULL_UNET_MODES:  # the full LCM and Lightning UNets carry no style
        np.testing.assert_array_equal(on[mode], off[mode], err_msg=mode)
    assert {r.mode: r.styles for r in runs[name].results} == {
        mode: ((adapter(name), 1.0),) if mode in BASE_UNET_MODES else () for mode in DEFAULT_COMPARISON
    }


def test_layouts_of_the_same_matrices_give_identical_images(
    runs: dict[str, ComparisonResult], style_files: dict[str, StyleFile]
) -> None:
    compared = 0
    for name in WORKING:
        reference = REFERENCE[style_files[name].group]
        if name == reference:
            continue
        for mode in BASE_UNET_MODES:
            np.testing.assert_array_equal(
                images(runs[name])[mode], images(runs[reference])[mode], err_msg=f"{name} {mode}"
            )
        compared += 1
    assert compared >= 1


def _encodings(result: ComparisonResult) -> tuple[list[str], set[float], set[float]]:
    paid = [r.mode for r in result.results if not r.text_encoding_shared]
    base = {r.timings.text_encoding for r in result.results if r.mode in BASE_UNET_MODES}
    full = {r.timings.text_encoding for r in result.results if r.mode in FULL_UNET_MODES}
    return paid, base, full


def test_a_text_encoder_style_encodes_once_with_and_once_without_it(
    runs: dict[str, ComparisonResult], style_files: dict[str, StyleFile]
) -> None:
    assert style_files["kohya-sgm"].matrices.patches_text_encoders
    result = runs["kohya-sgm"]
    paid, base, full = _encodings(result)
    # One base-UNet mode pays for the styled encoding, one full-UNet mode for the plain one.
    assert len(paid) == 2, paid
    assert {m in BASE_UNET_MODES for m in paid} == {True, False}, paid
    assert len(base) == 1 and len(full) == 1 and base != full
    assert result.text_encoding_total == pytest.approx(base.pop() + full.pop())
    # Without the style's text-encoder adapters, the full UNets see exactly the unstyled prompt.
    for mode in FULL_UNET_MODES:
        np.testing.assert_array_equal(images(result)[mode], images(runs["off"])[mode])


def test_a_style_without_text_encoder_keys_encodes_once(
    runs: dict[str, ComparisonResult], style_files: dict[str, StyleFile]
) -> None:
    name = "kohya-diffusers-attention"
    assert not style_files[name].matrices.patches_text_encoders
    paid, base, full = _encodings(runs[name])
    assert len(paid) == 1 and base == full
    off_paid, _, _ = _encodings(runs["off"])
    assert len(off_paid) == 1


def test_weight_zero_equals_no_lora(
    styled: Engine, runs: dict[str, ComparisonResult], engine_all: Engine
) -> None:
    # After every style has been on (text-encoder adapters included), all at 0 is exactly no LoRA.
    again = images(compare(styled, tuple((adapter(n), 0.0) for n in WORKING)))
    plain = images(compare(engine_all, ()))
    for mode in DEFAULT_COMPARISON:
        np.testing.assert_array_equal(again[mode], plain[mode], err_msg=mode)
        np.testing.assert_array_equal(images(runs["off"])[mode], plain[mode], err_msg=mode)


def test_several_styles_at_once(styled: Engine, runs: dict[str, ComparisonResult]) -> None:
    both = compare(styled, ((adapter("kohya-sgm"), 1.0), (adapter("kohya-diffusers-attention"), 1.0)))
    for mode in BASE_UNET_MODES:
        for alone in ("kohya-sgm", "kohya-diffusers-attention"):
            assert differ(images(both)[mode], images(runs[alone])[mode]) > 0.5, (mode, alone)
    for mode in FULL_UNET_MODES:
        np.testing.assert_array_equal(images(both)[mode], images(runs["off"])[mode])
    styles = {r.mode: dict(r.styles) for r in both.results}
    assert styles["ddim"] == {adapter("kohya-sgm"): 1.0, adapter("kohya-diffusers-attention"): 1.0}
    # Two files holding the same matrices, each at half weight, add up to one at full weight
    # (up to float rounding: the two halves are added one after the other).
    halves = compare(
        styled, ((adapter("kohya-sgm"), 0.5), (adapter("kohya-diffusers"), 0.5)), modes=BASE_UNET_MODES
    )
    for mode in BASE_UNET_MODES:
        full = images(runs["kohya-sgm"])[mode]
        assert differ(images(halves)[mode], full) < 0.1 * differ(full, images(runs["off"])[mode]), mode


def test_cli_lora_option_with_a_weight(
    styled: Engine,
    style_files: dict[str, StyleFile],
    tiny_models: TinyModelSet,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "styled.png"
    lora = f"{style_files['kohya-sgm'].path}:0.5"
    argv = ["generate", "--mode", "ddim", "--steps", "ddim=2", "--seed", "5", "--prompt", PROMPT]
    assert main([*argv, "--base", str(tiny_models.base), "--lora", lora, "--out", str(out)]) == EXIT_OK, (
        capsys.readouterr().err
    )
    with Image.open(out) as image:
        written = np.asarray(image.convert("RGB"))
    expected = images(compare(styled, ((adapter("kohya-sgm"), 0.5),), modes=("ddim",)))["ddim"]
    np.testing.assert_array_equal(written, expected)
