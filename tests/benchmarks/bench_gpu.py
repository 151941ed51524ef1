"""The GPU benchmark: full-size SDXL, five modes resident, 1024x1024 end to end in fp16, one command.

On a GPU machine with torch, transformers, peft and accelerate but no diffusers (diffusers is pure
Python: its wheel travels with the working tree):

    # here, once: the wheel, without its dependencies (the GPU machine has them, or add their wheels)
    pip download diffusers==0.42.1 --no-deps -d wheels/
    # there, from the repository root, within about 8 minutes on an H100/H200:
    python tests/benchmarks/bench_gpu.py --diffusers-wheel wheels/diffusers-0.42.1-py3-none-any.whl \\
        --out "$OUT/bench_gpu.md"

`--diffusers-wheel` takes a wheel (unpacked into a temporary folder) or a folder, and may be given
more than once (e.g. importlib_metadata's wheel where it is missing). Nothing is downloaded there:
the random weights are made on the GPU at SDXL's real sizes and written once, in the real layouts,
to a local scratch folder (`--scratch`, about 18 GB), so that the Engine loads them by the route an
artist's files take. Then, in this order, each part reported as soon as it is measured:

1. each mode end to end (text encoding, every step, decode) at 1024x1024 in fp16 with all five
   modes resident; the headline: SDXL-Lightning 4 steps against DDIM 30 (goal <= 0.2 s);
2. peak VRAM of a five-mode comparison with every UNet resident (placement `all`);
3. Lightning with SDPA (diffusers' default attention) against SDPA + channels_last UNet;
4. fp16 against fp32 images of every mode, same seed, by PSNR;
5. peak VRAM with one distilled UNet on the card at a time (placement `one`);
6. Lightning with SDPA + channels_last + torch.compile (compile time shown apart);
7. peak VRAM of the placement the planner makes for an 8 GiB card (`vram=8`: it must stay below 8).

`--tiny` runs the same code on the CPU on the tiny model set at 64x64 with few steps (cheap; CI runs
it through tests/test_bench_gpu.py so that it cannot rot). Only engine/, devtools/ and the ML stack
are imported: the GPU machine has no PySide6.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PROMPT = "a lighthouse on a cliff at dusk, oil painting"
MODES = ("ddim", "lcm", "lcm-lora", "lightning", "lightning-lora")
HEADLINE_GOAL_S = 0.2


@dataclass
class Settings:
    tiny: bool
    size: int
    ddim_steps: int
    repeats: int
    compile_backend: str
    skip: frozenset[str]
    scratch: Path
    out: Path | None


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def say(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)


def add_wheels(paths: Sequence[Path], scratch: Path) -> None:
    """Put pure-Python wheels or folders first on sys.path (a wheel is unpacked first: diffusers
    reads files beside its modules)."""
    for path in paths:
        folder = path
        if path.suffix == ".whl":
            folder = scratch / "wheels" / path.stem
            if not folder.is_dir():
                with zipfile.ZipFile(path) as wheel:
                    wheel.extractall(folder)
        sys.path.insert(0, str(folder))


def parse(argv: Sequence[str] | None) -> tuple[Settings, list[Path]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="the same code on the CPU on the tiny model")
    parser.add_argument("--diffusers-wheel", type=Path, action="append", default=[], metavar="PATH")
    parser.add_argument(
        "--scratch", type=Path, help="where the random weights are written (default: a temp dir)"
    )
    parser.add_argument(
        "--out", type=Path, help="also write the table (Markdown) and the figures (JSON) here"
    )
    parser.add_argument("--repeats", type=int, help="timed runs per mode (median; default 3, tiny 1)")
    parser.add_argument("--compile-backend", help="torch.compile backend (default inductor; tiny: eager)")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["fp32", "one", "compile", "plan8"],
        help="leave out a part",
    )
    args = parser.parse_args(argv)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="fewstep-bench-gpu-"))
    settings = Settings(
        tiny=args.tiny,
        size=64 if args.tiny else 1024,
        ddim_steps=6 if args.tiny else 30,
        repeats=args.repeats or (1 if args.tiny else 3),
        compile_backend=args.compile_backend or ("eager" if args.tiny else "inductor"),
        skip=frozenset(args.skip),
        scratch=scratch,
        out=args.out,
    )
    return settings, list(args.diffusers_wheel)


def main(argv: Sequence[str] | None = None) -> int:
    settings, wheels = parse(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    if settings.tiny:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.path.insert(0, str(REPO))
    add_wheels(wheels, settings.scratch)
    report = Report()
    bench = Bench(settings, report)
    try:
        bench.run_all()
    finally:
        if settings.out is not None:
            settings.out.parent.mkdir(parents=True, exist_ok=True)
            settings.out.write_text("\n".join(report.lines) + "\n", encoding="utf-8")
            settings.out.with_suffix(".json").write_text(
                json.dumps(report.figures, indent=2), encoding="utf-8"
            )
    return 1 if report.figures.get("failed") else 0


def psnr(a: Any, b: Any) -> float:
    import numpy as np

    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


class Bench:
    def __init__(self, settings: Settings, report: Report) -> None:
        import torch

        self.torch = torch
        self.s = settings
        self.r = report
        self.device = torch.device("cpu" if settings.tiny else "cuda")
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit("bench_gpu: no CUDA device here; use --tiny to run the same code on the CPU")
        if settings.tiny:
            torch.set_num_threads(1)
        self.images16: dict[str, Any] = {}

    # --- helpers --------------------------------------------------------------------------------

    def sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def engine(self, dtype: Any, residency: str, vram: float | None = None) -> Any:
        from engine.contract.residency import Residency
        from engine.runtime.device import DevicePlan
        from engine.runtime.engine import Engine

        threads = 1 if self.s.tiny else self.torch.get_num_threads()
        start = time.perf_counter()
        plan = DevicePlan(self.device, dtype, threads)
        engine = Engine(self.paths, plan, residency=Residency(residency), vram=vram)
        self.sync()
        self.r.say(f"loaded five modes in {str(dtype).removeprefix('torch.')} (placement {residency}) "
                   f"in {time.perf_counter() - start:.1f} s")  # fmt: skip
        return engine

    def request(self, modes: Sequence[str], steps: int | None = None) -> Any:
        from engine.contract.request import GenerationRequest, ModeSettings

        def settings(mode: str) -> Any:
            wanted = steps or (self.s.ddim_steps if mode == "ddim" else None)
            return ModeSettings(mode=mode, steps=wanted)

        size = self.s.size
        return GenerationRequest(
            prompt=PROMPT, seeds=(0,), width=size, height=size, modes=tuple(settings(m) for m in modes)
        )

    def end_to_end(self, engine: Any, mode: str, repeats: int | None = None) -> tuple[float, Any]:
        """Median seconds of one mode alone (its own text encoding, steps and decode), and a result."""
        times, result = [], None
        for _ in range(repeats or self.s.repeats):
            self.sync()
            start = time.perf_counter()
            result = engine.run(self.request([mode])).results[0]
            self.sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times), result

    def reset_peak(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.reset_peak_memory_stats()

    def peak(self) -> str:
        if self.device.type == "cuda":
            return f"{self.torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
        import resource

        return f"n/a on the CPU (process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB)"

    def free(self) -> None:
        """Give back what an engine that went out of scope held (the next one loads beside nothing)."""
        gc.collect()
        if self.device.type == "cuda":
            self.torch.cuda.empty_cache()

    def part(self, name: str, work: Callable[[], None]) -> None:
        """One part of the benchmark; a failure is reported and the next part still runs."""
        try:
            work()
        except Exception as exc:  # a one-shot GPU run must report what it could
            self.r.say(
                f"{name}: FAILED ({type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''})"
            )
            self.r.figures.setdefault("failed", []).append(name)

    # --- the run --------------------------------------------------------------------------------

    def run_all(self) -> None:
        torch = self.torch
        import diffusers

        from engine.runtime.libraries import quiet_diffusers

        quiet_diffusers()
        what = (
            torch.cuda.get_device_name()
            if self.device.type == "cuda"
            else f"CPU ({platform.processor() or platform.machine()})"
        )
        self.r.say(f"# bench_gpu{' --tiny' if self.s.tiny else ''}: {what}")
        self.r.say(f"torch {torch.__version__} (CUDA {torch.version.cuda}), diffusers {diffusers.__version__} "
                   f"(from {Path(diffusers.__file__).parent.parent}), "
                   f"Python {platform.python_version()}, {self.s.size}x{self.s.size}, DDIM {self.s.ddim_steps} steps")  # fmt: skip
        self.r.figures.update(device=what, torch=torch.__version__, size=self.s.size)
        self.prepare_files()
        self.resident_all()
        self.free()
        if "fp32" not in self.s.skip:
            self.part("fp32 PSNR", self.fp32_psnr)
            self.free()
        if "one" not in self.s.skip:
            self.part("placement one", self.placement_one)
            self.free()
        if "plan8" not in self.s.skip:
            self.part("placement planned for 8 GiB", self.placement_planned_8)

    def placement_planned_8(self) -> None:
        """The planner's placement for an 8 GiB card (what waits in RAM, tiled decode), measured."""
        engine = self.engine(self.torch.float16, "auto", vram=8.0)
        self.placement_peak(engine, "planned for 8 GiB")

    def resident_all(self) -> None:
        engine = self.engine(self.torch.float16, "all")
        self.part("per-mode", lambda: self.per_mode(engine))
        self.part("placement all", lambda: self.placement_peak(engine, "all"))
        name = "SDPA + channels_last UNet"
        self.part("channels_last", lambda: self.variant(engine, name, compile_it=False))

    def placement_one(self) -> None:
        engine = self.engine(self.torch.float16, "one")
        self.placement_peak(engine, "one")
        if "compile" not in self.s.skip:
            name = "SDPA + channels_last + torch.compile"
            self.part("compile", lambda: self.variant(engine, name, compile_it=True))

    def prepare_files(self) -> None:
        from devtools.fullsize import write_fullsize_set
        from engine.files.model_paths import ModelPaths

        start = time.perf_counter()
        config_dir = None
        base_config = None
        if self.s.tiny:
            from devtools.original_layout import write_single_file_config
            from devtools.tiny_model import build_tiny_model_set

            tiny = build_tiny_model_set(self.s.scratch / "tiny")
            config_dir = tiny.base
            base_config = self.s.scratch / "tiny-config"
            if not base_config.exists():
                write_single_file_config(tiny, base_config)
        files = write_fullsize_set(
            self.s.scratch / ("tiny-set" if self.s.tiny else "fullsize-set"),
            device=str(self.device),
            config_dir=config_dir,
        )
        size = sum(p.stat().st_size for p in files.files())
        self.r.say(f"random weights made on {self.device.type} and written in the real layouts: "
                   f"{size / 1e9:.2f} GB in {time.perf_counter() - start:.1f} s")  # fmt: skip
        self.paths = ModelPaths(
            base=files.base,
            lcm_unet=files.lcm_unet,
            lcm_lora=files.lcm_lora,
            lightning_unet=files.lightning_unet,
            lightning_lora=files.lightning_lora,
            base_config=base_config,
        )

    def per_mode(self, engine: Any) -> None:
        warm = time.perf_counter()
        engine.run(self.request(MODES, steps=2))  # kernels chosen, caches warm
        self.r.say(f"warm-up (five modes, 2 steps): {time.perf_counter() - warm:.1f} s")
        self.r.say()
        self.r.say("| mode | steps | end to end s | text s | per step s | decode s | switch s |")
        self.r.say("|---|---|---|---|---|---|---|")
        totals: dict[str, float] = {}
        for mode in MODES:
            seconds, result = self.end_to_end(engine, mode)
            t = result.timings
            totals[mode] = seconds
            self.images16[mode] = result.image
            per_step = statistics.median(t.per_step)
            self.r.say(f"| {mode} | {result.steps} | {seconds:.3f} | {t.text_encoding:.3f} | {per_step:.4f} | "
                       f"{t.decode:.3f} | {t.switch:.4f} |")  # fmt: skip
        self.r.figures["end_to_end_fp16"] = totals
        light, ddim = totals["lightning"], totals["ddim"]
        verdict = "met" if light <= HEADLINE_GOAL_S else "not met"
        self.r.say()
        self.r.say(f"HEADLINE: Lightning 4 steps end to end {light:.3f} s vs DDIM {self.s.ddim_steps} "
                   f"{ddim:.3f} s: {ddim / light:.1f}x faster (goal <= {HEADLINE_GOAL_S} s at 1024x1024 "
                   f"on an H100/H200: {verdict if not self.s.tiny else 'n/a for --tiny'})")  # fmt: skip

    def placement_peak(self, engine: Any, placement: str) -> None:
        if self.device.type == "cuda":
            held = self.torch.cuda.memory_allocated() / 2**30
        else:
            held = engine.memory_report().weights / 2**30
        self.reset_peak()
        engine.run(self.request(MODES))
        self.sync()
        peak = self.peak()
        self.r.say(f"placement {placement}: weights on the device {held:.2f} GiB; peak during a five-mode "
                   f"comparison {peak} ({engine.memory_report().summary()})")  # fmt: skip
        self.r.figures[f"peak_{placement}"] = peak

    def variant(self, engine: Any, name: str, *, compile_it: bool) -> None:
        torch = self.torch
        unet = engine.pipes[self.lightning_key()].unet
        unet.to(memory_format=torch.channels_last)
        first = None
        if compile_it:
            unet.compile(backend=self.s.compile_backend)
            self.sync()
            start = time.perf_counter()
            engine.run(self.request(["lightning"]))
            self.sync()
            first = time.perf_counter() - start
        seconds, _result = self.end_to_end(engine, "lightning")
        baseline = self.r.figures.get("end_to_end_fp16", {}).get("lightning")
        against = f" (SDPA alone {baseline:.3f} s: {baseline / seconds:.2f}x)" if baseline else ""
        extra = (
            f"; first run with compiling ({self.s.compile_backend}) {first:.1f} s"
            if first is not None
            else ""
        )
        self.r.say(f"Lightning end to end, {name}: {seconds:.3f} s{against}{extra}")
        self.r.figures[f"lightning_{name}"] = seconds

    def lightning_key(self) -> Any:
        from engine.contract.modes import ModelRole

        return ModelRole.LIGHTNING_UNET

    def fp32_psnr(self) -> None:
        if not self.images16:
            raise RuntimeError("no fp16 images to compare (the per-mode part failed)")
        engine = self.engine(self.torch.float32, "all")
        self.r.say()
        self.r.say("| mode | fp32 end to end s (one run) | PSNR fp16 vs fp32 dB |")
        self.r.say("|---|---|---|")
        figures: dict[str, float] = {}
        for mode in MODES:
            seconds, result = self.end_to_end(engine, mode, repeats=1)  # for the image: one run
            value = psnr(self.images16[mode], result.image)
            figures[mode] = value
            self.r.say(f"| {mode} | {seconds:.3f} | {value:.1f} |")
        self.r.figures["psnr_fp16_fp32"] = figures


if __name__ == "__main__":
    sys.exit(main())
