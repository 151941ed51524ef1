"""What every recipe shares: one thread, seeding, atomic checkpoints, a time budget and a log."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch


def one_thread() -> None:
    """Training shares two cores with other work: exactly one torch thread."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1) if torch.get_num_interop_threads() != 1 else None


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="checkpoint and log folder (required)")
    parser.add_argument("--minutes", type=float, default=10.0, help="total training time, across resumes")
    parser.add_argument("--checkpoint-minutes", type=float, default=3.0)
    return parser


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    """Write then rename, so a killed process never leaves half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(dict(state), tmp)
    tmp.replace(path)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    return state


def run_state(
    optimizer: torch.optim.Optimizer, rng: np.random.Generator, step: int, elapsed: float
) -> dict[str, Any]:
    """What a recipe needs besides its weights to resume exactly where it stopped."""
    return {
        "optimizer": optimizer.state_dict(),
        "rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "step": step,
        "elapsed": elapsed,
    }


def restore_run_state(
    state: Mapping[str, Any], optimizer: torch.optim.Optimizer, rng: np.random.Generator
) -> tuple[int, float]:
    """The inverse of run_state: returns (step, elapsed seconds)."""
    optimizer.load_state_dict(state["optimizer"])
    rng.bit_generator.state = state["rng"]
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), float(state["elapsed"])


class Log:
    """Lines of JSON appended to ``out/log.jsonl`` and echoed to stdout."""

    def __init__(self, out: Path, name: str = "log.jsonl"):
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / name

    def __call__(self, **record: Any) -> None:
        record = {"time": time.strftime("%H:%M:%S"), **record}
        line = json.dumps(record, default=float)
        print(line, flush=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


class Clock:
    """Training time across resumes: ``elapsed`` carries on from the checkpoint."""

    def __init__(self, elapsed: float = 0.0):
        self.offset = elapsed
        self.start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return self.offset + time.monotonic() - self.start

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Time spent inside does not count (validation is not training)."""
        before = time.monotonic()
        try:
            yield
        finally:
            self.start += time.monotonic() - before


class EMA:
    """Exponential moving average of a module's float tensors."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: torch.nn.Module, decay: float | None = None) -> None:
        d = self.decay if decay is None else decay
        for key, value in module.state_dict().items():
            shadow = self.shadow[key]
            if value.is_floating_point():
                shadow.mul_(d).add_(value.detach(), alpha=1 - d)
            else:
                shadow.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.shadow = {k: v.clone() for k, v in state.items()}
