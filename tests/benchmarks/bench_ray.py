"""`fewstep bench --ray` with one actor against the local `fewstep bench`, the same cells, side by side
in one run (issue 24).

    .venv/bin/python -m tests.benchmarks.bench_ray [--prompts 6] [--seeds 2] [--modes ddim,lcm,...]

On the built-in pocket model, one torch thread on both sides. A local Ray of one CPU is started first,
as a cluster is already running for the user; each side then runs the whole command as a user does, a
fresh process from an empty folder to its report:
- local: `python -m engine.cli bench ...`, which imports torch and diffusers and loads the models;
- ray: the same with `--ray auto --ray-actors 1` and RAY_ADDRESS set to that cluster: the driver
  imports Ray and writes; its actor (a fresh process) imports torch and diffusers, loads the models
  and returns each image to the driver's writer.
The goal is ray / local <= 1.10: what one actor costs (its start, a round trip and a pickled image a
cell) is small against the cells, so that N GPUs come near N times one. The order alternates, so that
neither side always runs on a warm cache; the median ratio over the repeats is the figure.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("FEWSTEP_THREADS", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local test cluster: no token under ~/.ray

import ray

from engine.cli.bench_prompts import pocket_prompts

ROOT = Path(__file__).resolve().parents[2]


def bench(prompts: int, modes: list[str], seeds: int, folder: Path, *more: str) -> float:
    folder.mkdir(parents=True)
    lines = "\n".join(p.text for p in pocket_prompts()[:prompts])
    (folder / "prompts.txt").write_text(lines + "\n", encoding="utf-8")
    command = [sys.executable, "-m", "engine.cli", "bench", "--prompts", str(folder / "prompts.txt")]
    command += ["--modes", ",".join(modes), "--seeds", str(seeds), "--threads", "1"]
    command += ["--out", str(folder / "out"), *more]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode:
        raise SystemExit(f"fewstep bench {' '.join(more)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.perf_counter() - started


def same_images(a: Path, b: Path) -> bool:
    def images(folder: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in (folder / "out" / "cells").glob("*.png")}

    return images(a) == images(b)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--modes", default="ddim,lcm,lcm-lora,lightning,lightning-lora")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    modes = args.modes.split(",")
    cells = args.prompts * len(modes) * args.seeds
    print(
        f"pocket model, 1 torch thread: {args.prompts} prompts x {len(modes)} modes x {args.seeds} seeds = {cells} cells"
    )
    started = time.perf_counter()
    ray.init(num_cpus=1, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    print(f"local Ray of 1 CPU started in {time.perf_counter() - started:.1f} s (not counted)")
    ratios = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for repeat in range(args.repeats):
                here = Path(tmp) / f"run{repeat}"  # fresh folders each time: the same one would resume
                ray_flags = ("--ray", "auto", "--ray-actors", "1")
                if repeat % 2:
                    on_ray = bench(args.prompts, modes, args.seeds, here / "ray", *ray_flags)
                    local = bench(args.prompts, modes, args.seeds, here / "local")
                else:
                    local = bench(args.prompts, modes, args.seeds, here / "local")
                    on_ray = bench(args.prompts, modes, args.seeds, here / "ray", *ray_flags)
                same = same_images(here / "local", here / "ray")
                ratios.append(on_ray / local)
                print(
                    f"  run {repeat + 1}: ray {on_ray:.2f} s, local {local:.2f} s, ratio {on_ray / local:.3f};"
                    f" images {'identical' if same else 'DIFFERENT'}"
                )
    finally:
        ray.shutdown()
    print(
        f"ray (1 actor) / local: median {statistics.median(ratios):.3f} over {len(ratios)} runs"
        f" (range {min(ratios):.3f} to {max(ratios):.3f}); goal <= 1.10"
    )
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
