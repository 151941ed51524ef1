"""Memory and mode-switch time under each residency policy (issue 4).

    .venv/bin/python -m tests.benchmarks.bench_residency [--device cuda]

On a CPU-only machine the device is the CPU's RAM, so the ONE policy moves nothing: the figures
then show the bookkeeping cost alone. On a GPU they show the price of each UNet copy.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from devtools.tiny_model import build_tiny_model_set
from engine.contract.residency import Residency
from engine.runtime.device import plan_device
from engine.runtime.engine import Engine
from tests.benchmarks.bench_engine import MEMORY_SPEC, paths_of

CYCLE = ("ddim", "lcm", "lightning", "lcm-lora", "lcm", "lightning-lora", "lightning", "ddim")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    plan = plan_device(args.device, None, 1)
    with tempfile.TemporaryDirectory() as tmp:
        models = build_tiny_model_set(Path(tmp) / "wider", spec=MEMORY_SPEC)
        print(f"device {plan.describe()}; UNet {MEMORY_SPEC.unet_channels} fixtures")
        for policy in (Residency.ALL, Residency.ONE):
            engine = Engine(paths_of(models), plan, residency=policy)
            for mode in CYCLE:
                engine.switch_to(mode)  # schedulers built once
            full_switches: list[float] = []
            other_switches: list[float] = []
            for _ in range(args.repeats):
                for mode in CYCLE:
                    seconds = engine.switch_to(mode)
                    (full_switches if mode in ("lcm", "lightning") else other_switches).append(seconds)
            if plan.device.type == "cuda":
                torch.cuda.synchronize()
            print(f"{policy:>3}: {engine.memory_report().summary()}")
            print(
                f"     switch into a full distilled UNet: median {statistics.median(full_switches) * 1e3:.2f} ms,"
                f" worst {max(full_switches) * 1e3:.2f} ms; other switches median"
                f" {statistics.median(other_switches) * 1e3:.3f} ms"
            )
            del engine


if __name__ == "__main__":
    main()
