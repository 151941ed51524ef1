"""`fewstep bench` against the same images made one at a time (issue 23), side by side in one run.

    .venv/bin/python -m tests.benchmarks.bench_bench [--prompts 6] [--seeds 2] [--modes ddim,lcm,...]

On the built-in pocket model, one torch thread. Both sides load the models once:
- singles: one engine, then each cell as `fewstep generate` makes it: its own one-mode, one-seed
  request (which encodes the prompt every time), and its PNG and sidecar written; the model load
  counted once, as if every generate shared one process.
- bench: `fewstep bench` in this process, from an empty folder to its report: loading, every cell
  saved with its record, then the metrics, report.json, cells.csv and index.html.
The goal is bench / singles <= 1.0: the bench's saving (each prompt encoded once, modes switched
once per block) pays for its writing and its report. The order alternates, so that neither side
always runs on a warm cache.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("FEWSTEP_THREADS", "1")

import torch

from engine.cli import main as fewstep
from engine.cli.bench_prompts import pocket_prompts
from engine.contract.request import ModeSettings
from engine.outputs.bench_cells import cell_order, cell_request
from engine.outputs.run_writer import write_image_files
from engine.pocket.model import builtin_model_paths
from engine.runtime.device import plan_device
from engine.runtime.engine import Engine


def singles(prompts: int, modes: list[str], seeds: int, folder: Path) -> float:
    started = time.perf_counter()
    engine = Engine(builtin_model_paths(), plan_device(None, None, 1))
    context = engine.run_context()
    texts = pocket_prompts()[:prompts]
    folder.mkdir()
    for cell in cell_order(prompts, modes, range(seeds)):
        prompt = texts[cell.prompt_index]
        request = cell_request(prompt.text, prompt.negative, ModeSettings(mode=cell.mode), cell.seed, None)
        result = engine.run(request).results[0]
        write_image_files(folder / f"{cell.id}.png", result, request, context)
    return time.perf_counter() - started


def bench(prompts: int, modes: list[str], seeds: int, folder: Path) -> float:
    lines = "\n".join(p.text for p in pocket_prompts()[:prompts])
    (folder / "prompts.txt").write_text(lines + "\n", encoding="utf-8")
    command = ["bench", "--prompts", str(folder / "prompts.txt"), "--modes", ",".join(modes)]
    command += ["--seeds", str(seeds), "--threads", "1", "--out", str(folder / "out")]
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = fewstep(command)
    if code:
        raise SystemExit(f"fewstep bench failed with exit code {code}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--modes", default="ddim,lcm,lcm-lora,lightning,lightning-lora")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    modes = args.modes.split(",")
    cells = args.prompts * len(modes) * args.seeds
    print(
        f"pocket model, 1 torch thread: {args.prompts} prompts x {len(modes)} modes x {args.seeds} seeds = {cells} cells"
    )
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            here = Path(tmp) / f"run{repeat}"  # a fresh folder each time: the same one would resume
            here.mkdir()
            if repeat % 2:
                single = singles(args.prompts, modes, args.seeds, here / "singles")
                whole = bench(args.prompts, modes, args.seeds, here)
            else:
                whole = bench(args.prompts, modes, args.seeds, here)
                single = singles(args.prompts, modes, args.seeds, here / "singles")
            ratios.append(whole / single)
            print(
                f"  run {repeat + 1}: bench {whole:.2f} s, singles {single:.2f} s, ratio {whole / single:.3f}"
            )
    print(f"bench / singles: {min(ratios):.3f} (best), {max(ratios):.3f} (worst); goal <= 1.0")


if __name__ == "__main__":
    main()
