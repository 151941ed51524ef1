"""Loading keeps the window alive: no full garbage collection while models load, and progress per part."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.tiny_model import TinyModelSet
from engine.runtime.collector import collector_quiet
from engine.runtime.engine import Engine
from tests.conftest import model_paths_of


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generation of every collection the interpreter starts."""
    seen: list[int] = []

    def record(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(record)
    yield seen
    gc.callbacks.remove(record)


def _allocate() -> list[list[list[int]]]:
    # 2.2 million container objects: several full collections under the default thresholds.
    return [[[] for _ in range(10)] for _ in range(200_000)]


def test_no_full_collection_within_a_load_and_thresholds_come_back(collections: list[int]) -> None:
    before = gc.get_threshold()
    with collector_quiet():
        held = _allocate()
        assert gc.get_threshold()[:2] == before[:2]
    assert 2 not in collections, "a full collection ran while loading: it holds the GIL for a whole walk"
    assert 0 in collections, "young collections must go on"
    assert gc.get_threshold() == before
    del held
    collections.clear()
    _allocate()
    assert 2 in collections, "outside a load, full collections happen as usual"


def test_nested_blocks_restore_only_at_the_outermost() -> None:
    before = gc.get_threshold()
    with collector_quiet():
        with collector_quiet():
            pass
        assert gc.get_threshold() != before
    assert gc.get_threshold() == before


def test_loading_freezes_the_imported_libraries(tiny_models: TinyModelSet) -> None:
    Engine(model_paths_of(tiny_models, without=("lcm_unet", "lightning_unet", "lcm_lora", "lightning_lora")))
    # torch, diffusers, transformers: hundreds of thousands of objects no full collection walks again.
    assert gc.get_freeze_count() > 100_000


def test_loading_reports_each_part_with_its_number(tiny_models: TinyModelSet) -> None:
    said: list[str] = []
    Engine(model_paths_of(tiny_models), on_status=said.append)
    parts = [line for line in said if ": " not in line]
    assert parts == [
        "loading the base model (part 1 of 5)",
        "loading the LCM UNet (part 2 of 5)",
        "loading the Lightning UNet (part 3 of 5)",
        "loading the lcm-lora (part 4 of 5)",
        "loading the lightning-lora (part 5 of 5)",
        "placing the models",
        "ready",
    ]
    # Within a large file, its tensors read so far, in tenths (the folder base is read by diffusers).
    lcm = [line.split(": ")[1] for line in said if line.startswith("loading the LCM UNet (part 2 of 5): ")]
    assert lcm and lcm == sorted(lcm, key=lambda s: int(s.rstrip("%"))) and len(set(lcm)) == len(lcm)
    assert all(s.endswith("0%") and 0 < int(s.rstrip("%")) < 100 for s in lcm)
