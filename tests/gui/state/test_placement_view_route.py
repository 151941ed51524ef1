"""The Models tab's plan follows the LoRA route set in Settings (the fused slot, or not)."""

from __future__ import annotations

from devtools.tiny_model import TinyModelSet
from engine.contract.placement import LoraRoute
from gui.state.placement_view import PlanRequest, plan_text
from tests.conftest import model_paths_of


def test_models_tab_plans_the_route_set_in_settings(tiny_models: TinyModelSet) -> None:
    def text(route: LoraRoute) -> str:
        request = PlanRequest(
            paths=model_paths_of(tiny_models),
            free_bytes=80 * 1024**3,
            source="the GPU memory set in Settings",
            dtype="fp16",
            size=(64, 64),
            lora_route=route,
        )
        return plan_text(request)

    assert "LoRA modes: fused" in text(LoraRoute.AUTO)
    assert "LoRA modes: unfused" in text(LoraRoute.UNFUSED)
