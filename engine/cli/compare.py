"""`fewstep compare`: several modes on one prompt, same seed, side by side; and the run that compare and
`fewstep generate` share (generate is a run of one mode that writes one image).

Every input is checked from names and file headers before any model loads; what only loading can tell
(a LoRA that does not fit) is refused before any output is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.cli.arguments import (
    EXIT_OK,
    UsageError,
    eta_value,
    mode_value,
    model_paths,
    out,
    seed,
    size,
    style_lora,
    vram_gib,
)
from engine.cli.arguments import add_model_flags as add_model_file_flags
from engine.cli.arguments import say as _say
from engine.cli.folder_lock import FolderBusyError, folder_lock
from engine.cli.targets import comparison_target_problem, image_target_problem
from engine.contract.limits import MAX_SEED
from engine.contract.modes import DEFAULT_COMPARISON, MODES, ModelRole
from engine.contract.placement import LoraRoute
from engine.contract.request import GenerationRequest, ModeSettings
from engine.contract.validation import check_device_names, parse_guidance, parse_steps
from engine.files.model_paths import ModelPaths
from engine.outputs.atomic import remove_stale_parts, restore_interrupted_swap

MAX_SEEDS = 64


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """The flags compare and generate share: the prompt, the seed, the model files and the device."""
    parser.add_argument("--prompt", required=True, help="what to draw")
    parser.add_argument("--negative", default="", help="what to avoid (only used where CFG is above 1)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the initial noise (default 0)")
    add_model_flags(parser)


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """The size, model files, per-mode settings and device flags: compare's, also bench's."""
    parser.add_argument("--size", type=size, help="WIDTHxHEIGHT, multiples of 8 (default: the model's own)")
    add_model_file_flags(parser)
    parser.add_argument(
        "--lora",
        type=style_lora,
        action="append",
        default=[],
        metavar="PATH[:WEIGHT]",
        help="a style LoRA on every mode that uses the base UNet (repeatable; weight 1 by default,"
        " from -10 to 10)",
    )
    parser.add_argument("--steps", type=mode_value, action="append", default=[], metavar="MODE=N")
    parser.add_argument("--guidance", type=mode_value, action="append", default=[], metavar="MODE=G")
    parser.add_argument(
        "--eta",
        type=eta_value,
        action="append",
        default=[],
        metavar="MODE=E",
        help="eta from 0 to 1 (TCD's gamma)",
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    parser.add_argument("--dtype", help="float32, float16 or bfloat16 (default: fp16 on GPUs, fp32 on CPU)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    parser.add_argument(
        "--residency",
        choices=["auto", "all", "one"],
        default="auto",
        help="which full distilled UNets stay on the device: all, one at a time, or auto (from free"
        " memory); on the CPU, RAM is the device and a UNet that waits, waits on disk",
    )
    parser.add_argument(
        "--lora-route",
        choices=[str(r) for r in LoraRoute],
        default=str(LoraRoute.AUTO),
        help="LoRA modes fused into one shared slot as their model cards run them, unfused, or auto"
        " (fused where the slot fits beside the base UNet)",
    )
    parser.add_argument(
        "--vram",
        type=vram_gib,
        metavar="GiB",
        help="plan for this much free device memory instead of measuring it",
    )
    parser.add_argument("--vae", type=Path, metavar="PATH", help="a replacement VAE, e.g. sdxl-vae-fp16-fix")
    parser.add_argument(
        "--base-config",
        type=Path,
        metavar="DIR",
        help="config folder (model_index.json, configs, tokenizers) for a single-file --base that is not"
        " SDXL-sized (default: the shipped SDXL config)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_flags(parser)
    parser.add_argument(
        "--modes",
        default=",".join(DEFAULT_COMPARISON),
        help=f"comma-separated, from: {', '.join(MODES)} (default: {','.join(DEFAULT_COMPARISON)})",
    )
    parser.add_argument(
        "--out",
        type=out,
        required=True,
        metavar="DIR",
        help="folder for grid.png and report; written whole, replacing an earlier comparison there",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --out even if it holds other files")
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="run N seeds: --seed, --seed+1, ... (2 or more measure each mode's diversity; default 1)",
    )


@dataclass(frozen=True)
class Job:
    request: GenerationRequest
    paths: ModelPaths
    out: Path
    single: bool


def mode_settings(names: Sequence[str], args: argparse.Namespace) -> tuple[ModeSettings, ...]:
    steps: dict[str, int] = {}
    guidance: dict[str, float] = {}
    for mode, value in args.steps:
        steps[mode] = parse_steps(value, f"--steps {mode}={value}")
    for mode, value in args.guidance:
        guidance[mode] = parse_guidance(value, f"--guidance {mode}={value}")
    etas: dict[str, float] = dict(getattr(args, "eta", []))
    for mode in [*steps, *guidance, *etas]:
        if mode not in names:
            raise UsageError(
                f"--steps/--guidance/--eta name mode {mode!r}, which is not being run ({', '.join(names)})"
            )
    return tuple(
        ModeSettings(mode=n, steps=steps.get(n), guidance=guidance.get(n), eta=etas.get(n)) for n in names
    )


def job_of(args: argparse.Namespace) -> Job:
    """The run that compare or generate asks for, every input checked; UsageError or FewstepError if not."""
    if args.command == "compare":
        names = [n.strip() for n in args.modes.split(",") if n.strip()]
        unknown = [n for n in names if n not in MODES]
        if unknown or not names:
            raise UsageError(
                f"--modes: unknown mode {', '.join(unknown) or '(none)'}; known: {', '.join(MODES)}"
            )
        problem = comparison_target_problem(args.out, overwrite=args.overwrite)
    else:
        names = [args.mode]
        problem = image_target_problem(args.out, overwrite=args.overwrite)
    if problem:
        raise UsageError(problem)
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads {args.threads} must be at least 1")
    check_device_names(args.device, args.dtype)
    count = getattr(args, "seeds", 1)
    if not 1 <= count <= MAX_SEEDS:
        raise UsageError(f"--seeds {count} must be from 1 to {MAX_SEEDS}")
    if args.seed + count - 1 > MAX_SEED:
        raise UsageError(f"--seed {args.seed} with --seeds {count} runs past the largest seed, {MAX_SEED}")
    width, height = args.size if args.size else (None, None)
    request = GenerationRequest(
        prompt=args.prompt,
        negative_prompt=args.negative,
        seeds=tuple(range(args.seed, args.seed + count)),
        width=width,
        height=height,
        modes=mode_settings(names, args),
    )
    request.validate()
    paths = model_paths(args)
    files = paths.checked()
    if args.command == "generate":
        spec = MODES[args.mode]
        missing = [r for r in spec.required_roles if r not in files]
        if missing:
            needs = ", ".join(f"--{r}" if r in set(ModelRole) else f"--model {r}=PATH" for r in missing)
            raise UsageError(f"mode {args.mode} needs {needs}")
    return Job(request=request, paths=paths, out=args.out, single=args.command == "generate")


def run(args: argparse.Namespace) -> int:
    job = job_of(args)
    try:
        # One writer per output; a second run says so at once, before any model loads.
        with folder_lock(job.out):
            restore_interrupted_swap(job.out)  # what a killed run left beside it
            remove_stale_parts(job.out.parent, job.out.name)
            return _run_job(args, job)
    except FolderBusyError as exc:
        raise UsageError(str(exc)) from None


def _run_job(args: argparse.Namespace, job: Job) -> int:
    # Heavy imports only once the input is known to be good: a typo answers at once.
    from engine.cli.terminal_progress import TerminalProgress, size_warning
    from engine.contract.residency import Residency
    from engine.outputs.run_writer import write_comparison_folder, write_image_files
    from engine.pocket.model import builtin_label
    from engine.runtime.device import plan_device
    from engine.runtime.engine import Engine

    plan = plan_device(args.device, args.dtype, args.threads)  # a device error: one line, before any notice
    if job.paths.builtin:
        _say("no model given: using the " + builtin_label())
    started = time.perf_counter()
    engine = Engine(
        job.paths,
        plan,
        residency=Residency(args.residency),
        vram=args.vram,
        lora_route=LoraRoute(args.lora_route),
    )
    for warning in engine.placement_warnings():
        _say(f"warning: {warning}")
    memory = engine.memory_report()
    _say(f"models loaded in {time.perf_counter() - started:.1f} s on {plan.describe()}; " + memory.summary())
    for settings in job.request.modes:
        if missing := engine.missing_files(settings.mode):
            _say(f"skipping {settings.mode}: no {' or '.join('--' + r for r in missing)} given")
    width, height = (job.request.width, job.request.height) if job.request.width else engine.native_size
    if slow := size_warning(plan.device.type, width or 0, height or 0, engine.native_size):
        _say(f"note: {slow}")
    steps = sum(engine.resolve(s).steps for s in job.request.modes if not engine.missing_files(s.mode))
    progress = TerminalProgress(sys.stderr, steps * len(job.request.seeds), _say)
    comparison = engine.run(job.request, on_progress=progress)
    context = engine.run_context(_say)  # hashes each model file once (cached by path, size, mtime)
    for result in comparison.results:
        for warning in result.warnings:
            _say(f"warning: {warning}")
    if job.single:
        result = comparison.results[0]
        sidecar = write_image_files(job.out, result, job.request, context)
        print(
            f"{result.mode}: {result.steps} steps, {result.timings.total:.2f} s -> {job.out} ({sidecar.name})"
        )
        return EXIT_OK
    from engine.outputs.trilemma import trilemma_of

    trilemma = trilemma_of(comparison)
    # Built beside --out and swapped in whole: a kill at any moment leaves the old folder or the new one.
    write_comparison_folder(
        job.out,
        comparison,
        context,
        # placement: where each part lived and what each move cost (bytes, seconds).
        {"memory": memory.to_json(), "placement": engine.placement_report()},
        trilemma=trilemma,
    )
    for result in comparison.results:
        t = result.timings
        print(
            f"{result.mode:15} {result.steps:3d} steps  guidance {result.guidance:<4g} {t.total:7.3f} s"
            f"  (denoise {t.denoising:.3f}, decode {t.decode:.3f}, switch {t.switch:.4f})"
            + (f"  seed {result.seed}" if len(job.request.seeds) > 1 else "")
        )
    print()
    print(trilemma.table())
    print(f"wrote {job.out / 'grid.png'}, {job.out / 'report.json'} and {job.out / 'reproduce.py'}")
    return EXIT_OK
