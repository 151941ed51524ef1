"""The GPU benchmark's code, run on the CPU on the tiny model, so that it is ready when a GPU is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine.contract.modes import DEFAULT_COMPARISON
from tests.conftest import REPO_ROOT


def test_bench_gpu_tiny_runs_every_part(tmp_path: Path) -> None:
    out = tmp_path / "bench_gpu.md"
    command = [
        sys.executable,
        "tests/benchmarks/bench_gpu.py",
        "--tiny",
        "--scratch",
        str(tmp_path),
        "--out",
        str(out),
    ]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert "failed" not in figures, done.stdout
    assert set(figures["end_to_end_fp16"]) == set(DEFAULT_COMPARISON)
    assert all(seconds > 0 for seconds in figures["end_to_end_fp16"].values())
    # Half and full precision give close images of the same seed, not identical ones.
    assert all(20.0 < db < 120.0 for db in figures["psnr_fp16_fp32"].values()), figures["psnr_fp16_fp32"]
    assert {"peak_all", "peak_one", "peak_planned for 8 GiB"} <= set(figures)
    assert "lightning_SDPA + channels_last + torch.compile" in figures
    printed = out.read_text(encoding="utf-8")
    assert "HEADLINE: Lightning 4 steps end to end" in printed
    assert printed == done.stdout
