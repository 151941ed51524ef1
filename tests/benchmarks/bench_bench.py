"""`fewstep bench` against the same images made one at a time (issue 23), side by side in one run.

    .venv/bin/python -m tests.benchmarks.bench_bench [--prompts 6] [--seeds 2] [--modes ddim,lcm,...]

On the built-in pocket model, one torch thread, each side a fresh process (so that neither inherits
the other's imports, loaded engines or garbage), timed from start to exit:
- singles: one process that loads the models once, then makes each cell as `fewstep generate` does:
  its own one-mode, one-seed request (which encodes the prompt every time), its PNG and sidecar.
- bench: `fewstep bench` from an empty folder to its report: loading, every cell saved with its
  record, then the metrics, report.json, cells.csv and index.html.
The goal is bench / singles <= 1.0: the bench's savings (each prompt encoded once; each cell saved and
measured by its writer thread while the next one is made) pay for its report. The order alternates from
one repeat to the next; the median ratio over the repeats is the figure, printed with its range and the
load average (other work on the machine makes single runs noisy: quote the median of a quiet run).
Each run's CPU seconds (all threads, user and system) are printed too: steadier under load, but they
count the writer thread's seconds, which the wall clock overlaps with the engine's.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def make_singles(prompts: int, modes: list[str], seeds: int, folder: Path) -> None:
    """The singles side, in this process: one engine, then one generate per cell."""
    import torch

    from engine.cli.bench_prompts import pocket_prompts
    from engine.contract.request import ModeSettings
    from engine.outputs.bench_cells import cell_order, cell_request
    from engine.outputs.run_writer import write_image_files
    from engine.pocket.model import builtin_model_paths
    from engine.runtime.device import plan_device
    from engine.runtime.engine import Engine

    torch.set_num_threads(1)
    engine = Engine(builtin_model_paths(), plan_device(None, None, 1))
    context = engine.run_context()
    texts = pocket_prompts()[:prompts]
    folder.mkdir(parents=True)
    for cell in cell_order(prompts, modes, range(seeds)):
        prompt = texts[cell.prompt_index]
        request = cell_request(prompt.text, prompt.negative, ModeSettings(mode=cell.mode), cell.seed, None)
        result = engine.run(request).results[0]
        write_image_files(folder / f"{cell.id}.png", result, request, context)


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(command: list[str]) -> tuple[float, float, str]:
    """Wall-clock seconds, CPU seconds (all its threads, user and system) and stderr of one command."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "FEWSTEP_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, _children_cpu() - cpu, done.stderr


def report_seconds(stderr: str) -> float:
    """What the bench says its metrics and report took (its line "measured N cells and wrote ...")."""
    line = next(x for x in stderr.splitlines() if "wrote the report in" in x)
    return float(line.rsplit(" in ", 1)[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--modes", default="ddim,lcm,lcm-lora,lightning,lightning-lora")
    # Even, so that each side runs first as often: on a machine short of memory the first command of a
    # pair reads the libraries back from disk and is the slower one, whichever it is.
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--singles-into", type=Path, help=argparse.SUPPRESS)  # the singles' own process
    args = parser.parse_args()
    modes = args.modes.split(",")
    if args.singles_into is not None:
        make_singles(args.prompts, modes, args.seeds, args.singles_into)
        return
    cells = args.prompts * len(modes) * args.seeds
    print(
        f"pocket model, 1 torch thread: {args.prompts} prompts x {len(modes)} modes x {args.seeds} seeds = {cells} cells"
    )
    from engine.cli.bench_prompts import pocket_prompts

    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        prompts = Path(tmp) / "prompts.txt"
        prompts.write_text("".join(p.text + "\n" for p in pocket_prompts()[: args.prompts]), encoding="utf-8")
        for repeat in range(args.repeats):
            here = Path(tmp) / f"run{repeat}"  # a fresh folder each time: the same one would resume
            shared = [f"--prompts={args.prompts}", f"--seeds={args.seeds}", f"--modes={args.modes}"]
            single = [
                sys.executable,
                "-m",
                "tests.benchmarks.bench_bench",
                *shared,
                f"--singles-into={here / 'singles'}",
            ]
            bench = [
                sys.executable,
                "-m",
                "engine.cli",
                "bench",
                "--prompts",
                str(prompts),
                "--modes",
                args.modes,
                "--seeds",
                str(args.seeds),
                "--threads",
                "1",
                "--out",
                str(here / "bench"),
            ]
            first, second = (single, bench) if repeat % 2 else (bench, single)
            load = os.getloadavg()[0]
            a, b = timed(first), timed(second)
            (whole, whole_cpu, said), (singles, singles_cpu, _) = (b, a) if repeat % 2 else (a, b)
            report = report_seconds(said)
            ratios.append((whole / singles, (whole - report) / singles, whole_cpu / singles_cpu))
            print(
                f"  run {repeat + 1}: bench {whole:.2f} s (of which metrics and report {report:.2f} s),"
                f" singles {singles:.2f} s; ratio {whole / singles:.3f}, without the report"
                f" {(whole - report) / singles:.3f}; CPU seconds {whole_cpu:.2f} / {singles_cpu:.2f} ="
                f" {whole_cpu / singles_cpu:.3f} (load average {load:.2f} before it)"
            )
    totals = [r[0] for r in ratios]
    bare = [r[1] for r in ratios]
    cpu = [r[2] for r in ratios]
    print(
        f"bench / singles: median {statistics.median(totals):.3f} over {len(totals)} runs"
        f" (range {min(totals):.3f} to {max(totals):.3f}); without the report median"
        f" {statistics.median(bare):.3f} ({min(bare):.3f} to {max(bare):.3f}); goal <= 1.0"
    )
    # CPU seconds count the work, not the waiting for a core: steadier than the wall clock on a busy
    # machine, but blind to the writer thread's overlap (its seconds count, though they run beside).
    print(
        f"CPU seconds, bench / singles: median {statistics.median(cpu):.3f}"
        f" (range {min(cpu):.3f} to {max(cpu):.3f})"
    )
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
