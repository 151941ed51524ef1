"""One bench cell run on a loaded engine: the pure step a local bench loops over and a Ray actor (#24)
would call. It writes nothing; the bench's one writer (engine.outputs.bench_folder) saves the result."""

from __future__ import annotations

from engine.contract.request import GenerationRequest, ModeResult
from engine.runtime.engine import Engine, SharedEncodings


def run_cell(engine: Engine, request: GenerationRequest, shared: SharedEncodings) -> ModeResult:
    """The one image of a one-mode, one-seed request; the prompt encoded only if `shared` lacks it."""
    return engine.run(request, prompt_encodings=shared).results[0]
