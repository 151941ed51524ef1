"""The cells of a bench run on one loaded engine: what the local bench loops over and what each Ray actor
(engine.cli.bench_actor) holds, so that both make a cell's image the same way, bit for bit.

It writes nothing: the bench's one writer (engine.outputs.bench_folder) saves what it returns.
"""

from __future__ import annotations

from engine.cli.bench_cell import run_cell
from engine.cli.bench_work import CellWork
from engine.contract.request import GenerationRequest, ModeResult
from engine.outputs.bench_cells import BLOCK_PROMPTS, Cell, cell_request
from engine.runtime.engine import Engine, SharedEncodings


class CellRunner:
    """One engine's cells. Each prompt is encoded once for all the modes it meets while its block of
    prompts lasts (a mode-by-mode order meets it once per mode), as a comparison encodes it once."""

    def __init__(self, engine: Engine, work: CellWork) -> None:
        self.engine = engine
        self.work = work
        self.with_negative = engine.needs_negative(tuple(work.modes.values()))
        self._shared: dict[int, SharedEncodings] = {}
        self._block = -1

    def run(self, cell: Cell) -> tuple[GenerationRequest, ModeResult]:
        if cell.prompt_index // BLOCK_PROMPTS != self._block:
            self._block = cell.prompt_index // BLOCK_PROMPTS
            self._shared.clear()  # the previous block's encodings are done with
        text, negative = self.work.prompts[cell.prompt_index]
        encodings = self._shared.setdefault(
            cell.prompt_index, SharedEncodings(text, negative, self.with_negative)
        )
        request = cell_request(text, negative, self.work.modes[cell.mode], cell.seed, self.work.size)
        return request, run_cell(self.engine, request, encodings)
