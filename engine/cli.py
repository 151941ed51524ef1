"""`fewstep compare`, `generate`, `models` and `info`: the headless interface other tools rely on.

Exit codes: 0 done; 2 bad input (one line on stderr, nothing written); 1 an unexpected failure;
130 interrupted. Every input is checked from names and file headers before any model loads; what only
loading can tell (a LoRA that does not fit) is refused before any output is written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from engine.contract.errors import FewstepError, ModelInputError, RequestError
from engine.contract.limits import MAX_SEED, MAX_SIDE
from engine.contract.modes import DEFAULT_COMPARISON, MODES, ModelRole
from engine.contract.request import GenerationRequest, ModeSettings
from engine.contract.validation import (
    check_device_names,
    parse_guidance,
    parse_steps,
    parse_style_weight,
)
from engine.files.model_files import check_style_lora, check_vae
from engine.files.model_paths import ModelPaths, StyleLora
from engine.files.safe_paths import special_file_problem
from engine.outputs.atomic import remove_stale_parts, restore_interrupted_swap
from engine.outputs.folder_lock import FolderBusyError, folder_lock
from engine.outputs.targets import comparison_target_problem, image_target_problem
from engine.plan_command import add_plan_parser, run_plan, vram_gib

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_SEEDS = 64


class UsageError(Exception):
    """Bad command-line input; its message is the one line the user sees."""


class _Parser(argparse.ArgumentParser):
    # argparse prints the whole usage block and exits; the contract is one clear line and code 2.
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) < 6 for p in parts):
        raise argparse.ArgumentTypeError(f"size {text!r} must look like 1024x1024 (WIDTHxHEIGHT)")
    width, height = int(parts[0]), int(parts[1])
    if width > MAX_SIDE or height > MAX_SIDE:
        raise argparse.ArgumentTypeError(f"size {text}: width and height must be at most {MAX_SIDE}")
    if width % 8 or height % 8 or width < 8 or height < 8:
        raise argparse.ArgumentTypeError(
            f"size {text}: width and height must be multiples of 8 (e.g. 1024x1024)"
        )
    return width, height


def _seed(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed {text!r} must be a whole number from 0 to {MAX_SEED}")
    return int(text)


def _mode_value(text: str) -> tuple[str, str]:
    mode, sep, value = text.partition("=")
    if not sep or not value:
        raise argparse.ArgumentTypeError(f"{text!r} must look like MODE=VALUE, e.g. lcm=4")
    if mode not in MODES:
        raise argparse.ArgumentTypeError(
            f"unknown mode {mode!r} in {text!r}; known modes: {', '.join(MODES)}"
        )
    return mode, value


def _style_lora(text: str) -> StyleLora:
    path, sep, weight = text.rpartition(":")
    if sep and path:
        try:
            float(weight)
        except ValueError:
            pass  # a colon inside the path (C:\\...), no weight
        else:  # a number, but perhaps nan, inf or 1e30: the strict parser says which are fine
            try:
                return StyleLora(Path(path), parse_style_weight(weight, f"--lora {text}"))
            except RequestError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
    return StyleLora(Path(text), 1.0)


def _out(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("--out is empty: give a file or folder name")
    return Path(text)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", required=True, help="what to draw")
    parser.add_argument("--negative", default="", help="what to avoid (only used where CFG is above 1)")
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the initial noise (default 0)")
    parser.add_argument("--size", type=_size, help="WIDTHxHEIGHT, multiples of 8 (default: the model's own)")
    for role in ModelRole:
        parser.add_argument(f"--{role}", type=Path, metavar="PATH", help=f"the {role} file or folder")
    parser.add_argument(
        "--lora",
        type=_style_lora,
        action="append",
        default=[],
        metavar="PATH[:WEIGHT]",
        help="a style LoRA on every mode that uses the base UNet (repeatable; weight 1 by default,"
        " from -10 to 10)",
    )
    parser.add_argument("--steps", type=_mode_value, action="append", default=[], metavar="MODE=N")
    parser.add_argument("--guidance", type=_mode_value, action="append", default=[], metavar="MODE=G")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    parser.add_argument("--dtype", help="float32, float16 or bfloat16 (default: fp16 on GPUs, fp32 on CPU)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    parser.add_argument(
        "--residency",
        choices=["auto", "all", "one"],
        default="auto",
        help="which distilled UNets stay on the GPU: all, one at a time, or auto (from free memory)",
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fewstep", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    compare = commands.add_parser("compare", help="run several modes on one prompt, same seed, side by side")
    _add_common(compare)
    compare.add_argument(
        "--modes",
        default=",".join(DEFAULT_COMPARISON),
        help=f"comma-separated, from: {', '.join(MODES)} (default: {','.join(DEFAULT_COMPARISON)})",
    )
    compare.add_argument(
        "--out",
        type=_out,
        required=True,
        metavar="DIR",
        help="folder for grid.png and report; written whole, replacing an earlier comparison there",
    )
    compare.add_argument(
        "--overwrite", action="store_true", help="replace --out even if it holds other files"
    )
    compare.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="run N seeds: --seed, --seed+1, ... (2 or more measure each mode's diversity; default 1)",
    )
    generate = commands.add_parser("generate", help="one image with one mode")
    _add_common(generate)
    generate.add_argument("--mode", required=True, choices=list(MODES), metavar="MODE")
    generate.add_argument("--out", type=_out, required=True, metavar="FILE.png")
    generate.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    models = commands.add_parser(
        "models", help="list and classify the model files in a folder and the HF cache"
    )
    models.add_argument(
        "folder", nargs="?", type=Path, help="folder to scan (default: only the Hugging Face cache)"
    )
    add_plan_parser(commands, size=_size, style_lora=_style_lora)
    info = commands.add_parser("info", help="print as JSON the settings Fewstep reads from a PNG")
    info.add_argument("file", type=Path, metavar="FILE.png")
    return parser


@dataclass(frozen=True)
class Job:
    request: GenerationRequest
    paths: ModelPaths
    out: Path
    single: bool


def _mode_settings(names: Sequence[str], args: argparse.Namespace) -> tuple[ModeSettings, ...]:
    steps: dict[str, int] = {}
    guidance: dict[str, float] = {}
    for mode, value in args.steps:
        steps[mode] = parse_steps(value, f"--steps {mode}={value}")
    for mode, value in args.guidance:
        guidance[mode] = parse_guidance(value, f"--guidance {mode}={value}")
    for mode in [*steps, *guidance]:
        if mode not in names:
            raise UsageError(
                f"--steps/--guidance name mode {mode!r}, which is not being run ({', '.join(names)})"
            )
    return tuple(ModeSettings(mode=n, steps=steps.get(n), guidance=guidance.get(n)) for n in names)


def _model_paths(args: argparse.Namespace) -> ModelPaths:
    given = {role: getattr(args, role.replace("-", "_")) for role in ModelRole}
    styles = tuple(args.lora)
    for style in styles:
        check_style_lora(style.path)
    if args.vae is not None:
        check_vae(args.vae)
    if not any(given.values()):
        from dataclasses import replace

        from engine.pocket.model import builtin_model_paths

        return replace(builtin_model_paths(), styles=styles, vae=args.vae)
    if given[ModelRole.BASE] is None:
        others = ", ".join(f"--{r}" for r, p in given.items() if p is not None)
        raise UsageError(f"{others} needs --base: the SDXL base model whose text encoders and VAE it uses")
    if args.base_config is not None and (problem := special_file_problem(args.base_config)):
        raise UsageError(f"--base-config {problem}")
    if args.base_config is not None and not (args.base_config / "model_index.json").is_file():
        raise UsageError(f"--base-config {args.base_config}: not a folder with model_index.json")
    return ModelPaths.from_roles(given, base_config=args.base_config, vae=args.vae, styles=styles)


def parse_job(argv: Sequence[str]) -> tuple[argparse.Namespace, Job]:
    args = build_parser().parse_args(argv)
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
        modes=_mode_settings(names, args),
    )
    request.validate()
    paths = _model_paths(args)
    files = paths.checked()
    if args.command == "generate":
        spec = MODES[args.mode]
        missing = [r for r in spec.required_roles if r not in files]
        if missing:
            raise UsageError(f"mode {args.mode} needs {', '.join('--' + r for r in missing)}")
    return args, Job(request=request, paths=paths, out=args.out, single=args.command == "generate")


def _say(message: str) -> None:
    print(f"fewstep: {message}", file=sys.stderr, flush=True)


def run(argv: Sequence[str]) -> int:
    if argv[:1] == ["models"]:
        from engine.models_command import list_models

        return list_models(build_parser().parse_args(argv).folder)
    if argv[:1] == ["plan"]:
        return run_plan(build_parser().parse_args(argv), _model_paths)
    if argv[:1] == ["info"]:
        from engine.outputs.png_info import print_info

        print_info(build_parser().parse_args(argv).file)
        return EXIT_OK
    args, job = parse_job(argv)
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
    from engine.contract.residency import Residency
    from engine.outputs.run_writer import write_comparison_folder, write_image_files
    from engine.outputs.terminal_progress import TerminalProgress, size_warning
    from engine.pocket.model import builtin_label
    from engine.runtime.device import plan_device
    from engine.runtime.engine import Engine

    plan = plan_device(args.device, args.dtype, args.threads)  # a device error: one line, before any notice
    if job.paths.builtin:
        _say("no model given: using the " + builtin_label())
    started = time.perf_counter()
    engine = Engine(job.paths, plan, residency=Residency(args.residency), vram=args.vram)
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


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except (UsageError, FewstepError) as exc:
        _say(f"error: {exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get("FEWSTEP_DEBUG"):
            raise
        _say(f"unexpected failure: {type(exc).__name__}: {exc} (FEWSTEP_DEBUG=1 shows the traceback)")
        return EXIT_FAILED


__all__ = ["EXIT_BAD_INPUT", "EXIT_OK", "ModelInputError", "RequestError", "main"]


if __name__ == "__main__":
    sys.exit(main())
