"""Child processes for the kill tests: they save for ever, through the product's own writers, until
the test kills them with SIGKILL, at a random moment or from inside the atomic write itself.

python -m tests.soak.writers compare OUT_FOLDER [--inject POINT N]
python -m tests.soak.writers store OUTPUT_ROOT [--inject POINT N]

POINT is where the N-th call kills the process: fsync (the data written, not yet renamed), before
(just before a rename or link puts a file in place), after (just after it).
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.cli.folder_lock import FolderBusyError, folder_lock
from engine.contract.request import ComparisonResult, GenerationRequest, ModeResult, ModeSettings, Timings
from engine.outputs.comparison_files import RunContext
from engine.outputs.run_writer import write_comparison_folder

MODES = ("ddim", "lcm", "lightning")
CONTEXT = RunContext(model_label="soak", device="cpu")


def request(seed: int) -> GenerationRequest:
    return GenerationRequest(
        prompt=f"a red circle, run {seed}",
        seeds=(seed,),
        modes=tuple(ModeSettings(mode=m, steps=2) for m in MODES),
    )


def result(mode: str, seed: int) -> ModeResult:
    rng = np.random.default_rng(seed)
    return ModeResult(
        mode=mode,
        seed=seed,
        steps=2,
        guidance=1.0,
        scheduler="X",
        timesteps=(999.0, 499.0),
        timings=Timings(text_encoding=0.0, switch=0.0, denoising=0.0, per_step=(0.0, 0.0), decode=0.0),
        image=rng.integers(0, 255, (96, 96, 3), dtype=np.uint8),
    )


def comparison(seed: int) -> ComparisonResult:
    return ComparisonResult(
        request=request(seed), results=tuple(result(m, seed) for m in MODES), width=96, height=96
    )


def inject(point: str, nth: int) -> None:
    """Kill this process with SIGKILL at the nth call of the chosen point of an atomic write."""
    calls = itertools.count(1)

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def wrap(original: Callable[..., Any], when: str) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            hit = next(calls) == nth
            if hit and when == "before":
                die()
            try:
                return original(*args, **kwargs)
            finally:
                # Also when the call raised (a link onto a name a killed writer took in the same
                # second): otherwise the nth call would pass and the writer would never stop.
                if hit:
                    die()

        return wrapped

    if point == "fsync":
        os.fsync = wrap(os.fsync, "after")
    else:
        os.replace = wrap(os.replace, point)
        os.link = wrap(os.link, point)


def write_comparisons(out: Path, *, locked: bool = False, rounds: int | None = None) -> int:
    """Write comparison after comparison into `out`, each whole; with `locked`, as the CLI does
    (the folder's lock held, leftovers of dead writers removed). Returns how many were refused."""
    from engine.outputs.atomic import remove_stale_parts, restore_interrupted_swap

    busy = 0
    for round_ in itertools.count() if rounds is None else range(rounds):
        seed = os.getpid() * 1000 + round_
        if not locked:
            write_comparison_folder(out, comparison(seed), CONTEXT)
        else:
            try:
                with folder_lock(out):
                    restore_interrupted_swap(out)
                    remove_stale_parts(out.parent, out.name)
                    write_comparison_folder(out, comparison(seed), CONTEXT)
            except FolderBusyError:
                busy += 1
        if round_ == 0:
            print("ready", flush=True)
    return busy


def write_runs(root: Path) -> None:
    """Save runs as the GUI's worker does: each image as it finishes, the run record last."""
    from engine.outputs.run_writer import RunWriter, new_run_id

    for job in itertools.count(1):
        writer = RunWriter(root, new_run_id(job), request(job), CONTEXT)
        for mode in MODES:
            writer.save(result(mode, job))
        writer.finish("finished")
        if job == 1:
            print("ready", flush=True)


def main(argv: list[str]) -> None:
    kind, target = argv[0], Path(argv[1])
    if len(argv) == 5 and argv[2] == "--inject":
        inject(argv[3], int(argv[4]))
    if kind == "compare":
        write_comparisons(target)
    elif kind == "locked":
        busy = write_comparisons(target, locked=True, rounds=int(argv[2]))
        print(f"busy {busy}", flush=True)
    else:
        write_runs(target)


if __name__ == "__main__":
    main(sys.argv[1:])
