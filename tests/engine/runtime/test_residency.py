"""The residency policy: which full distilled UNets stay on the device."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import torch

from devtools.tiny_model import TinyModelSet
from engine.contract.modes import ModelRole
from engine.contract.residency import Residency
from engine.runtime.engine import Engine
from tests.conftest import model_paths_of


@pytest.mark.parametrize(
    ("policy", "vram", "expected"),
    [
        (Residency.AUTO, None, Residency.ALL),  # the CPU: RAM is the device, nothing waits
        (Residency.AUTO, 80.0, Residency.ALL),  # room for everything
        (Residency.ONE, 80.0, Residency.ONE),  # the user's choice wins
        (Residency.ALL, 0.6, Residency.ALL),
    ],
)
def test_policy_is_chosen_from_free_memory(
    tiny_models: TinyModelSet, policy: Residency, vram: float | None, expected: Residency
) -> None:
    engine = Engine(model_paths_of(tiny_models), residency=policy, vram=vram)
    assert engine.memory_report().residency == expected
    # AUTO with too little memory: the planner lets the distilled UNets wait (and more).
    if policy is Residency.AUTO and vram is not None:
        tight = Engine(model_paths_of(tiny_models), residency=policy, vram=0.6)
        assert tight.memory_report().residency == Residency.ONE


def test_one_at_a_time_moves_only_the_needed_unet(
    tiny_models: TinyModelSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --vram plans for a card even on the CPU (without it, ONE lets the UNets wait on disk:
    # tests/engine/runtime/test_disk_wait.py).
    engine = Engine(model_paths_of(tiny_models), residency=Residency.ONE, vram=80.0)
    # Pretend the device is a GPU; the moves are recorded, not made.
    engine.plan = replace(engine.plan, device=torch.device("cuda"))
    moves: list[tuple[str, str]] = []
    for key in (ModelRole.LCM_UNET, ModelRole.LIGHTNING_UNET):

        def record(device: Any, _key: str = str(key).removesuffix("-unet")) -> None:
            moves.append((_key, str(device)))

        monkeypatch.setattr(engine.pipes[key].unet, "to", record)
    for mode in ("ddim", "lcm", "lcm-lora", "lcm", "lightning", "ddim", "lightning"):
        engine.switch_to(mode)
    # LCM moves in once and out when Lightning comes in; base-UNet modes move nothing.
    assert moves == [("lcm", "cuda"), ("lcm", "cpu"), ("lightning", "cuda")]


def test_memory_report_counts_shared_weights_once(engine_all: Engine) -> None:
    report = engine_all.memory_report().to_json()
    models = report["models"]
    # The fused slot is listed once a LoRA mode has fused into it (tests/test_fused_slot.py).
    assert {name for name in models if not name.startswith("lora slot (")} == {
        "text encoders",
        "vae",
        "base unet",
        "lcm unet",
        "lightning unet",
        "lcm-lora (matrices)",
        "lightning-lora (matrices)",
    }
    assert models["lcm-lora (matrices)"]["bytes"] < models["base unet"]["bytes"] / 4
    assert report["residency"] == "all"
