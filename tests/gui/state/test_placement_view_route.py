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


def test_models_tab_on_the_cpu_says_the_full_unets_wait_on_disk(tiny_models: TinyModelSet) -> None:
    from engine.contract.info import EngineInfo, MemoryReport
    from gui.state.placement_view import plan_request
    from gui.state.settings import Settings

    # The engine's report after a load on the CPU with 1 GiB available: under the RAM reserve.
    memory = MemoryReport(
        residency="one",
        models=(),
        process_rss=None,
        placement={"free_bytes": 1024**3, "planned": True, "dtype": "fp32", "ram": True},
    )
    info = EngineInfo(
        builtin=False,
        available_modes=(),
        file_steps=(),
        native_size=(64, 64),
        device="cpu float32, 1 CPU threads",
        model_label="tiny",
        styles=(),
        memory=memory,
    )
    request = plan_request(Settings(), info)
    assert request.ram and request.free_bytes == 1024**3
    request = PlanRequest(**{**request.__dict__, "paths": model_paths_of(tiny_models)})
    text = plan_text(request)
    assert "available RAM (the CPU: RAM is the device)" in text
    assert "lcm unet" in text and "on disk; read from its file when its mode runs" in text
    assert "waits in CPU RAM" not in text
