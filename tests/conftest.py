"""Shared fixtures: one tiny model set and one engine per session, torch on one thread."""

from __future__ import annotations

import os

# One torch thread: tests share 2 cores with other processes (a contended thread pool made
# generation 50 to 500 times slower). Set before anything imports torch. Forced, not defaulted: the
# thread count changes CPU summation orders, so bit-exact comparisons need it equal on both sides
# whatever the developer's environment says (every engine sets torch's count from FEWSTEP_THREADS).
os.environ["FEWSTEP_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from devtools.tiny_model import TinyModelSet, build_tiny_model_set
from engine.files.model_paths import ModelPaths
from engine.runtime.engine import Engine

torch.set_num_threads(1)

ROLES = ("base", "lcm_unet", "lcm_lora", "lightning_unet", "lightning_lora")


@pytest.fixture(scope="session", autouse=True)
def _roomy_ram() -> Iterator[None]:
    """The engine plans the CPU with the RAM available when it starts (engine.runtime.engine): the
    tests run on a shared machine whose free RAM comes and goes, so they see 64 GiB, where every part
    stays loaded as before, unless a test of the CPU plan says otherwise (tests/engine/runtime/test_disk_wait.py)."""
    patch = pytest.MonkeyPatch()
    patch.setattr("engine.runtime.engine.available_ram", lambda: 64 * 1024**3)
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the developer's real cache or settings."""
    monkeypatch.setenv("FEWSTEP_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    # and no user mode file from the real config folder (engine.contract.mode_files.user_modes_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.getbasetemp() / "config"))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModelSet:
    return build_tiny_model_set(tmp_path_factory.mktemp("models") / "tiny")


def model_paths_of(models: TinyModelSet, *, without: tuple[str, ...] = ()) -> ModelPaths:
    def pick(name: str) -> Path | None:
        return None if name in without else Path(getattr(models, name))

    return ModelPaths(
        base=pick("base"),
        lcm_unet=pick("lcm_unet"),
        lcm_lora=pick("lcm_lora"),
        lightning_unet=pick("lightning_unet"),
        lightning_lora=pick("lightning_lora"),
    )


@pytest.fixture(scope="session")
def engine_all(tiny_models: TinyModelSet) -> Engine:
    """An engine with all five modes resident, shared by tests that leave it as they found it."""
    return Engine(model_paths_of(tiny_models))


REPO_ROOT = Path(__file__).resolve().parent.parent
