"""`fewstep bench`: the trilemma over a prompt set, with 95% intervals, in a folder that resumes.

Every cell (prompt x mode x seed) is saved as it finishes, by one writer (engine.outputs.bench_folder);
rerunning the same command skips the cells already there, and a rerun with other settings is refused
unless --overwrite. The models load once; cells run in blocks of prompts, mode by mode, each prompt
encoded once for all its modes (engine.runtime.engine.SharedEncodings). The writer saves and measures
each cell on a thread of its own while the next one is made (engine.cli.bench_writer). When every cell
is done, the report (report.json, cells.csv, index.html) is rebuilt from the folder, using the measures
taken meanwhile (the same numbers as the files give) instead of reading those images again.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cli.arguments import EXIT_OK, UsageError, model_paths, out, seed
from engine.cli.arguments import say as _say
from engine.cli.bench_prompts import BenchPrompt, read_prompts
from engine.cli.bench_work import CellDone, CellWork
from engine.cli.compare import MAX_SEEDS, add_model_flags, mode_settings
from engine.cli.folder_lock import FolderBusyError, folder_lock
from engine.contract.limits import MAX_SEED
from engine.contract.modes import DEFAULT_COMPARISON, MODES, ModelRole
from engine.contract.request import ModeSettings
from engine.contract.validation import check_device_names
from engine.files.model_paths import ModelPaths
from engine.files.safe_paths import output_problem
from engine.outputs.atomic import remove_stale_parts
from engine.outputs.bench_cells import Cell, cell_order, cell_request
from engine.outputs.bench_folder import BenchFolder, BenchFolderError

if TYPE_CHECKING:  # Ray is the optional extra fewstep[cluster]: its module loads only for --ray
    from engine.cli.bench_ray import RayPool
    from engine.outputs.bench_metrics import KnownMeasures

NOT_MEASURED = (
    "not measured: give --clip PATH or a CLIP repository id in the Hugging Face cache (the built-in model"
    " is scored by the pocket scorer)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prompts",
        required=True,
        metavar="FILE|pocket|parti",
        help="a .txt file (one prompt a line), a .csv or .jsonl with prompt, negative_prompt and category,"
        " or a built-in set: pocket (the built-in model's grammar), parti (PartiPrompts, for SDXL models)",
    )
    parser.add_argument(
        "--modes",
        default=",".join(DEFAULT_COMPARISON),
        help=f"comma-separated, from: {', '.join(MODES)} (default: {','.join(DEFAULT_COMPARISON)})",
    )
    parser.add_argument("--seed", type=seed, default=0, help="the first seed (default 0)")
    parser.add_argument(
        "--seeds",
        type=int,
        default=2,
        metavar="N",
        help="seeds per prompt and mode: --seed, --seed+1, ... (2 or more measure diversity; default 2)",
    )
    parser.add_argument(
        "--out", type=out, required=True, metavar="DIR", help="the bench folder; the same command resumes it"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="start afresh where --out holds another bench or other files"
    )
    parser.add_argument(
        "--clip",
        metavar="PATH|REPO_ID",
        help="a CLIP model (a folder, or a repository in the Hugging Face cache such as"
        " openai/clip-vit-large-patch14) for CLIP score and CLIP diversity; read offline",
    )
    parser.add_argument(
        "--ray",
        metavar="auto|ADDRESS",
        help="run the cells on a Ray cluster, one engine per GPU (needs fewstep[cluster]): auto joins"
        " the cluster RAY_ADDRESS names or starts a local one; see docs/ray.md",
    )
    parser.add_argument(
        "--ray-actors",
        type=int,
        metavar="N",
        help="with --ray: engines to start (default: one per GPU; without GPUs, one per node, the CPUs"
        " shared between them)",
    )
    add_model_flags(parser)


@dataclass(frozen=True)
class BenchJob:
    prompts: tuple[BenchPrompt, ...]
    modes: tuple[ModeSettings, ...]
    seeds: tuple[int, ...]
    size: tuple[int, int] | None
    paths: ModelPaths
    out: Path
    clip: Path | None
    clip_label: str

    def settings(self, args: argparse.Namespace) -> dict[str, Any]:
        """What the cells depend on: a rerun with other settings is refused. Not the device's share of
        the work (threads, residency, --vram) nor the CLIP model, which change no image."""
        return {
            "prompts": [p.as_json() for p in self.prompts],
            "modes": [{"mode": m.mode, "steps": m.steps, "guidance": m.guidance} for m in self.modes],
            "seeds": list(self.seeds),
            "size": list(self.size) if self.size else None,
            "models": _paths_json(self.paths),
            "device": args.device,
            "dtype": args.dtype,
        }


def _paths_json(paths: ModelPaths) -> dict[str, Any]:
    def where(path: Path | None) -> str | None:
        return None if path is None else str(path.resolve())

    if paths.builtin:  # the shipped files: the same wherever the checkout or install lies
        return {
            "builtin": True,
            "styles": [[where(s.path), s.weight] for s in paths.styles],
            "vae": where(paths.vae),
        }
    return {
        "builtin": False,
        "files": {str(role): where(paths.get(role)) for role in ModelRole},
        "vae": where(paths.vae),
        "base_config": where(paths.base_config),
        "styles": [[where(s.path), s.weight] for s in paths.styles],
    }


def clip_folder(source: str) -> tuple[Path, str]:
    """A CLIP model's folder: the path itself, or the repository's snapshot in the Hugging Face cache."""
    path = Path(source)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UsageError(f"--clip {source}: no config.json in it (a CLIP model saved by transformers?)")
        return path, path.name
    if source.count("/") != 1 or path.exists():
        raise UsageError(
            f"--clip {source}: no such folder (or give a repository id, such as openai/clip-vit-base-patch32)"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source, local_files_only=True)), source
    except Exception:
        raise UsageError(
            f"--clip {source}: not in the Hugging Face cache (Fewstep reads it offline; download it first)"
        ) from None


def job_of(args: argparse.Namespace) -> BenchJob:
    """The bench asked for, every input checked; UsageError or FewstepError if not."""
    prompts = read_prompts(args.prompts)
    names = [n.strip() for n in args.modes.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODES]
    if unknown or not names or len(set(names)) != len(names):
        raise UsageError(
            f"--modes: unknown or repeated mode {', '.join(unknown) or '(none)'}; known: {', '.join(MODES)}"
        )
    if problem := output_problem(args.out):
        raise UsageError(problem)
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads {args.threads} must be at least 1")
    if args.ray_actors is not None and (args.ray is None or args.ray_actors < 1):
        raise UsageError(f"--ray-actors {args.ray_actors} needs --ray, and at least 1")
    if args.ray is not None and not args.ray.strip():
        raise UsageError("--ray is empty: give auto, or the cluster's address (e.g. ray://head:10001)")
    if args.ray is not None and args.device is not None and ":" in args.device:
        # Ray gives each actor its own GPU (CUDA_VISIBLE_DEVICES): inside it, that GPU is cuda:0.
        raise UsageError(
            f"--device {args.device} with --ray: each actor uses the GPU Ray gives it; give --device cuda"
        )
    if args.ray is not None and args.device not in (None, "cpu", "cuda"):
        raise UsageError(f"--device {args.device} with --ray: give cpu or cuda (each actor's own device)")
    # With --ray the device is the actors' (the driver, a head node, may have no GPU): spelling only.
    check_device_names(args.device if args.ray is None else None, args.dtype)
    if not 1 <= args.seeds <= MAX_SEEDS:
        raise UsageError(f"--seeds {args.seeds} must be from 1 to {MAX_SEEDS}")
    if args.seed + args.seeds - 1 > MAX_SEED:
        raise UsageError(
            f"--seed {args.seed} with --seeds {args.seeds} runs past the largest seed, {MAX_SEED}"
        )
    modes = mode_settings(names, args)
    for prompt in prompts:  # the engine's own checks (lengths, sizes), before any model loads
        cell_request(prompt.text, prompt.negative, modes[0], args.seed, args.size).validate()
    paths = model_paths(args)
    files = paths.checked()
    for name in names:
        if missing := [r for r in MODES[name].required_roles if r not in files]:
            raise UsageError(f"mode {name} needs {', '.join('--' + r for r in missing)}")
    clip, label = clip_folder(args.clip) if args.clip else (None, "")
    return BenchJob(
        prompts=prompts,
        modes=modes,
        seeds=tuple(range(args.seed, args.seed + args.seeds)),
        size=args.size,
        paths=paths,
        out=args.out,
        clip=clip,
        clip_label=label,
    )


def run(args: argparse.Namespace) -> int:
    job = job_of(args)
    pool = None
    if args.ray is not None:  # the actors check their files before the folder is touched
        from engine.cli.bench_ray import RayPool

        pool = RayPool.start(args, job.paths, cell_work(job), _say)
    try:
        with folder_lock(job.out):
            try:
                folder = BenchFolder.open(job.out, job.settings(args), overwrite=args.overwrite)
            except BenchFolderError as exc:
                raise UsageError(str(exc)) from None
            for place in (folder.root, folder.cells, folder.root / "thumbs"):
                remove_stale_parts(place)  # what a killed writer left half-written: never a cell
            return _run_bench(args, job, folder, pool)
    except FolderBusyError as exc:
        raise UsageError(str(exc)) from None
    finally:
        if pool is not None:
            pool.close()


def _progress(total: int, done: int, what: str) -> Any:
    """A tqdm bar on stderr where it is a terminal: cells done, cells per minute, time left."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=done,
        unit=" cells",
        desc=what,
        file=sys.stderr,
        disable=not sys.stderr.isatty(),
        dynamic_ncols=True,
        bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} cells [{elapsed}<{remaining}{postfix}]",
        postfix=None,
    )


def _run_bench(
    args: argparse.Namespace, job: BenchJob, folder: BenchFolder, pool: RayPool | None = None
) -> int:
    cells = cell_order(len(job.prompts), [m.mode for m in job.modes], job.seeds)
    done = folder.done()
    todo = [c for c in cells if c.id not in done]
    if len(done) and todo:
        _say(f"resuming {job.out}: {len(cells) - len(todo)} of {len(cells)} cells already done")
    known = _run_cells(args, job, folder, todo, len(cells), pool) if todo else None
    started = time.perf_counter()
    scorer, reason = _scorer(job)
    with _progress(len(cells), 0, "measuring") as bar:
        report = _write_report(folder, job, args, scorer, reason, bar.update, known)
    _say(f"measured {len(cells)} cells and wrote the report in {time.perf_counter() - started:.1f} s")
    _print_table(report)
    print(f"wrote {job.out / 'index.html'}, {job.out / 'report.json'} and {job.out / 'cells.csv'}")
    return EXIT_OK


def cell_work(job: BenchJob) -> CellWork:
    return CellWork(
        prompts=tuple((p.text, p.negative) for p in job.prompts),
        modes={m.mode: m for m in job.modes},
        size=job.size,
    )


def _local_cells(args: argparse.Namespace, job: BenchJob) -> Callable[[list[Cell]], Iterator[CellDone]]:
    """The models loaded once in this process; then the cells, in order, on them."""
    from engine.cli.bench_runner import CellRunner
    from engine.contract.residency import Residency
    from engine.pocket.model import builtin_label
    from engine.runtime.device import plan_device
    from engine.runtime.engine import Engine

    plan = plan_device(args.device, args.dtype, args.threads)
    if job.paths.builtin:
        _say("no model given: using the " + builtin_label())
    started = time.perf_counter()
    engine = Engine(job.paths, plan, residency=Residency(args.residency), vram=args.vram)
    for warning in engine.placement_warnings():
        _say(f"warning: {warning}")
    _say(f"models loaded in {time.perf_counter() - started:.1f} s on {plan.describe()}")
    context = engine.run_context(_say)
    runner = CellRunner(engine, cell_work(job))

    def run(todo: list[Cell]) -> Iterator[CellDone]:
        for cell in todo:
            yield CellDone(cell, *runner.run(cell), context)

    return run


def _run_cells(
    args: argparse.Namespace,
    job: BenchJob,
    folder: BenchFolder,
    todo: list[Cell],
    total: int,
    pool: RayPool | None = None,
) -> KnownMeasures:
    """The cells not yet done, run here or by the Ray actors, each saved and measured by this process's
    one writer (engine.cli.bench_writer) as it arrives; returns those measures for the report."""
    from engine.cli.bench_writer import CellWriter
    from engine.outputs.bench_live_metrics import LiveMeasures

    # Measured while the cells run: the pocket scorer (numpy, milliseconds); a CLIP model is loaded for
    # the report only, so that it never takes the engine's threads or memory.
    live = LiveMeasures(
        folder,
        [m.mode for m in job.modes],
        [p.text for p in job.prompts],
        len(job.seeds),
        _scorer(job)[0] if job.clip is None else None,
    )
    cells = _local_cells(args, job) if pool is None else pool.results
    warned: set[str] = set()
    with _progress(total, total - len(todo), "bench") as bar:
        started = time.perf_counter()
        count = 0

        def save(done: CellDone) -> None:
            nonlocal count
            category = job.prompts[done.cell.prompt_index].category
            folder.write_cell(done.cell, category, done.request, done.result, done.context, done.worker)
            count += 1
            bar.set_postfix_str(
                f"{count / (time.perf_counter() - started) * 60:.1f} cells/min", refresh=False
            )
            bar.update()

        writer = CellWriter(save, lambda done: live.add(done.cell, done.result.image))
        try:
            for done in cells(todo):
                for warning in set(done.result.warnings) - warned:  # each once, not once per cell
                    warned.add(warning)
                    _say(f"warning: {warning}")
                writer.hand_over(done)
        finally:
            writer.close()  # the cell handed over is saved, even on Ctrl-C or the engine's error
    seconds = time.perf_counter() - started
    _say(f"made {len(todo)} cells in {seconds:.1f} s ({len(todo) / seconds * 60:.1f} cells/min)")
    return live.known


def _scorer(job: BenchJob) -> tuple[Any, str]:
    if job.clip is not None:
        from engine.outputs.bench_adherence import ClipScorer

        return ClipScorer(job.clip, job.clip_label), ""
    if job.paths.builtin:
        from engine.outputs.bench_adherence import PocketScorer

        return PocketScorer(), ""
    return None, NOT_MEASURED


def _write_report(
    folder: BenchFolder,
    job: BenchJob,
    args: argparse.Namespace,
    scorer: Any,
    reason: str,
    tick: Any,
    known: KnownMeasures | None,
) -> dict[str, Any]:
    from engine.outputs.bench_report import write_bench_report

    settings = job.settings(args)
    return write_bench_report(folder, settings, scorer, not_measured=reason, on_cell=tick, known=known)


def _print_table(report: Mapping[str, Any]) -> None:
    from engine.outputs.bench_columns import COLUMNS

    trilemma = report["trilemma"]
    keys = [k for k, _ in COLUMNS if any(v.get(k) is not None for v in trilemma["modes"].values())]
    labels = dict(COLUMNS)
    print(f"{'mode':15} " + " ".join(f"{labels[k]:>22}" for k in keys))
    for mode, values in trilemma["modes"].items():
        cells = []
        for key in keys:
            value = values.get(key)
            low, high = trilemma["intervals"][mode][key]
            text = "-" if value is None else f"{value:.3g}"
            if low is not None and high is not None:
                text += f" [{low:.3g}, {high:.3g}]"
            cells.append(f"{text:>22}")
        print(f"{mode:15} " + " ".join(cells))
    adherence = trilemma["adherence"]
    print(
        f"adherence: {adherence['metric'] or 'not measured'}"
        + (f" ({adherence['note']})" if adherence["note"] else "")
    )
    print(
        f"reference: {trilemma['reference_reason']}; {round(trilemma['confidence'] * 100)}% intervals, bootstrap over {trilemma['prompts']} prompts"
    )
