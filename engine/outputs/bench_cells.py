"""The units of work of `fewstep bench`: one cell is one image, a prompt x a mode x a seed.

A cell's id is derived from those three alone, so every process (a resumed run, a Ray actor) names the
same cell the same way, and its files in the bench folder are found by name. The order runs the prompts
in blocks, mode by mode inside each block: a mode switch once per block and mode, and every prompt of
a block encoded once for all its modes (the encodings of one block are kept meanwhile).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.contract.placement import comparison_order
from engine.contract.request import GenerationRequest, ModeSettings

# Prompts per block: SDXL's encodings of one prompt with its negative take about 0.6 MB on the device,
# so a block holds about 40 MB of them, while a 5-mode bench of 4 seeds switches mode once per 256 images.
BLOCK_PROMPTS = 64


@dataclass(frozen=True, order=True)
class Cell:
    prompt_index: int  # into the bench's prompt list, from 0
    mode: str
    seed: int

    @property
    def id(self) -> str:
        """The cell's name in the folder: p00012-lcm-s3 (mode names are [a-z0-9-])."""
        return f"p{self.prompt_index:05d}-{self.mode}-s{self.seed}"


def cell_order(
    prompt_count: int, modes: Sequence[str], seeds: Sequence[int], block: int = BLOCK_PROMPTS
) -> list[Cell]:
    """Every cell once, in the order a single engine should run them: blocks of prompts, and in each
    block the modes in the engine's cheapest switching order (base-UNet modes, then full UNets)."""
    ordered = comparison_order(modes)
    cells: list[Cell] = []
    for start in range(0, prompt_count, block):
        for mode in ordered:
            for index in range(start, min(start + block, prompt_count)):
                cells.extend(Cell(index, mode, seed) for seed in seeds)
    return cells


def cell_request(
    text: str, negative: str, settings: ModeSettings, seed: int, size: tuple[int, int] | None
) -> GenerationRequest:
    """The request of one cell: exactly `fewstep compare`'s for that prompt, mode and seed."""
    width, height = size if size else (None, None)
    return GenerationRequest(
        prompt=text, negative_prompt=negative, seeds=(seed,), width=width, height=height, modes=(settings,)
    )
