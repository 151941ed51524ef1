"""One Ray actor of `fewstep bench --ray`: one engine, loaded once, on one GPU (or a share of the CPUs).

A plain class: engine.cli.bench_ray wraps it with ray.remote when it starts the actors, so this module
never imports Ray. The actor checks its model files as it starts and reports them to the driver before
any cell runs; it writes no file, and returns each cell's image to the driver's one writer.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cli.bench_work import CellWork
from engine.contract.modes import ModelRole
from engine.contract.request import GenerationRequest, ModeResult
from engine.contract.residency import Residency
from engine.files.model_paths import ModelPaths
from engine.outputs.bench_cells import Cell
from engine.outputs.comparison_files import RunContext

if TYPE_CHECKING:  # torch loads in the actor, never in the driver that only writes
    from engine.cli.bench_runner import CellRunner


@dataclass(frozen=True)
class ActorSetup:
    """Everything an actor needs to load its engine; picklable, sent once."""

    index: int
    paths: ModelPaths
    work: CellWork
    device: str | None
    dtype: str | None
    threads: int  # torch's thread count in this actor: its share of the node's CPUs unless --threads
    cpus: float  # the CPUs Ray reserved for it
    gpus: float
    residency: str
    vram: float | None


def _files_of(paths: ModelPaths) -> list[Path]:
    """Every file or folder the engine will read."""
    found = [p for p in (paths.get(role) for role in ModelRole) if p is not None]
    found += [p for p in (paths.vae, paths.base_config) if p is not None]
    return found + [style.path for style in paths.styles]


def local_paths(paths: ModelPaths) -> ModelPaths:
    """The driver's paths as this node reads them: the built-in model's files are where this node's
    Fewstep is installed, which need not be where the driver's is."""
    if not paths.builtin:
        return paths
    from engine.pocket.model import builtin_model_paths

    return replace(builtin_model_paths(), styles=paths.styles, vae=paths.vae)


def _ray_gpu_ids(setup: ActorSetup) -> list[str]:
    """The GPUs Ray gave this actor (it sets CUDA_VISIBLE_DEVICES to them): none for a CPU actor."""
    if not setup.gpus:
        return []
    import ray  # only ever inside a Ray actor that holds a GPU

    return [str(gpu) for gpu in ray.get_gpu_ids()]


def cuda_problem(setup: ActorSetup, gpu_ids: list[str]) -> str | None:
    """Why an actor that Ray gave a GPU cannot use it: torch sees no CUDA there (a CPU-only torch
    wheel, a driver that does not match, CUDA_VISIBLE_DEVICES emptied); None when it can.

    Refused, not run on the CPU: the engine would fall back to the CPU without a word (plan_device
    picks the CPU where torch has no CUDA), and a cluster user who asked for one engine per GPU would get
    one on a CPU core instead: hundreds of times slower, holding its cells to the end of the bench while
    the GPUs wait, and putting CPU seconds into a report whose speed column is the GPUs'. A node set up
    wrong is said at once, naming it, before any cell; --device cpu runs the CPUs on purpose (then no
    GPU is reserved at all)."""
    if not setup.gpus:
        return None
    import torch

    if torch.cuda.is_available():
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    return (
        f"has GPU {', '.join(gpu_ids) or '?'} from Ray, but torch there sees no CUDA device (torch"
        f" {torch.__version__}, CUDA_VISIBLE_DEVICES={visible})"
    )


class BenchActor:
    def __init__(self, setup: ActorSetup) -> None:
        self.setup = setup
        self.node = socket.gethostname()
        self.paths = local_paths(setup.paths)
        # Each a phrase after "node NAME": the driver joins them into its one line.
        self.problems = [f"lacks {path}" for path in _files_of(self.paths) if not path.exists()]
        if not self.problems:
            try:  # the same checks of names and headers that the driver made on its own copy
                self.paths.checked()
            except Exception as exc:  # every refusal the engine would make, reported, not raised
                self.problems.append(f"refuses its copy of the files: {exc}")
        self.gpu_ids = _ray_gpu_ids(setup)
        self.device_problem = self.check_device()
        self._runner: CellRunner | None = None
        self._context: RunContext | None = None

    def check_device(self) -> str | None:
        """The device this actor was given, checked before any cell (see cuda_problem)."""
        return cuda_problem(self.setup, self.gpu_ids)

    def hello(self) -> dict[str, Any]:
        """Where this actor runs, which of its files are missing or unreadable, and whether it can use
        the GPU Ray gave it (no problem of either kind: ready)."""
        return {
            "index": self.setup.index,
            "node": self.node,
            "pid": os.getpid(),
            "problems": self.problems,
            "gpu_ids": self.gpu_ids,
            "device_problem": self.device_problem,
        }

    def load(self) -> RunContext:
        """The engine, loaded once per actor (a restarted actor loads again on its first cell)."""
        if self._runner is None or self._context is None:
            from engine.cli.bench_runner import CellRunner
            from engine.runtime.device import plan_device
            from engine.runtime.engine import Engine

            setup = self.setup
            plan = plan_device(setup.device, setup.dtype, setup.threads)
            engine = Engine(self.paths, plan, residency=Residency(setup.residency), vram=setup.vram)
            self._runner = CellRunner(engine, setup.work)
            self._context = engine.run_context()
        return self._context

    def run(self, cell: Cell) -> tuple[GenerationRequest, ModeResult, RunContext, dict[str, Any]]:
        """One cell's image and what its record says: how it was made, and where (a restarted actor
        may start on another node)."""
        context = self.load()
        assert self._runner is not None  # load() made it
        return (*self._runner.run(cell), context, self.worker())

    def worker(self) -> dict[str, Any]:
        """What the cell records say about where they ran (report.json's workers)."""
        setup = self.setup
        return {
            "runner": "ray",
            "actor": setup.index,
            "node": self.node,
            "gpus": setup.gpus,
            "gpu_ids": self.gpu_ids,  # as Ray numbers the node's GPUs (CUDA_VISIBLE_DEVICES)
            "cpus": setup.cpus,
            "threads": setup.threads,
        }
