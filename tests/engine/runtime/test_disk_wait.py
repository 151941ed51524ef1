"""On the CPU RAM is the device: the full distilled UNets wait on disk until their mode runs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from devtools.tiny_model import TinyModelSet
from engine.cli import EXIT_OK, main
from engine.contract.modes import ModelRole
from engine.contract.placement import ON_DISK_TEXT, Measure, part_of_role
from engine.contract.request import GenerationRequest, ModeSettings
from engine.contract.residency import Residency
from engine.runtime.engine import Engine
from engine.runtime.memory import process_rss, release_freed_memory
from tests.conftest import model_paths_of
from tests.engine.cli.test_cli import model_args

FIVE = ("ddim", "lcm", "lcm-lora", "lightning", "lightning-lora")
FULL = (ModelRole.LCM_UNET, ModelRole.LIGHTNING_UNET)


def _request(seed: int = 7) -> GenerationRequest:
    return GenerationRequest(
        prompt="a lighthouse", seeds=(seed,), modes=tuple(ModeSettings(mode=m, steps=2) for m in FIVE)
    )


def _reads(engine: Engine) -> Counter[str]:
    return Counter(m["part"] for m in engine.placement_report()["moves"] if m["direction"] == "read")


@pytest.fixture(scope="module")
def waiting(tiny_models: TinyModelSet) -> Engine:
    """--residency one on the CPU: the full UNets wait on disk."""
    return Engine(model_paths_of(tiny_models), residency=Residency.ONE)


def test_full_unets_are_not_loaded_at_start(waiting: Engine) -> None:
    assert Measure.DISTILLED_UNETS_WAIT in waiting.placer.measures
    assert waiting.placer.placement.inputs.ram
    for role in FULL:
        assert not waiting.unet_loaded(role)
        assert waiting.placer.where(part_of_role(role)) == "disk"
    models = waiting.memory_report().to_json()["models"]
    assert models["lcm unet"]["on"] == "disk" and models["lcm unet"]["bytes"] > 0


def test_five_modes_equal_the_all_loaded_engine_and_read_each_unet_once(
    waiting: Engine, tiny_models: TinyModelSet
) -> None:
    loaded = Engine(model_paths_of(tiny_models), residency=Residency.ALL)
    assert all(loaded.unet_loaded(role) for role in FULL)
    # Like with like: both run the LoRA modes fused in the slot (the plan fits 64 GiB either way).
    assert loaded.placer.fused and waiting.placer.fused
    expected = {r.mode: np.asarray(r.image) for r in loaded.run(_request()).results}
    # The first comparison reads both (Lightning pushes LCM out); the next ones run the UNet still
    # loaded first and read the other: each at most once per comparison.
    expected_reads = [
        Counter({"lcm unet": 1, "lightning unet": 1}),
        Counter({"lcm unet": 1}),
        Counter({"lightning unet": 1}),
    ]
    for comparison, wanted in enumerate(expected_reads):
        result = waiting.run(_request())
        for r in result.results:
            assert np.array_equal(np.asarray(r.image), expected[r.mode]), (comparison, r.mode)
        assert _reads(waiting) == wanted, comparison
        assert sum(waiting.unet_loaded(role) for role in FULL) == 1
    report = waiting.placement_report()
    assert report["parts"]["lcm unet"]["rests_on"] == "disk"
    assert ON_DISK_TEXT in report["measure_texts"]
    read = next(m for m in report["moves"] if m["direction"] == "read")
    assert read["bytes"] > 0 and read["seconds"] > 0
    assert report["read_bytes"] == sum(m["bytes"] for m in report["moves"] if m["direction"] == "read")
    dropped = [m for m in report["moves"] if m["direction"] == "drop"]
    assert [m["part"] for m in dropped] == ["lcm unet"]
    assert all(m["to"] == "disk" for m in dropped)


def test_base_modes_alone_read_nothing(waiting: Engine) -> None:
    waiting.run(
        GenerationRequest(prompt="a lighthouse", modes=(ModeSettings(mode="ddim", steps=1),), seeds=(1,))
    )
    assert _reads(waiting) == Counter()


def test_auto_on_the_cpu_plans_with_the_available_ram(
    tiny_models: TinyModelSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Less RAM than the tiny set needs with every UNet loaded, plus the 2 GiB reserve: they wait.
    import engine.runtime.engine as engine_module

    base_only = 2 * 1024**3 + 30 * 1024**2
    monkeypatch.setattr(engine_module, "available_ram", lambda: base_only)
    tight = Engine(model_paths_of(tiny_models))
    assert tight.placer.basis.free_bytes == base_only
    placement = tight.placer.placement
    if placement.weights + 2 * 1024**3 > base_only:
        assert Measure.DISTILLED_UNETS_WAIT in placement.measures
        assert not tight.unet_loaded(ModelRole.LCM_UNET)
    # Plenty of RAM: everything is loaded at start, as before.
    monkeypatch.setattr(engine_module, "available_ram", lambda: 64 * 1024**3)
    roomy = Engine(model_paths_of(tiny_models))
    assert roomy.placer.measures == frozenset()
    assert all(roomy.unet_loaded(role) for role in FULL)


def test_released_tensors_give_their_memory_back() -> None:
    """Dropped weights leave the RSS: many mid-size tensors (as a UNet's), freed and trimmed."""
    before = process_rss()
    if before is None:
        pytest.skip("no /proc/self/statm here")
    # 256 tensors of 1 MiB: below glibc's grown mmap threshold, so they sit on the heap.
    tensors = [torch.ones(256 * 1024) for _ in range(256)]
    held = process_rss()
    assert held is not None and held - before > 200 * 1024**2
    del tensors
    release_freed_memory()
    after = process_rss()
    assert after is not None and held - after > 200 * 1024**2


def test_report_json_records_the_reads(
    tiny_models: TinyModelSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    code = main(
        ["compare", "--prompt", "a red circle", "--modes", "ddim,lcm,lightning", "--residency", "one",
         "--device", "cpu", "--steps", "ddim=1", "--out", str(out), *model_args(tiny_models)]
    )  # fmt: skip
    assert code == EXIT_OK, capsys.readouterr().err
    placement = json.loads((out / "report.json").read_text())["placement"]
    assert placement["ram"] is True and placement["parts"]["lcm unet"]["rests_on"] == "disk"
    assert ON_DISK_TEXT in placement["measure_texts"]
    reads = [m for m in placement["moves"] if m["direction"] == "read"]
    assert [(m["mode"], m["part"], m["step"]) for m in reads] == [
        ("lcm", "lcm unet", "denoise"),
        ("lightning", "lightning unet", "denoise"),
    ]
    assert all(m["bytes"] > 0 and m["seconds"] > 0 for m in reads)
    assert placement["read_bytes"] == sum(m["bytes"] for m in reads)
