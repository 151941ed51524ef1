"""The pocket model's trade-off table: adherence, seconds per image and diversity of every few-step mode.

    .venv/bin/python -m tests.benchmarks.bench_pocket [--prompts 200] [--diverse 25] [--out docs/pocket.md]

Every image goes through the engine (engine.runtime.engine.Engine on resources/pocket), one at a time, as the
application makes them. Adherence: the scorer (devtools.pocket.scorer) on ``--prompts`` prompts of the
grammar, one seed each, half of them naming a position. Diversity: on the first ``--diverse`` prompts,
8 seeds each, the mean pairwise distance of the pictures and, for prompts that name no position, how
many of the 5 positions the 8 pictures use. Seconds per image: denoising plus VAE decode (the prompt
encoding is shared by all modes of a comparison), median over the run, one torch thread.

The trilemma columns use the application's own metric code (engine.outputs.trilemma), against the
first row (DDIM-30, the reference): SSIM to the reference image of the same prompt and seed; detail,
the variance of the Laplacian over the reference's; diversity, the mean pairwise distance across seeds
(RMS of 32-pixel thumbnails) over the reference's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import torch

from devtools.pocket.scorer import Score, detect, score, summarize
from engine.contract.request import GenerationRequest, ModeSettings
from engine.files.model_paths import ModelPaths
from engine.outputs.trilemma import diversity, high_frequency_energy, psnr, ssim
from engine.pocket.grammar import evaluation_prompts
from engine.pocket.model import BASE_DIR, MARKER, pocket_model_paths
from engine.runtime.engine import Engine

REPO = Path(__file__).resolve().parents[2]
SEEDS = 8


@dataclass(frozen=True)
class Row:
    label: str
    mode: str
    steps: int
    guidance: float | None  # None: the mode's default
    lightning_steps: int = 4  # which Lightning files the engine holds
    # A control, not a mode of the engine: the undistilled base UNet with this diffusers scheduler
    # (name, overrides), run by plain diffusers from the same seeds.
    control: tuple[str, tuple[tuple[str, str], ...]] | None = None


ROWS: tuple[Row, ...] = (
    Row("SDXL + DDIM (reference)", "ddim", 30, 5.0),
    Row("SDXL + DDIM", "ddim", 8, 5.0),
    Row("SDXL + DDIM", "ddim", 4, 5.0),
    Row("SDXL + DDIM", "ddim", 2, 5.0),
    Row("LCM UNet", "lcm", 8, 5.0),
    # The LCM UNet at the reference's guidance: its embedding (w = 4) asks for the teacher's CFG-5
    # trajectory, the one DDIM-30 follows. The card's 8 suits real SDXL; the row after shows it here.
    Row("LCM UNet", "lcm", 4, 5.0),
    Row("LCM UNet", "lcm", 4, 8.0),
    Row("LCM UNet", "lcm", 2, 5.0),
    Row("SDXL + LCM-LoRA", "lcm-lora", 8, None),
    Row("SDXL + LCM-LoRA", "lcm-lora", 4, None),
    Row("SDXL + LCM-LoRA", "lcm-lora", 2, None),
    Row("SDXL-Lightning UNet", "lightning", 4, None, 4),
    Row("SDXL-Lightning UNet", "lightning", 2, None, 2),
    Row("SDXL + Lightning LoRA", "lightning-lora", 4, None, 4),
    Row("SDXL + Lightning LoRA", "lightning-lora", 2, None, 2),
    # What the distillations add: the same base UNet at 4 steps with their samplers, CFG off.
    Row("control: SDXL + LCM scheduler, no LoRA", "lcm-lora", 4, 1.0, control=("LCMScheduler", ())),
    Row(
        "control: SDXL + Euler trailing, no LoRA",
        "lightning-lora",
        4,
        1.0,
        control=("EulerDiscreteScheduler", (("timestep_spacing", "trailing"),)),
    ),
)


def key(row: Row) -> tuple[str, int, float | None]:
    return (row.label, row.steps, row.guidance)


class ControlRunner:
    """Runs a control row as the engine runs a mode: batch 1, each image from its own CPU generator."""

    def __init__(self, base: Path, row: Row):
        from devtools.pocket.evaluate import load_pipeline, scheduler

        assert row.control is not None
        self.pipe = load_pipeline(base)
        name, overrides = row.control
        self.pipe.scheduler = scheduler(self.pipe, name, **dict(overrides))

    def __call__(self, prompt: str, seed: int, steps: int, guidance: float) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        with torch.inference_mode():
            image = self.pipe(
                prompt,
                num_inference_steps=steps,
                guidance_scale=guidance,
                generator=torch.Generator("cpu").manual_seed(seed),
                output_type="np",
            ).images[0]
        seconds = time.perf_counter() - start
        return (np.clip(image, 0, 1) * 255).round().astype(np.uint8), seconds


def pocket_paths(root: Path, lightning_steps: int) -> ModelPaths:
    paths = pocket_model_paths(root, lightning_steps=lightning_steps)
    if paths is None:
        raise SystemExit(f"no pocket model in {root}: run python -m devtools.pocket.export first")
    return paths


Images = dict[tuple[int, int], np.ndarray]  # (prompt index, seed) -> picture


def run_row(
    engine: Engine,
    row: Row,
    prompts: list[Any],
    diverse: int,
    control: ControlRunner | None = None,
    reference: Images | None = None,
    keep: Images | None = None,
) -> dict[str, Any]:
    """One row's figures; `reference` holds the reference row's pictures (for SSIM), and `keep`, when
    given, receives this row's."""
    settings = ModeSettings(mode=row.mode, steps=row.steps, guidance=row.guidance)
    scores: list[Score] = []
    seconds: list[float] = []
    distances: list[float] = []
    positions_used: list[int] = []
    details: list[float] = []
    similarity: list[float] = []
    psnrs: list[float] = []
    guidance = row.guidance
    for i, prompt in enumerate(prompts):
        seeds = tuple(range(i * SEEDS, i * SEEDS + SEEDS)) if i < diverse else (i * SEEDS,)
        if control is not None:
            assert row.guidance is not None
            made = [control(prompt.text, seed, row.steps, row.guidance) for seed in seeds]
            images = [image for image, _ in made]
            # Includes the prompt encoding the engine shares across modes: a little pessimistic.
            seconds.extend(s for _, s in made)
        else:
            request = GenerationRequest(prompt=prompt.text, seeds=seeds, modes=(settings,))
            results = engine.run(request).results
            guidance = results[0].guidance
            images = [r.image for r in results]
            seconds.extend(r.timings.denoising + r.timings.decode for r in results)
        scores.append(score(images[0], prompt))
        details.extend(high_frequency_energy(image) for image in images)
        for seed, image in zip(seeds, images, strict=True):
            if keep is not None:
                keep[(i, seed)] = image
            if reference is not None and (i, seed) in reference:
                similarity.append(ssim(image, reference[(i, seed)]))
                psnrs.append(psnr(image, reference[(i, seed)]))
        if len(images) > 1:
            spread = diversity(images)
            assert spread is not None
            distances.append(spread)
            if prompt.position is None:
                positions_used.append(len({detect(im).position for im in images} - {None}))
    summary = summarize(scores)
    return {
        "label": row.label,
        "mode": row.mode,
        "steps": row.steps,
        "guidance": guidance,
        "requested_guidance": row.guidance,
        **summary.as_dict(),
        "seconds": statistics.median(seconds),
        "diversity": statistics.mean(distances),
        "detail": statistics.mean(details),
        "ssim": statistics.mean(similarity) if similarity else None,
        # Identical pictures have an infinite PSNR; JSON has no infinity, so they count as absent.
        "psnr": statistics.mean(p for p in psnrs if np.isfinite(p)) if any(np.isfinite(psnrs)) else None,
        "positions_used": statistics.mean(positions_used) if positions_used else None,
    }


def grid(engines: dict[int, Engine], prompts: list[str], out: Path) -> None:
    """One row per prompt, one column per mode of the table (same seed), as a PNG."""
    from PIL import Image

    rows = []
    for prompt in prompts:
        cells = []
        for row in ROWS:
            if row.control is not None:
                continue
            settings = ModeSettings(mode=row.mode, steps=row.steps, guidance=row.guidance)
            request = GenerationRequest(prompt=prompt, seeds=(1,), modes=(settings,))
            image = engines[row.lightning_steps].run(request).results[0].image
            cells.append(np.pad(image, ((2, 2), (2, 2), (0, 0)), constant_values=255))
        rows.append(np.concatenate(cells, axis=1))
    picture = np.concatenate(rows, axis=0)
    Image.fromarray(picture).resize(
        (picture.shape[1] * 2, picture.shape[0] * 2), Image.Resampling.NEAREST
    ).save(out)


def is_reference(row: dict[str, Any] | Row) -> bool:
    label = row.label if isinstance(row, Row) else row["label"]
    return label == ROWS[0].label


def _ratio(value: float | None, reference: float | None) -> str:
    return "-" if value is None or not reference else f"{value / reference:.2f}"


def table(results: list[dict[str, Any]], marker: dict[str, Any], args: argparse.Namespace) -> str:
    ref = next((r for r in results if is_reference(r)), None)
    reference = (ref["all"] if ref else 0.0) or 1e-9
    lines = [
        "| mode | steps | guidance | all named right | vs DDIM-30 | fg+bg+shape | background | colour | shape "
        "| size | position | s/img | speed-up | SSIM | detail | diversity | positions used of 5 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        used = "-" if r["positions_used"] is None else f"{r['positions_used']:.1f}"
        position = "-" if r["position"] is None else f"{r['position']:.2f}"
        similarity = "1.00" if is_reference(r) else "-" if r.get("ssim") is None else f"{r['ssim']:.2f}"
        lines.append(
            f"| {r['label']} | {r['steps']} | {r['guidance']:g} | {r['all']:.2f} | {r['all'] / reference:.0%} "
            f"| {r['fbs']:.2f} | {r['background']:.2f} | {r['color']:.2f} | {r['shape']:.2f} | {r['size']:.2f} "
            f"| {position} | {r['seconds']:.3f} | {_ratio(ref['seconds'] if ref else None, r['seconds'])}x "
            f"| {similarity} | {_ratio(r.get('detail'), ref.get('detail') if ref else None)} "
            f"| {_ratio(r['diversity'], ref['diversity'] if ref else None)} | {used} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pocket", type=Path, default=REPO / "resources" / "pocket")
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--diverse", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the table into this Markdown file's results section")
    parser.add_argument("--grid", type=Path, help="write a comparison grid PNG")
    parser.add_argument(
        "--json", type=Path, help="raw figures as JSON; rows already in the file are kept unless rerun"
    )
    parser.add_argument(
        "--only",
        nargs="*",
        help="run only these modes (e.g. lcm) and the reference row, for SSIM; keep the rest from --json",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    marker = json.loads((args.pocket / MARKER).read_text(encoding="utf-8"))
    engines: dict[int, Engine] = {}

    def engine_for(steps: int) -> Engine:
        if steps not in engines:
            engines[steps] = Engine(pocket_paths(args.pocket, steps))
        return engines[steps]

    prompts = evaluation_prompts(args.prompts, seed=args.seed)
    kept: dict[tuple[str, int, float | None], dict[str, Any]] = {}
    if args.json is not None and args.json.is_file():
        kept = {
            (r["label"], r["steps"], r["requested_guidance"]): r
            for r in json.loads(args.json.read_text())["results"]
        }
    start = time.perf_counter()
    reference_images: Images | None = None
    for row in ROWS:
        if args.only and row.mode not in args.only and not is_reference(row):
            continue
        control = ControlRunner(args.pocket / BASE_DIR, row) if row.control is not None else None
        keep: Images | None = {} if is_reference(row) else None
        result = run_row(
            engine_for(row.lightning_steps), row, prompts, args.diverse, control, reference_images, keep
        )
        if keep is not None:
            reference_images = keep
        kept[key(row)] = result
        print(json.dumps(result), file=sys.stderr, flush=True)
        if args.json is not None:
            ordered = [kept[key(r)] for r in ROWS if key(r) in kept]
            args.json.write_text(json.dumps({"marker": marker, "results": ordered}, indent=2) + "\n")
    results = [kept[key(r)] for r in ROWS if key(r) in kept]
    text = table(results, marker, args)
    print(text)
    print(f"\n{len(prompts)} prompts, {time.perf_counter() - start:.0f} s in all", file=sys.stderr)
    if args.grid is not None:
        from engine.pocket.grammar import EXAMPLE_PROMPTS

        grid({steps: engine_for(steps) for steps in (4, 2)}, list(EXAMPLE_PROMPTS), args.grid)
    if args.out is not None:
        write_results(args.out, text, marker, args)


BEGIN, END = "<!-- bench_pocket: begin -->", "<!-- bench_pocket: end -->"


def write_results(path: Path, text: str, marker: dict[str, Any], args: argparse.Namespace) -> None:
    """Replace the section between the bench markers of ``path`` (created if missing)."""
    trained = ", ".join(
        f"{name} {info['minutes']} min"
        + (
            f" (ships the weights that validated best, at {info['selected']['minutes']} min)"
            if "selected" in info
            else ""
        )
        for name, info in marker.items()
        if isinstance(info, dict) and "minutes" in info
    )
    section = (
        f"{BEGIN}\nMeasured by `python -m tests.benchmarks.bench_pocket --prompts {args.prompts} --diverse "
        f"{args.diverse} --seed {args.seed}` on {time.strftime('%Y-%m-%d')}, one torch thread, 64x64 "
        f"images. Training (single CPU thread): {trained}.\n\n{text}\n{END}"
    )
    old = (
        path.read_text(encoding="utf-8")
        if path.is_file()
        else "# The pocket model\n\n" + BEGIN + "\n" + END + "\n"
    )
    head, _, rest = old.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(head + section + tail, encoding="utf-8")


if __name__ == "__main__":
    main()
