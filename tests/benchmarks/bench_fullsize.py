"""Full size on a CPU: the five modes of a random-weight SDXL at the real sizes, loaded in bf16.

    nice -n 10 .venv/bin/python tests/benchmarks/bench_fullsize.py [--cache /work/fullsize-cache]

Needs about 15 GB of disk for the files (written once into the cache, in the real layouts: the base
as an original single file, the LCM UNet folder, a Lightning 4-step UNet file and both LoRAs at rank
64; see devtools/fullsize.py) and about 20 GB of free memory for the five modes in bf16. Prints:

- the load seconds per part, and the longest gap of a 5 ms GUI-thread timer during each: the engine
  loads on the application's own worker thread (gui.state.worker.EngineWorker) while a
  QApplication runs offscreen with the status-bar widget following the load (goal < 100 ms);
- the bytes held against the sum of the distinct weights in the files, and the bytes five separate
  pipelines would hold;
- the peak RSS, under the planner's CPU plan: with the RAM available at the start, the full LCM and
  Lightning UNets wait on disk where they would not fit beside the fused slot, each read by its load
  route when its mode runs (which parts waited and what each read cost are printed);
- one small comparison's seconds per step (64x64, 2 steps per mode);
- issue 22: each LoRA mode's step over the base UNet's step (same size and batch, CFG off for both),
  fused in the slot or unfused as --lora-route says, and the seconds and bytes of one fuse.
  `--routes` runs the whole benchmark twice, in two processes (--lora-route fused, then unfused),
  and prints their peak RSS side by side.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TICK_MS = 5
GAP_GOAL_MS = 100.0
MODES = ("ddim", "lcm", "lcm-lora", "lightning", "lightning-lora")
BF16 = 2  # bytes per weight


def header_elements(path: Path) -> int:
    """Float elements a safetensors file holds, from its header alone."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    total = 0
    for key, info in header.items():
        if key == "__metadata__" or info["dtype"] not in ("F16", "BF16", "F32"):
            continue
        if key.endswith(".alpha") or key.endswith("logit_scale"):
            continue  # scalars the loaders fold into the scale or drop
        count = 1
        for dim in info["shape"]:
            count *= dim
        total += count
    return total


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def distinct_bytes(modules: Sequence[Any]) -> int:
    """Bytes of the distinct storages behind these modules' parameters and buffers."""
    seen: dict[int, int] = {}
    for module in modules:
        for tensor in (*module.parameters(), *module.buffers()):
            storage = tensor.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache", type=Path, default=Path("/work/fullsize-cache"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=64, help="image side of the small comparison")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="the same code on the tiny sizes (a check of it)")
    parser.add_argument("--lora-route", choices=("auto", "fused", "unfused"), default="auto")
    parser.add_argument(
        "--routes", action="store_true", help="run fused, then unfused, each in a process of its own"
    )
    args = parser.parse_args(argv)
    if args.routes:
        return both_routes(argv or sys.argv[1:])
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # Threads that wait for work sleep instead of spinning: on a shared 2-core machine spinning
    # OpenMP threads starve the GUI thread and every other process (50 to 500x slower steps).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ["FEWSTEP_THREADS"] = str(args.threads)  # what the application's loader reads
    os.environ["HF_HUB_OFFLINE"] = "1"
    sys.path.insert(0, str(REPO))

    from devtools.fullsize import write_fullsize_set

    start = time.perf_counter()
    config_dir = base_config = None
    if args.tiny:
        from devtools.original_layout import write_single_file_config
        from devtools.tiny_model import build_tiny_model_set

        tiny = build_tiny_model_set(args.cache / "tiny")
        config_dir, base_config = tiny.base, args.cache / "tiny-config"
        if not base_config.exists():
            write_single_file_config(tiny, base_config)
    name = "tiny-set" if args.tiny else "set"
    files = write_fullsize_set(
        args.cache / name, config_dir=config_dir, say=lambda m: print(f"  {m}", flush=True)
    )
    on_disk = sum(p.stat().st_size for p in files.files())
    print(f"full-size set: {on_disk / 1e9:.2f} GB in {files.root} ({time.perf_counter() - start:.0f} s)")
    print_plans(files, base_config)
    engine, parts, gaps = load_in_worker(files, base_config, args.lora_route)
    print("\n| part | load s | longest GUI-thread gap ms |\n|---|---|---|")
    for name, seconds, gap in parts:
        print(f"| {name} | {seconds:.1f} | {gap:.0f} |")
    longest = max(gaps) if gaps else 0.0
    verdict = "met" if longest < GAP_GOAL_MS else "NOT met"
    print(f"longest gap of the {TICK_MS} ms GUI timer while the models loaded: {longest:.0f} ms "
          f"(goal < {GAP_GOAL_MS:.0f} ms: {verdict}); ticks {len(gaps)}")  # fmt: skip
    import torch

    torch.set_num_threads(args.threads)  # a per-thread setting: the comparison runs on this thread
    memory(engine, files)
    compare(engine, args.size, args.steps)
    lora_steps(engine, args.size, args.steps)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"peak RSS of the process: {gib(peak)} (LoRA route {args.lora_route})")
    print(f"PEAK_RSS_BYTES {peak}")
    return 0


def both_routes(argv: Sequence[str]) -> int:
    """The benchmark with the slot, then without it (today's route), each in its own process: the
    peak RSS of a five-mode comparison under each, side by side."""
    import subprocess

    rest = [a for a in argv if a != "--routes"]
    peaks: dict[str, int] = {}
    for route in ("fused", "unfused"):
        print(f"\n===== --lora-route {route} =====", flush=True)
        done = subprocess.run(
            [sys.executable, __file__, *rest, "--lora-route", route],
            capture_output=True,
            text=True,
            check=False,
        )
        print(done.stdout + done.stderr, flush=True)
        found = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("PEAK_RSS_BYTES")]
        if found:
            peaks[route] = int(found[-1])
    if len(peaks) == 2:
        print(f"peak RSS, fused {gib(peaks['fused'])} against unfused (today's) {gib(peaks['unfused'])}:"
              f" {peaks['fused'] / peaks['unfused']:.2f}x; goal below ComfyUI's 22.3 GiB")  # fmt: skip
    return 0


def lora_steps(engine: Any, size: int, steps: int) -> None:
    """Each LoRA mode's step over the base UNet's, same size and batch, CFG off for both (the base
    mode at guidance 1), alternating; then what the comparison's fuses cost."""
    from engine.contract.request import GenerationRequest, ModeSettings

    def step(mode: str) -> float:
        request = GenerationRequest(
            prompt="a lighthouse on a cliff at dusk",
            width=size,
            height=size,
            modes=(ModeSettings(mode=mode, steps=steps, guidance=1.0),),
        )
        per_step: tuple[float, ...] = engine.run(request).results[0].timings.per_step
        return statistics.median(per_step)

    fuses = []
    for mode in ("lcm-lora", "lightning-lora"):
        step(mode)  # the fuse, if the slot holds the other LoRA
        fuses += engine.placement_report()["fuses"]
        base, lora = [], []
        for _ in range(2):
            base.append(step("ddim"))
            lora.append(step(mode))
        ratio = statistics.median(lora) / statistics.median(base)
        route = engine.lora_route_of(mode)
        print(f"{mode} ({route}) step over the base UNet's step, CFG off, {size}x{size}: {ratio:.3f}x"
              f" ({statistics.median(lora):.2f} s against {statistics.median(base):.2f} s); goal <= 1.03x")  # fmt: skip
    for fuse in fuses:
        print(f"one fuse ({fuse['mode']}): {fuse['seconds']:.2f} s, {gib(fuse['bytes'])} of slot weights written;"
              f" goal below ComfyUI's switch (15 to 21 s)")  # fmt: skip


def print_plans(files: Any, base_config: Path | None) -> None:
    """`fewstep plan` for these files (headers only, no weights) at 8, 12 and 24 GiB in fp16."""
    import subprocess

    command = [sys.executable, "-m", "engine.cli", "plan", "--base", str(files.base)]
    command += ["--lcm-unet", str(files.lcm_unet), "--lcm-lora", str(files.lcm_lora)]
    command += ["--lightning-unet", str(files.lightning_unet), "--lightning-lora", str(files.lightning_lora)]
    command += ["--base-config", str(base_config)] if base_config is not None else []
    for gib in (8, 12, 24):
        done = subprocess.run(
            [*command, "--vram", str(gib)], cwd=REPO, capture_output=True, text=True, check=False
        )
        print(f"\n$ fewstep plan ... --vram {gib}\n{(done.stdout + done.stderr).strip()}")
    # The CPU's plan, with the RAM available now (the engine's plan below measures it again at its start).
    done = subprocess.run(
        [*command, "--dtype", "bf16", "--size", "64x64"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    print(
        f"\n$ fewstep plan ... --dtype bf16 --size 64x64 (no CUDA: RAM)\n{(done.stdout + done.stderr).strip()}"
    )


def load_in_worker(
    files: Any, base_config: Path | None, lora_route: str = "auto"
) -> tuple[Any, list[tuple[str, float, float]], list[float]]:
    """Load the five modes on the application's engine thread while the GUI thread ticks."""
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from engine.contract.residency import Residency
    from engine.files.model_paths import ModelPaths
    from gui.state.jobs import EngineConfig, EventKind, WorkerEvent
    from gui.state.worker import EngineWorker, LoadedEngine, load_engine
    from gui.widgets.engine_status import EngineStatus

    app = QApplication.instance() or QApplication([])
    assert app is not None
    status = EngineStatus()
    status.show()
    clock = QElapsedTimer()
    clock.start()
    ticks: list[float] = []  # ms since start, in the GUI thread
    marks: list[tuple[float, str]] = []  # (ms, status text), in the worker thread
    loaded: list[Any] = []

    def factory(config: EngineConfig, say: Any) -> LoadedEngine:
        """The application's own loader, with the status messages timed as they pass."""

        def tell(message: str) -> None:
            marks.append((clock.nsecsElapsed() / 1e6, message))
            say(message)

        result = load_engine(config, tell)
        loaded.append(result.engine)
        return result

    paths = ModelPaths(
        base=files.base,
        lcm_unet=files.lcm_unet,
        lcm_lora=files.lcm_lora,
        lightning_unet=files.lightning_unet,
        lightning_lora=files.lightning_lora,
        base_config=base_config,
    )
    from engine.contract.placement import LoraRoute

    # The planner's CPU plan (residency auto): with the RAM available at the start, the full UNets
    # wait on disk where all of them and the fused slot would not fit.
    config = EngineConfig(
        paths=paths,
        device="cpu",
        residency=Residency.AUTO,
        dtype="bfloat16",
        lora_route=LoraRoute(lora_route),
    )
    worker = EngineWorker(config, factory=factory)
    seen_texts: list[str] = []
    loop = QEventLoop()
    failure: list[str] = []

    def on_event(event: WorkerEvent) -> None:
        if event.kind is EventKind.STATUS:
            status.show_step(event.message)
            seen_texts.append(status.engine_label.text())
        elif event.kind is EventKind.ENGINE_READY:
            loop.quit()
        elif event.kind is EventKind.ENGINE_FAILED:
            failure.append(event.message)
            loop.quit()

    worker.reported.connect(on_event)

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(lambda: ticks.append(clock.nsecsElapsed() / 1e6))
    timer.start()
    worker.start()
    loop.exec()
    timer.stop()
    end = clock.nsecsElapsed() / 1e6
    if failure:
        raise SystemExit(f"loading failed: {failure[0]}")
    print("status bar while loading: " + " | ".join(dict.fromkeys(seen_texts)))
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    # One row per part: its progress lines ("...: 40%") count towards it.
    totals: dict[str, list[float]] = {}
    bounds = [*marks, (end, "end")]
    for (t0, message), (t1, _next) in itertools.pairwise(bounds):
        inside = [b - a for a, b in itertools.pairwise(ticks) if t0 <= b <= t1 and a >= t0 - 50]
        row = totals.setdefault(message.split(": ")[0], [0.0, 0.0])
        row[0] += (t1 - t0) / 1000
        row[1] = max(row[1], *inside, 0.0)
    parts = [(name, seconds, gap) for name, (seconds, gap) in totals.items()]
    worker.stop()
    return loaded[0], parts, gaps


def memory(engine: Any, files: Any) -> None:
    from engine.contract.modes import ModelRole
    from engine.contract.placement import Part
    from engine.runtime.memory import module_bytes

    base = engine.base
    unets = [p.unet for p in engine.pipes.values() if p.unet is not None]
    modules = [base.text_encoder, base.text_encoder_2, base.vae, *unets]
    held = distinct_bytes(modules)
    weights = sum(
        header_elements(p)
        for p in (
            files.base,
            files.lcm_unet / "diffusion_pytorch_model.fp16.safetensors",
            files.lightning_unet,
            files.lcm_lora,
            files.lightning_lora,
        )
    )
    shared = sum(module_bytes(m) for m in (base.text_encoder, base.text_encoder_2, base.vae))
    base_unet = module_bytes(base.unet)

    def lora_bytes(role: ModelRole) -> int:
        unet = engine.pipes[role].unet
        return sum(p.numel() * p.element_size() for n, p in unet.named_parameters() if "lora_" in n)

    loras = lora_bytes(ModelRole.LCM_LORA) + lora_bytes(ModelRole.LIGHTNING_LORA)
    # A full UNet that waits on disk is counted at its size in the plan (from its file's header).
    parts = engine.placer.parts
    full = parts[Part.LCM_UNET].size + parts[Part.LIGHTNING_UNET].size
    separate = 5 * shared + 3 * base_unet + full + loras
    print(f"bytes held by the five modes (distinct storages, the UNets on disk left out): {gib(held)}")
    print(f"sum of the distinct weights in the files, in bf16:  {gib(weights * BF16)} "
          f"(held / sum = {held / (weights * BF16):.4f})")  # fmt: skip
    print(f"five separate pipelines would hold:                 {gib(separate)} ({separate / held:.2f}x)")


def compare(engine: Any, size: int, steps: int) -> None:
    from engine.contract.request import GenerationRequest, ModeSettings

    request = GenerationRequest(
        prompt="a lighthouse on a cliff at dusk",
        width=size,
        height=size,
        modes=tuple(ModeSettings(mode=m, steps=steps) for m in MODES),
    )
    start = time.perf_counter()
    result = engine.run(request)
    print(f"\nsmall comparison, {size}x{size}, {steps} steps per mode, bf16, "
          f"{time.perf_counter() - start:.1f} s in all:")  # fmt: skip
    print("| mode | s per step | text s | decode s |\n|---|---|---|---|")
    for r in result.results:
        t = r.timings
        print(f"| {r.mode} | {statistics.median(t.per_step):.2f} | {t.text_encoding:.2f} | {t.decode:.2f} |")
    disk_waits(engine)


def disk_waits(engine: Any) -> None:
    """Which parts waited on disk under the CPU plan, and what each read (and drop) of the last
    comparison cost."""
    report = engine.placement_report()
    waited = [name for name, part in report["parts"].items() if part["rests_on"] == "disk"]
    print(f"\nplan: {gib(report['free_bytes'] or 0)} of RAM available at the start, measures: "
          f"{'; '.join(report['measure_texts']) or 'none'}; LoRA route {report['lora_route']}")  # fmt: skip
    print(f"parts that waited on disk: {', '.join(waited) or 'none'}")
    for move in report["moves"]:
        if move["direction"] in ("read", "drop"):
            print(f"  {move['direction']} {move['part']} at the switch to {move['mode']}: "
                  f"{move['seconds']:.2f} s, {gib(move['bytes'])}")  # fmt: skip
    print(f"reads in the comparison: {gib(report['read_bytes'])} in {report['read_seconds']:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
