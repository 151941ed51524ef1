"""Random cancels, from another thread at random moments, as the GUI's Stop and live mode send them:
afterwards the engine still gives bit-identical images, and threads and memory are flat."""

from __future__ import annotations

import random
import statistics
import threading
import time

import numpy as np

from engine.contract.errors import JobCancelled
from engine.contract.request import GenerationRequest, ModeSettings
from engine.runtime.engine import Engine
from engine.runtime.memory import process_rss
from tests.soak.conftest import COUNTS, report

REQUEST = GenerationRequest(
    prompt="a red circle on a blue square",
    seeds=(7,),
    modes=tuple(ModeSettings(mode=m, steps=3) for m in ("ddim", "lcm", "lightning-lora")),
)
RSS_SLACK = 64 * 1024 * 1024  # allocator noise; a leak of one run's tensors per cancel is far more


def images(engine: Engine) -> list[np.ndarray]:
    return [r.image for r in engine.run(REQUEST).results]


def cancel_once(engine: Engine, delay: float) -> float | None:
    """Run REQUEST on a thread, cancel it after `delay` s; seconds from the cancel to the stop,
    or None when the run finished first."""
    stop = threading.Event()
    stopped_at: list[float] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            engine.run(REQUEST, should_cancel=stop.is_set)
        except JobCancelled:
            stopped_at.append(time.perf_counter())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    time.sleep(delay)
    asked = time.perf_counter()
    stop.set()
    thread.join(60)
    assert not thread.is_alive() and not errors, errors
    return stopped_at[0] - asked if stopped_at else None


def test_random_cancels_leave_the_engine_bit_exact_and_flat(engine_all: Engine) -> None:
    rng = random.Random(20)
    reference = images(engine_all)
    started = time.perf_counter()
    images(engine_all)
    full_run = time.perf_counter() - started
    for _ in range(2):  # warm the allocator before measuring
        cancel_once(engine_all, rng.uniform(0, full_run))
    threads, rss = threading.active_count(), process_rss()
    latencies = []
    finished = 0
    for _ in range(COUNTS.cancels):
        latency = cancel_once(engine_all, rng.uniform(0, 0.8 * full_run))
        if latency is None:
            finished += 1
        else:
            latencies.append(latency)
    after = images(engine_all)
    for expected, got in zip(reference, after, strict=True):
        np.testing.assert_array_equal(expected, got)
    assert threading.active_count() == threads
    grown = (process_rss() or 0) - (rss or 0)
    assert rss is None or grown < RSS_SLACK, f"RSS grew by {grown / 2**20:.0f} MiB"
    assert latencies, "no cancel landed inside a run"
    report(
        f"cancels: {COUNTS.cancels} ({len(latencies)} mid-run, {finished} after the end); bit-exact after;"
        f" median cancel {statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
        f" (full run {full_run:.2f} s); threads {threads} -> {threading.active_count()};"
        f" RSS {grown / 2**20:+.1f} MiB"
    )
