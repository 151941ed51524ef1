"""The trilemma of a bench: each cell measured once, then each mode over the prompts, with intervals.

The per-image measures are the comparison's (engine.outputs.trilemma): seconds of denoising and decode;
SSIM and PSNR to the reference mode's image of the same prompt and seed; detail, the variance of the
Laplacian; diversity, the mean pairwise RMS distance of 32-pixel thumbnails across a prompt's seeds.
Each prompt's figure is the mean over its seeds; a mode's figure is the mean over prompts (ratios:
the ratio of the means), with a bootstrap interval over prompts (engine.outputs.bench_statistics).

Prompt adherence comes from a scorer (engine.outputs.bench_adherence): the pocket scorer on the
built-in model, CLIP score with a CLIP model; without one it is None ("not measured"), never 0.

A cell measured while the bench ran (engine.outputs.bench_live_metrics) comes as KnownMeasures: a
prompt whose every cell is known is taken from them without reading an image; any other prompt is
measured from its files. Both give the same numbers, bit for bit: the same functions on the same
pixels (a PNG holds the very array the engine returned).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from engine.outputs.bench_adherence import AdherenceScorer
from engine.outputs.bench_columns import BENCH_METRIC_KEYS
from engine.outputs.bench_statistics import (
    BOOTSTRAP_SEED,
    CONFIDENCE,
    RESAMPLES,
    Interval,
    Values,
    mean_interval,
)
from engine.outputs.trilemma import (
    FloatImage,
    Image,
    choose_reference,
    high_frequency_energy,
    psnr,
    reference_reason,
    rms_distance,
    ssim,
    thumbnail,
)


@dataclass
class CellMeasure:
    """One image's numbers; a row of cells.csv."""

    cell: str
    prompt_index: int
    category: str
    mode: str
    seed: int
    steps: int
    guidance: float
    seconds: float  # denoising and decode, as the trilemma counts them
    file: str
    detail: float = math.nan
    ssim_to_reference: float = math.nan
    psnr_to_reference: float = math.nan
    adherence: float = math.nan

    def as_row(self) -> dict[str, Any]:
        def clean(value: float) -> float | str:
            return "" if not math.isfinite(value) else round(value, 6)

        return {
            "cell": self.cell,
            "prompt_index": self.prompt_index,
            "category": self.category,
            "mode": self.mode,
            "seed": self.seed,
            "steps": self.steps,
            "guidance": self.guidance,
            "seconds": round(self.seconds, 6),
            "ssim_to_reference": clean(self.ssim_to_reference),
            "psnr_to_reference": clean(self.psnr_to_reference),
            "detail": clean(self.detail),
            "adherence": clean(self.adherence),
            "file": self.file,
        }


@dataclass
class CellValues:
    """What one image gives, measured once: its detail and adherence, and (None until its reference
    of the same prompt and seed is measured too) its SSIM and PSNR to that reference."""

    detail: float
    adherence: float | None
    to_reference: tuple[float, float] | None = None  # (ssim, psnr)


@dataclass
class KnownMeasures:
    """Measures already taken, by cell id, and diversity by (mode, prompt index); adherence_metric:
    the scorer they were scored with (None: adherence not taken)."""

    adherence_metric: str | None
    cells: dict[str, CellValues] = field(default_factory=dict)
    diversity: dict[tuple[str, int], float] = field(default_factory=dict)

    def covers(
        self, index: int, group: Sequence[Mapping[str, Any]], reference: str, scorer: AdherenceScorer | None
    ) -> bool:
        """Whether every number of this prompt's cells is known (then no image need be read)."""
        if scorer is not None and scorer.metric != self.adherence_metric:
            return False
        present = {(r["mode"], int(r["seed"])) for r in group}
        for record in group:
            values = self.cells.get(record["cell"])
            if values is None:
                return False
            mode, seed = record["mode"], int(record["seed"])
            if mode != reference and (reference, seed) in present and values.to_reference is None:
                return False
        modes = {mode for mode, _ in present}
        return all(
            (mode, index) in self.diversity for mode in modes if sum(1 for m, _ in present if m == mode) >= 2
        )


@dataclass
class Measured:
    """Every cell measured, and what the aggregates need per prompt and mode."""

    reference: str
    modes: tuple[str, ...]
    prompt_count: int
    cells: list[CellMeasure]
    diversity: dict[tuple[str, int], float] = field(default_factory=dict)  # (mode, prompt) -> spread
    clip_diversity: dict[tuple[str, int], float] = field(default_factory=dict)
    adherence_metric: str | None = None
    adherence_note: str = ""


def pairwise_mean(items: Sequence[Any], distance: Callable[[Any, Any], float]) -> float:
    return float(np.mean([distance(a, b) for a, b in combinations(items, 2)]))


def _cosine_distance(a: FloatImage, b: FloatImage) -> float:
    return float(1.0 - np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _cell_measure(record: Mapping[str, Any], index: int) -> CellMeasure:
    seconds = record["seconds"]
    return CellMeasure(
        cell=record["cell"],
        prompt_index=index,
        category=record.get("category", ""),
        mode=record["mode"],
        seed=int(record["seed"]),
        steps=int(record["steps"]),
        guidance=float(record["guidance"]),
        seconds=float(seconds["denoising"]) + float(seconds["decode"]),
        file=f"cells/{record['file']}",
    )


def _from_known(
    measured: Measured, known: KnownMeasures, index: int, group: Sequence[Mapping[str, Any]], scored: bool
) -> None:
    """A prompt's cells as measured while the bench ran (known.covers said all are there)."""
    for record in group:
        values = known.cells[record["cell"]]
        cell = _cell_measure(record, index)
        cell.detail = values.detail
        if scored and values.adherence is not None:
            cell.adherence = values.adherence
        if cell.mode == measured.reference:
            cell.ssim_to_reference = 1.0
        elif values.to_reference is not None:
            cell.ssim_to_reference, cell.psnr_to_reference = values.to_reference
        measured.cells.append(cell)
    for mode in measured.modes:
        if (mode, index) in known.diversity:
            measured.diversity[(mode, index)] = known.diversity[(mode, index)]


def measure_cells(
    records: Mapping[str, Mapping[str, Any]],
    load_image: Callable[[str], Image],
    modes: Sequence[str],
    prompts: Sequence[str],
    scorer: AdherenceScorer | None,
    on_cell: Callable[[], None] | None = None,
    known: KnownMeasures | None = None,
) -> Measured:
    """Measure every cell of `records` (cell id -> its record); images are read one prompt at a time,
    and only for the prompts whose numbers `known` does not hold whole."""
    reference = choose_reference(list(modes))
    by_prompt: dict[int, list[Mapping[str, Any]]] = {}
    for record in records.values():
        by_prompt.setdefault(int(record["prompt_index"]), []).append(record)
    measured = Measured(reference=reference, modes=tuple(modes), prompt_count=len(prompts), cells=[])
    if scorer is not None:
        measured.adherence_metric, measured.adherence_note = scorer.metric, scorer.note
    for index in sorted(by_prompt):
        group = by_prompt[index]
        if known is not None and known.covers(index, group, reference, scorer):
            _from_known(measured, known, index, group, scored=scorer is not None)
            if on_cell is not None:
                for _ in group:
                    on_cell()
            continue
        images = {(r["mode"], int(r["seed"])): load_image(r["cell"]) for r in group}
        scores, embeddings = scorer.measure(list(images.values()), prompts[index]) if scorer else (None, None)
        embedding_of = dict(zip(images, embeddings, strict=True)) if embeddings is not None else {}
        score_of = dict(zip(images, scores, strict=True)) if scores is not None else {}
        for record in group:
            key = (record["mode"], int(record["seed"]))
            cell = _cell_measure(record, index)
            cell.detail = high_frequency_energy(images[key])
            if (adherence := score_of.get(key)) is not None:
                cell.adherence = adherence
            ref_key = (reference, key[1])
            if key[0] == reference:
                cell.ssim_to_reference = 1.0
            elif ref_key in images:
                cell.ssim_to_reference = ssim(images[key], images[ref_key])
                cell.psnr_to_reference = psnr(images[key], images[ref_key])
            measured.cells.append(cell)
            if on_cell is not None:
                on_cell()
        for mode in modes:
            seeds = sorted(seed for m, seed in images if m == mode)
            if len(seeds) >= 2:
                thumbs = [thumbnail(images[(mode, s)]) for s in seeds]
                measured.diversity[(mode, index)] = pairwise_mean(thumbs, rms_distance)
                if embedding_of:
                    vectors = [embedding_of[(mode, s)] for s in seeds]
                    measured.clip_diversity[(mode, index)] = pairwise_mean(vectors, _cosine_distance)
    return measured


def _per_prompt(measured: Measured, mode: str, attribute: str, prompts: Sequence[int]) -> Values:
    sums: dict[int, list[float]] = {}
    for cell in measured.cells:
        if cell.mode == mode:
            value = getattr(cell, attribute)
            if math.isfinite(value):
                sums.setdefault(cell.prompt_index, []).append(value)
    return np.array([float(np.mean(sums[p])) if p in sums else math.nan for p in prompts])


def _spread(values: Mapping[tuple[str, int], float], mode: str, prompts: Sequence[int]) -> Values:
    return np.array([values.get((mode, p), math.nan) for p in prompts])


@dataclass(frozen=True)
class ModeFigures:
    mode: str
    images: int
    figures: Mapping[str, Interval]

    def values(self) -> dict[str, float | None]:
        return {key: self.figures[key].rounded() for key in BENCH_METRIC_KEYS}

    def intervals(self) -> dict[str, list[float | None]]:
        return {key: self.figures[key].bounds() for key in BENCH_METRIC_KEYS}


def mode_figures(measured: Measured, prompts: Sequence[int]) -> list[ModeFigures]:
    """Each mode over these prompts (all of them, or a category's)."""
    ref = measured.reference

    def values(mode: str, attribute: str) -> Values:
        return _per_prompt(measured, mode, attribute, prompts)

    rows = []
    for mode in measured.modes:
        seconds = values(mode, "seconds")
        figures = {
            "seconds_per_image": mean_interval(seconds),
            "speed_up": mean_interval(values(ref, "seconds"), seconds),
            "ssim_to_reference": mean_interval(values(mode, "ssim_to_reference")),
            "psnr_to_reference": Interval(None)
            if mode == ref
            else mean_interval(values(mode, "psnr_to_reference")),
            "detail_ratio": mean_interval(values(mode, "detail"), values(ref, "detail")),
            "diversity_ratio": mean_interval(
                _spread(measured.diversity, mode, prompts), _spread(measured.diversity, ref, prompts)
            ),
            "adherence": mean_interval(values(mode, "adherence")),
            "clip_diversity": mean_interval(_spread(measured.clip_diversity, mode, prompts)),
        }
        images = sum(1 for c in measured.cells if c.mode == mode and c.prompt_index in set(prompts))
        rows.append(ModeFigures(mode, images, figures))
    return rows


def bench_trilemma(measured: Measured, categories: Sequence[str]) -> dict[str, Any]:
    """report.json's `trilemma` (compare's keys, each mode's numbers by name, plus `intervals`) and
    `categories` (the same per category of prompts)."""
    everything = list(range(measured.prompt_count))
    rows = mode_figures(measured, everything)
    adherence: dict[str, Any] = {"metric": measured.adherence_metric, "note": measured.adherence_note}
    trilemma = {
        "reference": measured.reference,
        "reference_reason": reference_reason(measured.reference),
        "modes": {row.mode: row.values() | {"images": row.images} for row in rows},
        "intervals": {row.mode: row.intervals() for row in rows},
        "confidence": CONFIDENCE,
        "bootstrap": {"resamples": RESAMPLES, "seed": BOOTSTRAP_SEED, "over": "prompts"},
        "prompts": measured.prompt_count,
        "adherence": adherence,
    }
    by_category: dict[str, Any] = {}
    for category in sorted(set(categories)):
        members = [i for i, c in enumerate(categories) if c == category]
        cat_rows = mode_figures(measured, members)
        by_category[category] = {
            "prompts": len(members),
            "modes": {row.mode: row.values() for row in cat_rows},
            "intervals": {row.mode: row.intervals() for row in cat_rows},
        }
    return {"trilemma": trilemma, "categories": by_category}
