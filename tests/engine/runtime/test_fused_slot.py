"""The fused slot: LoRA modes run fused as their model cards run them, bit for bit, beside a base UNet
that no fuse ever writes."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from devtools.lora_fixtures import write_style_files
from devtools.tiny_model import TinyModelSet
from engine.contract.modes import ModelRole
from engine.contract.placement import LoraRoute, Part
from engine.contract.request import GenerationRequest, ModeSettings, RGBImage
from engine.files.model_paths import StyleLora
from engine.runtime.engine import Engine
from tests.conftest import model_paths_of
from tests.plain_diffusers import card_lcm_lora, card_lightning_lora, folder_base

PROMPT = "a large red circle on a blue background"
SEED = 1234
STYLE_WEIGHT = 0.8
CARDS = {"lcm-lora": card_lcm_lora, "lightning-lora": card_lightning_lora}


@pytest.fixture(scope="module")
def style(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A style LoRA that patches the UNet and both text encoders."""
    styles = write_style_files(tiny_models, tmp_path_factory.mktemp("styles"))
    return styles["kohya-diffusers"].path


def engine_with(models: TinyModelSet, style: Path | None, route: LoraRoute) -> Engine:
    styles = (StyleLora(style, STYLE_WEIGHT),) if style is not None else ()
    return Engine(replace(model_paths_of(models), styles=styles), lora_route=route)


@pytest.fixture(scope="module")
def fused_styled(tiny_models: TinyModelSet, style: Path) -> Engine:
    return engine_with(tiny_models, style, LoraRoute.AUTO)


def images(engine: Engine, modes: tuple[str, ...]) -> dict[str, RGBImage]:
    request = GenerationRequest(
        prompt=PROMPT, seeds=(SEED,), modes=tuple(ModeSettings(mode=m) for m in modes)
    )
    return {r.mode: r.image for r in engine.run(request).results}


def weights_digest(unet: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(unet.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("mode", ["lcm-lora", "lightning-lora"])
def test_fused_mode_equals_load_and_fuse_lora_with_a_style(
    fused_styled: Engine, tiny_models: TinyModelSet, style: Path, mode: str
) -> None:
    ours = images(fused_styled, (mode,))[mode]
    expected = CARDS[mode](
        tiny_models, folder_base(tiny_models), PROMPT, SEED, fused=True, styles=((style, STYLE_WEIGHT),)
    )
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("mode", ["lcm-lora", "lightning-lora"])
def test_unfused_mode_equals_the_unfused_route_with_a_style(
    tiny_models: TinyModelSet, style: Path, mode: str
) -> None:
    engine = engine_with(tiny_models, style, LoraRoute.UNFUSED)
    assert engine.slot is None
    result = engine.run(
        GenerationRequest(prompt=PROMPT, seeds=(SEED,), modes=(ModeSettings(mode=mode),))
    ).results[0]
    assert result.lora_route == "unfused"
    expected = CARDS[mode](
        tiny_models, folder_base(tiny_models), PROMPT, SEED, fused=False, styles=((style, STYLE_WEIGHT),)
    )
    np.testing.assert_array_equal(result.image, expected)


def test_fused_without_style_equals_fuse_lora(engine_all: Engine, tiny_models: TinyModelSet) -> None:
    ours = images(engine_all, ("lightning-lora", "lcm-lora"))
    # Asked after the run: the plan follows the modes of the last request on this shared engine.
    assert engine_all.placer.fused
    for mode, card in CARDS.items():
        np.testing.assert_array_equal(ours[mode], card(tiny_models, folder_base(tiny_models), PROMPT, SEED))


def test_fused_and_unfused_differ_only_by_rounding(
    fused_styled: Engine, tiny_models: TinyModelSet, style: Path
) -> None:
    """The same method by two routes: close, so neither is a different LoRA; not asserted equal."""
    fused = images(fused_styled, ("lcm-lora",))["lcm-lora"]
    unfused = card_lcm_lora(
        tiny_models, folder_base(tiny_models), PROMPT, SEED, fused=False, styles=((style, STYLE_WEIGHT),)
    )
    assert np.abs(fused.astype(int) - unfused.astype(int)).max() <= 3


def test_base_and_full_unets_stay_bit_exact_through_any_number_of_fuses(fused_styled: Engine) -> None:
    engine = fused_styled
    untouched = ("ddim", "lcm", "lightning")
    unets = {
        "base": engine.base.unet,
        "lcm": engine.pipes[ModelRole.LCM_UNET].unet,
        "lightning": engine.pipes[ModelRole.LIGHTNING_UNET].unet,
        "lcm twin": engine.pipes[ModelRole.LCM_LORA].unet,
        "lightning twin": engine.pipes[ModelRole.LIGHTNING_LORA].unet,
    }
    digests = {name: weights_digest(unet) for name, unet in unets.items()}
    before = images(engine, untouched)
    for _round in range(3):
        for mode in ("lcm-lora", "lightning-lora"):  # one comparison per mode: a fuse each time
            images(engine, (mode,))
    after = images(engine, untouched)
    for mode in untouched:
        np.testing.assert_array_equal(after[mode], before[mode], err_msg=mode)
    assert {name: weights_digest(unet) for name, unet in unets.items()} == digests


def test_slot_owns_only_the_touched_layers(fused_styled: Engine) -> None:
    engine = fused_styled
    slot = engine.slot
    assert slot is not None
    images(engine, ("lightning-lora",))
    assert slot.fused == ModelRole.LIGHTNING_LORA  # the role, a plain string
    base = {n: p.data_ptr() for n, p in engine.base.unet.named_parameters()}
    own = [n for n, p in slot.unet.named_parameters() if "lora_" not in n and p.data_ptr() != base.get(n, -1)]
    assert own  # the touched layers hold the fused weights
    owned_bytes = sum(p.numel() * p.element_size() for n, p in slot.unet.named_parameters() if n in own)
    assert owned_bytes == slot.bytes
    unet_bytes = sum(
        p.numel() * p.element_size() for n, p in engine.base.unet.named_parameters() if "lora_" not in n
    )
    assert 0 < slot.bytes < unet_bytes
    assert slot.bytes <= engine.placer.parts[Part.LORA_SLOT].size


def test_a_fuse_is_a_switch_cost_and_happens_only_on_a_switch_between_loras(fused_styled: Engine) -> None:
    engine = fused_styled
    request = GenerationRequest(
        prompt=PROMPT,
        seeds=(1, 2),
        modes=tuple(ModeSettings(mode=m) for m in ("lcm-lora", "ddim", "lightning-lora")),
    )
    engine.run(request)
    held = engine.slot.fused if engine.slot is not None else None
    result = engine.run(request)
    fuses = engine.placement_report()["fuses"]
    # The LoRA the slot holds runs first (no fuse), then the other (one fuse), whatever the order asked.
    assert [m["mode"] for m in fuses] == [next(m for m in ("lcm-lora", "lightning-lora") if m != str(held))]
    assert fuses[0]["bytes"] > 0 and fuses[0]["part"] == str(Part.LORA_SLOT)
    fused_mode = fuses[0]["mode"]
    first = next(r for r in result.results if r.mode == fused_mode)
    assert first.timings.switch >= fuses[0]["seconds"]
    assert {r.lora_route for r in result.results} == {"fused", None}
    assert engine.placement_report()["lora_route"] == "fused"
    again = engine.run(replace(request, modes=(ModeSettings(mode=fused_mode),)))
    assert engine.placement_report()["fuses"] == []
    assert again.results[0].lora_route == "fused"


def test_slot_weights_sit_at_the_base_weights_offset_in_a_page(engine_all: Engine) -> None:
    """Where a plain pipeline's fused weights sit: CPU kernels round by alignment (tests/rounding.py)."""
    images(engine_all, ("lcm-lora",))
    slot = engine_all.slot
    assert slot is not None
    base = dict(engine_all.base.unet.named_parameters())
    checked = 0
    for name, parameter in slot.unet.named_parameters():
        if "lora_" in name or name not in base or parameter.data_ptr() == base[name].data_ptr():
            continue
        assert parameter.data_ptr() % 4096 == base[name].data_ptr() % 4096, name
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("role", [ModelRole.LCM_LORA, ModelRole.LIGHTNING_LORA])
def test_slot_weights_equal_fuse_loras_bit_for_bit(
    engine_all: Engine, tiny_models: TinyModelSet, role: ModelRole
) -> None:
    """The slot's weights are exactly those a plain pipeline holds after load_lora_weights +
    fuse_lora; every weight the LoRA does not touch is the base's own tensor."""
    images(engine_all, (str(role),))
    slot = engine_all.slot
    assert slot is not None and slot.fused == role
    pipe = folder_base(tiny_models).pipeline()
    pipe.load_lora_weights(str(getattr(tiny_models, str(role).replace("-", "_"))))
    pipe.fuse_lora()
    plain = {
        name.replace(".base_layer", ""): tensor
        for name, tensor in pipe.unet.state_dict().items()
        if "lora_" not in name
    }
    ours = {name: tensor for name, tensor in slot.unet.state_dict().items() if "lora_" not in name}
    assert ours.keys() == plain.keys()
    base = engine_all.base.unet.state_dict()
    fused = 0
    for name, tensor in ours.items():
        assert torch.equal(tensor, plain[name]), name
        if tensor.data_ptr() != base[name].data_ptr():
            fused += 1
            assert not torch.equal(tensor, base[name]), name  # the LoRA did change this layer
    assert fused == len(slot._own)


def test_plan_command_says_how_the_lora_modes_run(
    tiny_models: TinyModelSet, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import EXIT_OK, main
    from tests.engine.cli.test_cli import model_args

    common = ["plan", *model_args(tiny_models), "--vram", "80", "--size", "64x64"]
    assert main(common) == EXIT_OK
    out = capsys.readouterr().out
    assert "LoRA modes: fused" in out and "lora slot" in out
    assert main([*common, "--lora-route", "unfused"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "LoRA modes: unfused" in out and "lora slot" not in out


def test_memory_report_lists_the_slot(engine_all: Engine) -> None:
    images(engine_all, ("lcm-lora",))
    slot = engine_all.slot
    assert slot is not None
    models = {m.name: m for m in engine_all.memory_report().models}
    assert models["lora slot (lcm-lora fused)"].bytes == slot.bytes > 0
