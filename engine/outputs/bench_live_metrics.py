"""Each cell of a bench measured as its writer saves it, so that the report reads no image it was given.

The bench's writer thread (engine.cli.bench_writer) calls add() with the image it has just saved: the
measures are the report's own (engine.outputs.bench_metrics) on the same pixels, so a report built from
them equals one built from the files alone. What needs two images is taken when the second arrives:
SSIM and PSNR to the reference of the same prompt and seed (the other image read back from its PNG, so
that no image is held for long), diversity once a mode has every seed of a prompt (its 32-pixel
thumbnails held until then). The page's thumbnail is written here too.

Only what this process made is known: a resumed bench's earlier cells, and any prompt they share, are
measured by the report from the files, as before. A CLIP scorer is never run here (it would take the
engine's threads and memory while cells run); the pocket scorer is, being a few milliseconds of numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.outputs.bench_adherence import AdherenceScorer
from engine.outputs.bench_cells import Cell
from engine.outputs.bench_folder import BenchFolder
from engine.outputs.bench_metrics import CellValues, KnownMeasures, pairwise_mean
from engine.outputs.trilemma import (
    FloatImage,
    Image,
    choose_reference,
    high_frequency_energy,
    psnr,
    rms_distance,
    ssim,
    thumbnail,
)


class LiveMeasures:
    """The measures of the cells saved by this process, for write_bench_report's `known`. Used by one
    thread (the writer's)."""

    def __init__(
        self,
        folder: BenchFolder,
        modes: Sequence[str],
        prompts: Sequence[str],
        seeds: int,
        scorer: AdherenceScorer | None,
    ) -> None:
        self.folder = folder
        self.reference = choose_reference(list(modes))
        self.prompts = prompts
        self.seeds = seeds
        self.scorer = scorer
        self.known = KnownMeasures(scorer.metric if scorer is not None else None)
        self._references: set[tuple[int, int]] = set()  # (prompt, seed) whose reference this process saved
        self._waiting: dict[tuple[int, int], list[Cell]] = {}  # cells saved before their reference
        self._thumbs: dict[tuple[str, int], dict[int, FloatImage]] = {}  # until a mode has every seed

    def add(self, cell: Cell, image: Image) -> None:
        """Measure a cell just saved (its PNG and record are in the folder)."""
        self.folder.thumbnail(cell.id, image)
        adherence = None
        if self.scorer is not None:
            scores, _ = self.scorer.measure([image], self.prompts[cell.prompt_index])
            adherence = scores[0]
        values = CellValues(detail=high_frequency_energy(image), adherence=adherence)
        self.known.cells[cell.id] = values
        pair = (cell.prompt_index, cell.seed)
        if cell.mode == self.reference:
            self._references.add(pair)
            for other in self._waiting.pop(pair, []):
                self._to_reference(other, self.folder.read_image(other.id), image)
        elif pair in self._references:
            reference = Cell(cell.prompt_index, self.reference, cell.seed)
            self._to_reference(cell, image, self.folder.read_image(reference.id))
        else:
            self._waiting.setdefault(pair, []).append(cell)
        if self.seeds >= 2:
            group = self._thumbs.setdefault((cell.mode, cell.prompt_index), {})
            group[cell.seed] = thumbnail(image)
            if len(group) == self.seeds:  # in seed order, as the report takes them
                thumbs = [group[seed] for seed in sorted(group)]
                self.known.diversity[(cell.mode, cell.prompt_index)] = pairwise_mean(thumbs, rms_distance)
                del self._thumbs[(cell.mode, cell.prompt_index)]

    def _to_reference(self, cell: Cell, image: Image, reference: Image) -> None:
        self.known.cells[cell.id].to_reference = (ssim(image, reference), psnr(image, reference))
