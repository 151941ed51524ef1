"""Fewstep against plain diffusers, route by route, every mode: ``python -m tests.parity_run ROOT FILE
CONFIG`` prints one JSON object.

Run as a child process so that the caller can pick torch's kernels with ``ATEN_CPU_CAPABILITY``
(read once, when torch loads). ROOT holds a built tiny set, FILE is its base as an original single
file and CONFIG that file's config folder. For each route (the folder, the single file) the engine's
image of each mode at its card settings is compared with plain diffusers run as the model card says
from the same files; then the two routes' engine images are compared with each other. Each
comparison is reported as [largest difference in grey levels, number of values that differ].
"""

from __future__ import annotations

import os

# One thread on both sides of every comparison: the thread count changes summation orders too.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["FEWSTEP_THREADS"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from devtools.tiny_model import build_tiny_model_set
from engine.contract.modes import DEFAULT_COMPARISON
from engine.contract.request import GenerationRequest, ModeSettings
from engine.runtime.engine import Engine
from tests.conftest import model_paths_of
from tests.plain_diffusers import CARDS, BaseFiles
from tests.rounding import route_difference

PROMPT = "a large red circle on a blue background"
SEED = 1234


def engine_images(engine: Engine) -> dict[str, np.ndarray]:
    request = GenerationRequest(
        prompt=PROMPT, seeds=(SEED,), modes=tuple(ModeSettings(mode=m) for m in DEFAULT_COMPARISON)
    )
    return {r.mode: r.image for r in engine.run(request).results}


def main(argv: list[str]) -> int:
    root, single_file, config = (Path(a) for a in argv)
    torch.set_num_threads(1)
    models = build_tiny_model_set(root)  # already built: only its paths are read
    routes = {"folder": BaseFiles(models.base), "single-file": BaseFiles(single_file, config)}
    same_route: dict[str, dict[str, tuple[int, int]]] = {}
    ours: dict[str, dict[str, np.ndarray]] = {}
    for name, base in routes.items():
        engine = Engine(replace(model_paths_of(models), base=base.path, base_config=base.config))
        ours[name] = engine_images(engine)
        same_route[name] = {
            mode: route_difference(ours[name][mode], card(models, base, PROMPT, SEED))
            for mode, card in CARDS.items()
        }
    across = {mode: route_difference(ours["single-file"][mode], ours["folder"][mode]) for mode in CARDS}
    report = {
        "capability": torch.backends.cpu.get_cpu_capability(),
        "same_route": same_route,
        "across_routes": across,
        "values": int(ours["folder"]["ddim"].size),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
