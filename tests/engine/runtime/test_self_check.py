"""What the self-test says about torch's build and the GPU (or its absence)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from engine.runtime.self_check import backend_checks, device_checks, torch_build


def _torch(*, cuda: str | None, hip: str | None = None, mps: bool = False) -> SimpleNamespace:
    return SimpleNamespace(
        __version__="2.13.0",
        version=SimpleNamespace(cuda=cuda, hip=hip),
        backends=SimpleNamespace(mps=SimpleNamespace(is_built=lambda: mps)),
    )


def test_torch_build_names_its_gpu_backend() -> None:
    assert torch_build(_torch(cuda="13.0")) == "torch 2.13.0, built with CUDA 13.0"
    assert torch_build(_torch(cuda=None, hip="6.4")) == "torch 2.13.0, built with ROCm 6.4"
    assert torch_build(_torch(cuda=None, mps=True)) == "torch 2.13.0, built with Apple MPS"
    assert torch_build(_torch(cuda=None)) == "torch 2.13.0, a CPU-only build"


def test_a_cuda_build_without_a_device_says_so_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    build, gpu = device_checks()
    assert build.detail.endswith("built with CUDA 13.0")
    assert gpu.ok and gpu.detail.startswith("no CUDA device found")
    assert gpu.detail.endswith("Fewstep runs on the CPU in fp32")


def test_a_gpu_is_reported_with_its_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index: (6 * 2**30, 8 * 2**30))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "NVIDIA GeForce RTX 4060")
    _build, gpu = device_checks()
    assert gpu.name == "gpu 0"
    assert gpu.detail == "NVIDIA GeForce RTX 4060, 8.0 GiB (6.0 GiB free); generation runs there in fp16"


def test_this_machine_reports_its_build_and_device() -> None:
    names = [c.name for c in backend_checks()]
    assert names[-2:] in (["torch build", "gpu"], ["torch build", "gpu 0"])
    assert all(c.ok for c in backend_checks())
