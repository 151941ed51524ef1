"""`fewstep bench --ray auto|ADDRESS`: the cells of a bench run by engines in Ray actors, one per GPU (or,
without GPUs, each with a share of the CPUs), while the driver keeps the one writer of the folder.

Ray is the optional extra `fewstep[cluster]`: imported here only, inside functions, so the base
install, the bundle and the window never load it.

- Cells go out from one queue in the bench's order (blocks of prompts, mode by mode), one at a time and
  at most IN_FLIGHT per actor: each actor meets the modes in turn, switching rarely.
- An actor that dies (killed, out of memory) is restarted by Ray (max_restarts) and loads its engine
  again, and Ray runs the cells it held again on it (max_task_retries). One that dies for good (its
  restarts spent, its node gone) hands its cells back to the front of the driver's queue, for the
  others. The driver writes a cell only when its result arrives, and each cell once, so none is lost
  and none is written twice.
- Every actor checks its model files as it starts; a node that lacks one stops the bench, naming the
  node and the file, before any cell runs. So does an actor that Ray gave a GPU which torch cannot see
  there (engine.cli.bench_actor.cuda_problem says why it is refused rather than run on the CPU).
"""

from __future__ import annotations

import argparse
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.cli.arguments import UsageError
from engine.cli.bench_actor import ActorSetup, BenchActor
from engine.cli.bench_work import CellDone, CellWork
from engine.files.model_paths import ModelPaths
from engine.outputs.bench_cells import Cell

# Restarts of one actor before the bench gives it up: an actor killed again and again (a node out of
# memory on every load) should stop the bench, not loop.
MAX_RESTARTS = 3
# Cells queued on an actor at once: the next one is already there when one finishes, so the actor
# never waits on the driver's round trip; more would only pile up cells that a death must hand back.
IN_FLIGHT = 2
# How long actors may take to be placed and check their files (a node may be starting).
START_SECONDS = 300.0
ACTOR_PREFIX = "fewstep-bench-"
INSTALL_HINT = "--ray needs Ray: pip install 'fewstep[cluster]' (or -e '.[cluster]' in a checkout)"


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


@dataclass
class _Actor:
    handle: Any
    index: int
    held: list[tuple[Any, Cell]] = field(default_factory=list)  # (object ref, cell) in flight


@dataclass(frozen=True)
class Share:
    """What each actor is given: Ray's reservation and torch's thread count."""

    actors: int
    gpus: float
    cpus: float
    threads: int

    def describe(self) -> str:
        each = f"1 GPU and {self.cpus:g} CPU" if self.gpus else f"{self.cpus:g} CPUs"
        return f"{self.actors} Ray actor{'s' * (self.actors != 1)}, each with {each}, {self.threads} torch threads"


def plan_share(
    resources: dict[str, float],
    nodes: int,
    actors: int | None,
    threads: int | None,
    device: str | None = None,
) -> Share:
    """One actor per GPU; without GPUs (or with --device cpu), one per node unless --ray-actors says,
    sharing the CPUs evenly. UsageError where the cluster cannot hold what was asked for (Ray would
    wait for it forever)."""
    gpus = 0 if device == "cpu" else int(resources.get("GPU", 0))
    if device == "cuda" and not gpus:
        raise UsageError("--device cuda: the Ray cluster has no GPUs; give --device cpu, or leave it out")
    cpus = int(resources.get("CPU", 0))
    count = actors if actors is not None else (gpus or max(1, nodes))
    if gpus:
        if count > gpus:
            raise UsageError(f"--ray-actors {count}: the cluster has {gpus} GPUs, one engine each")
        # One CPU reserved for each GPU actor (it feeds the GPU); torch may use its node's share.
        return Share(count, 1, 1, threads or max(1, cpus // count))
    if cpus < count:
        raise UsageError(f"--ray-actors {count}: the cluster has {cpus} CPUs, at least one an actor")
    share = cpus // count
    return Share(count, 0, share, threads or share)


def connect(address: str) -> bool:
    """Joins the cluster at ADDRESS, or for `auto` the one RAY_ADDRESS names, else the one started on
    this machine, else a new local one (Ray's own order). True when this call joined, so the bench
    leaves again at its end (ray.shutdown stops a local cluster it started; a joined one runs on)."""
    ray = _ray()
    if ray.is_initialized():  # already joined by this process (a test, a notebook): use it as it is
        return False
    try:
        ray.init(
            address=None if address == "auto" else address,
            logging_level=logging.WARNING,
            log_to_driver=False,  # the actors' warnings come back with their cells, said once
        )
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise UsageError(f"--ray {address}: cannot join the Ray cluster ({exc})") from None
    return True


class RayPool:
    """The actors of one bench, and the driver's queue of its cells."""

    def __init__(self, ray: Any, actors: list[_Actor], share: Share, started_ray: bool) -> None:
        self.ray = ray
        self.actors = actors
        self.share = share
        self.started_ray = started_ray

    @classmethod
    def start(
        cls, args: argparse.Namespace, paths: ModelPaths, work: CellWork, say: Callable[[str], None]
    ) -> RayPool:
        """Joins the cluster and starts the actors, each checking its files; UsageError naming the node
        and the file where one is missing, before any cell runs."""
        ray = _ray()
        started = connect(args.ray)
        pool: RayPool | None = None
        try:
            nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
            share = plan_share(ray.cluster_resources(), nodes, args.ray_actors, args.threads, args.device)
            remote = ray.remote(BenchActor)
            run = uuid.uuid4().hex[:8]
            actors = []
            for index in range(share.actors):
                setup = ActorSetup(
                    index=index,
                    paths=paths,
                    work=work,
                    device=args.device,
                    dtype=args.dtype,
                    threads=share.threads,
                    cpus=share.cpus,
                    gpus=share.gpus,
                    residency=args.residency,
                    vram=args.vram,
                )
                handle = remote.options(
                    name=f"{ACTOR_PREFIX}{run}-{index}",
                    num_cpus=share.cpus,
                    num_gpus=share.gpus,
                    max_restarts=MAX_RESTARTS,
                    # Every call retried on the restarted actor: a call sent while it restarts fails
                    # at once otherwise (ActorUnavailableError), and one death would look like several.
                    max_task_retries=-1,
                ).remote(setup)
                actors.append(_Actor(handle, index))
            pool = cls(ray, actors, share, started)
            pool._check_files()
            # The engines load while the driver opens the folder; a load's error comes with the first cell.
            for actor in actors:
                actor.handle.load.remote()
            say(f"on Ray ({ray.get_runtime_context().gcs_address}): {share.describe()}")
            return pool
        except BaseException:
            if pool is not None:
                pool.close()
            elif started:
                ray.shutdown()
            raise

    def _check_files(self) -> None:
        ray = self.ray
        refs = [actor.handle.hello.remote() for actor in self.actors]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=START_SECONDS)
        if len(ready) < len(refs):
            raise UsageError(
                f"--ray: {len(refs) - len(ready)} of {len(refs)} actors did not start within"
                f" {START_SECONDS:.0f} s (does the cluster have the CPUs or GPUs free?)"
            )
        try:
            hellos = ray.get(refs)
        except ray.exceptions.RayError as exc:  # its constructor failed: most often an import
            lines = [line for line in str(exc).splitlines() if line.strip()]
            raise UsageError(
                f"--ray: an actor could not start ({lines[-1].strip() if lines else type(exc).__name__});"
                " every node needs fewstep[cluster] installed, at the driver's version"
            ) from None
        problems = [f"node {hello['node']} {problem}" for hello in hellos for problem in hello["problems"]]
        if devices := [h for h in hellos if h.get("device_problem")]:
            where = "; ".join(
                f"actor {h['index']} on node {h['node']} {h['device_problem']}" for h in devices
            )
            raise UsageError(
                f"--ray: {where}: install a CUDA build of torch and the NVIDIA driver on every GPU node,"
                " or give --device cpu to run on the CPUs instead"
            )
        if problems:
            raise UsageError(
                f"--ray: {'; '.join(problems)}: every node needs the model files at the same path, or on"
                " a shared volume (docs/ray.md)"
            )

    def results(self, todo: Sequence[Cell]) -> Iterator[CellDone]:
        """Every cell of `todo` once, as the actors finish them (not in order)."""
        ray = self.ray
        queue = deque(todo)
        finished: set[Cell] = set()
        alive = list(self.actors)
        while queue or any(actor.held for actor in alive):
            for actor in alive:
                while queue and len(actor.held) < IN_FLIGHT:
                    cell = queue.popleft()
                    actor.held.append((actor.handle.run.remote(cell), cell))
            refs = [ref for actor in alive for ref, _ in actor.held]
            (ref,), _ = ray.wait(refs, num_returns=1)
            actor = next(a for a in alive if any(r == ref for r, _ in a.held))
            cell = next(c for r, c in actor.held if r == ref)
            try:
                request, result, context, worker = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                # Dead for good, its restarts spent: the cells it held go out again, first, to the others.
                queue.extendleft(reversed([c for _, c in actor.held]))
                actor.held.clear()
                alive.remove(actor)
                if not alive:
                    raise RuntimeError(
                        f"every Ray actor died (each restarted up to {MAX_RESTARTS} times); the cells done"
                        " are saved: rerun the same command to resume"
                    ) from None
                continue
            except ray.exceptions.RayTaskError as exc:
                raise exc.as_instanceof_cause() from None  # the engine's own error, as a local run raises it
            actor.held = [(r, c) for r, c in actor.held if r != ref]
            if cell in finished:  # a duplicate cannot arise from the queue; guarded all the same
                continue
            finished.add(cell)
            yield CellDone(cell, request, result, context, worker)

    def close(self) -> None:
        for actor in self.actors:
            try:
                self.ray.kill(actor.handle, no_restart=True)
            except Exception:  # already gone; nothing to free
                continue
        if self.started_ray:
            self.ray.shutdown()
