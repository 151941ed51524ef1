"""`fewstep --self-test`: does this installation (a virtual environment or the packaged bundle) work?

Prints the versions, the Qt platform and the device; asks diffusers whether it sees torch,
transformers and peft; then runs a 2-step generation of every mode on the built-in model through
the real worker thread, as the window does. One PASS or FAIL line per check; exit status 0 only when
every check passed. Everything goes to stdout: a clean run writes nothing to stderr, so a packaging
smoke test can treat any line there as a failure.

Nothing is saved: the generations stay in memory. The built-in model is built into the usual cache
on first use (FEWSTEP_CACHE_DIR moves it), as the application itself would.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QTimer, Slot

from engine.contract.info import EngineInfo
from engine.contract.modes import MODES
from engine.contract.request import GenerationRequest, ModeSettings
from engine.pocket.model import BUILTIN_ROLES
from gui.state.jobs import EngineConfig, EventKind, FinishedRun, Job, WorkerEvent
from gui.state.worker import EngineWorker, LoadedEngine, load_engine

STEPS = 2
PROMPT = "self-test: a red apple on a wooden table"
DEFAULT_TIMEOUT_S = 600.0

# (what the line says, the distribution whose metadata holds its version)
VERSIONS: tuple[tuple[str, str], ...] = (
    ("fewstep", "fewstep"),
    ("torch", "torch"),
    ("diffusers", "diffusers"),
    ("transformers", "transformers"),
    ("peft", "peft"),
    ("accelerate", "accelerate"),
    ("huggingface_hub", "huggingface_hub"),
    ("safetensors", "safetensors"),
    ("tokenizers", "tokenizers"),
    ("numpy", "numpy"),
    ("pillow", "pillow"),
    ("PySide6", "PySide6-Essentials"),
)


@dataclass
class Report:
    """The checks so far, printed as they come."""

    write: Callable[[str], None]
    failures: list[str] = field(default_factory=list)
    passes: int = 0

    def check(self, name: str, ok: bool, detail: str) -> None:
        if ok:
            self.passes += 1
        else:
            self.failures.append(name)
        self.write(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")

    def info(self, text: str) -> None:
        self.write(f"      {text}")


def check_versions(report: Report) -> None:
    report.info(f"python {platform.python_version()} ({sys.executable}), {platform.platform()}")
    frozen = bool(getattr(sys, "frozen", False))
    report.info("packaged bundle (PyInstaller)" if frozen else "running from a Python environment")
    for label, distribution in VERSIONS:
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            # diffusers reads the same metadata to decide which backends exist.
            report.check(f"version {label}", False, f"no package metadata for {distribution}")
        else:
            report.check(f"version {label}", True, version)


def check_resources(report: Report) -> None:
    """The shipped folders, found where the engine looks for them (the package data engine.resources, also in a bundle)."""
    from engine.files.resources import sdxl_config_dir  # torch-free

    config = sdxl_config_dir()
    found = (config / "model_index.json").is_file() and (config / "tokenizer_2" / "merges.txt").is_file()
    report.check("resources sdxl-base-config", found, str(config) if found else f"missing: {config}")
    from engine.files.resources import pocket_dir
    from engine.pocket.model import pocket_model_paths

    pocket = pocket_dir()
    shipped = pocket_model_paths(pocket) is not None
    report.check("resources pocket model", shipped, str(pocket) if shipped else f"missing: {pocket}")
    from engine.files.resources import resources_root

    script = resources_root() / "replay" / "reproduce.py"
    report.check("resources reproduce.py", script.is_file(), str(script))


def check_metrics(report: Report) -> None:
    """The trilemma's metrics (scikit-image, and scipy under it) load and measure two known images."""
    import numpy as np

    from engine.outputs.trilemma import TrilemmaAccumulator

    try:
        image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        accumulator = TrilemmaAccumulator(["ddim", "lcm"])
        accumulator.add("ddim", 0, image, 1.0)
        accumulator.add("lcm", 0, image[::-1].copy(), 0.5)
        row = accumulator.result().row("lcm")
    except Exception as exc:  # an import missing from a bundle shows here, not in the window
        report.check("trilemma metrics", False, f"{type(exc).__name__}: {exc}")
        return
    ok = row.ssim_to_reference is not None and row.ssim_to_reference < 1.0 and row.speed_up == 2.0
    report.check("trilemma metrics", ok, f"SSIM {row.ssim_to_reference:.3f}, speed-up {row.speed_up:g}")


class SelfTestRun(QObject):
    """Drives the worker: load the engine, then one 2-step job per mode; quits the event loop when done."""

    def __init__(
        self,
        report: Report,
        worker: EngineWorker,
        *,
        backend_results: list[tuple[str, bool, str]],
        timeout_s: float,
        on_done: Callable[[], None],
    ) -> None:
        super().__init__()
        self.report = report
        self.worker = worker
        self._on_done = on_done
        self._started = time.perf_counter()
        self._job_started: dict[int, float] = {}
        self._modes: dict[int, str] = {}
        self._done = False
        # Filled on the worker thread before its ENGINE_READY or ENGINE_FAILED event.
        self.backend_results = backend_results
        worker.reported.connect(self._on_engine_event)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._on_timeout)
        self._timer.start(int(timeout_s * 1000))

    @Slot(object)
    def _on_engine_event(self, event: WorkerEvent) -> None:
        if event.kind is EventKind.STATUS:
            self.report.info(f"engine: {event.message}")
        elif event.kind is EventKind.ENGINE_READY and event.info is not None:
            self._on_engine_ready(event.info)
        elif event.kind is EventKind.ENGINE_FAILED:
            self._on_engine_failed(event.message)

    def _on_job_event(self, event: WorkerEvent) -> None:
        """The events of the jobs this run submitted, and no other's (routed by the worker)."""
        job_id = event.job_id if event.job_id is not None else -1
        if event.kind is EventKind.STARTED:
            self._job_started[job_id] = time.perf_counter()
        elif event.kind is EventKind.FINISHED and event.finished is not None:
            self._on_job_finished(event.finished)
        elif event.kind is EventKind.FAILED:
            self._on_job_failed(job_id, event.message)
        elif event.kind is EventKind.CANCELLED:
            self._on_job_cancelled(job_id)

    def _on_engine_ready(self, info: EngineInfo) -> None:
        for name, ok, detail in self.backend_results:
            self.report.check(name, ok, detail)
        elapsed = time.perf_counter() - self._started
        self.report.check("engine", True, f"{info.model_label} loaded in {elapsed:.1f} s")
        self.report.check("device", True, info.device)
        # Every mode whose files the built-in model ships must run; the field's others need the user's files.
        shipped = [m for m in MODES if all(r in BUILTIN_ROLES for r in MODES[m].required_roles)]
        missing = [mode for mode in shipped if mode not in info.available_modes]
        for mode in missing:
            self.report.check(f"mode {mode}", False, "the built-in model lacks a file this mode needs")
        for job_id, mode in enumerate((m for m in MODES if m in info.available_modes), start=1):
            self._modes[job_id] = mode
            request = GenerationRequest(
                prompt=PROMPT, seeds=(0,), modes=(ModeSettings(mode=mode, steps=STEPS),)
            )
            self.worker.submit(Job(id=job_id, request=request), self._on_job_event)
        if not self._modes:
            self._finish()

    def _on_engine_failed(self, message: str) -> None:
        for name, ok, detail in self.backend_results:
            self.report.check(name, ok, detail)
        self.report.check("engine", False, message)
        self._finish()

    def _on_job_finished(self, event: FinishedRun) -> None:
        mode = self._modes.pop(event.job_id, "?")
        seconds = time.perf_counter() - self._job_started.get(event.job_id, self._started)
        results = event.comparison.results
        if len(results) != 1:
            skipped = "; ".join(f"{s.mode} {s.reason}" for s in event.comparison.skipped)
            self.report.check(f"generate {mode}", False, f"{len(results)} images, expected 1 ({skipped})")
        else:
            result = results[0]
            image = result.image
            height, width = event.comparison.height, event.comparison.width
            problems = []
            if result.steps != STEPS:
                problems.append(f"ran {result.steps} steps, not {STEPS}")
            if image.shape != (height, width, 3) or str(image.dtype) != "uint8":
                problems.append(f"image is {image.dtype} {image.shape}, not uint8 ({height}, {width}, 3)")
            elif int(image.max()) == int(image.min()):
                problems.append("image is one flat colour (NaN latents decode to that)")
            detail = "; ".join(problems) or (
                f"{STEPS} steps {result.scheduler}, {width}x{height}, {seconds:.2f} s"
                + (f" ({len(result.warnings)} contract warning(s))" if result.warnings else "")
            )
            self.report.check(f"generate {mode}", not problems, detail)
        self._finish_if_idle()

    def _on_job_failed(self, job_id: int, message: str) -> None:
        mode = self._modes.pop(job_id, "?")
        self.report.check(f"generate {mode}", False, message)
        self._finish_if_idle()

    def _on_job_cancelled(self, job_id: int) -> None:
        if self._done:
            return
        mode = self._modes.pop(job_id, "?")
        self.report.check(f"generate {mode}", False, "cancelled")
        self._finish_if_idle()

    @Slot()
    def _on_timeout(self) -> None:
        pending = ", ".join(self._modes.values()) or "loading the engine"
        self.report.check(
            "timeout", False, f"not done after {self._timer.interval() / 1000:.0f} s: {pending}"
        )
        self._finish()

    def _finish_if_idle(self) -> None:
        if not self._modes:
            self._finish()

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        self._timer.stop()
        self._on_done()


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="fewstep --self-test", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds (default %(default)s)"
    )
    args = parser.parse_args(list(argv))
    started = time.perf_counter()

    def write(line: str) -> None:
        print(line, flush=True)

    report = Report(write=write)
    write("fewstep self-test")
    check_versions(report)
    check_resources(report)
    check_metrics(report)

    # As run_app: passive OpenMP threads, and library chatter stays out of the output.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import qVersion
    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0] if sys.argv else "fewstep"])
    app.setApplicationName("Fewstep")
    from gui.state.gui_collector import GuiThreadCollector

    GuiThreadCollector(app).start()  # as the window runs: collections on this thread alone
    report.check("qt", True, f"platform {app.platformName()}, Qt {qVersion()}, PySide6 {pyside_version}")

    backend_results: list[tuple[str, bool, str]] = []

    def factory(config: EngineConfig, say: Callable[[str], None]) -> LoadedEngine:
        # Runs on the worker thread, where torch and diffusers may be imported.
        from engine.runtime.self_check import backend_checks

        backend_results.extend((c.name, c.ok, c.detail) for c in backend_checks())
        return load_engine(config, say)

    worker = EngineWorker(EngineConfig(paths=None), factory=factory)
    run = SelfTestRun(
        report, worker, backend_results=backend_results, timeout_s=args.timeout, on_done=app.quit
    )
    worker.start()
    app.exec()
    worker.stop()
    del run  # kept alive until here: its slots receive the worker's signals

    total = report.passes + len(report.failures)
    seconds = time.perf_counter() - started
    if report.failures:
        write(f"self-test FAILED: {len(report.failures)} of {total} checks ({', '.join(report.failures)})")
        return 1
    write(f"self-test PASSED: all {total} checks in {seconds:.1f} s")
    return 0
