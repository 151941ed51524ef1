"""How the window feels: event-loop stalls during a comparison, and time to a visible window.

    .venv/bin/python tests/benchmarks/bench_gui.py [--repeats 3]

1. Launch: from starting a Python process to the main window being visible (goal <= 1.5 s), next to
   the time a process needs to `import torch, diffusers`, measured in the same run.
2. Stall: a QTimer ticks every 5 ms in the GUI thread while the real worker runs a five-mode
   comparison on the built-in model; the longest gap between ticks is the longest freeze an artist
   would feel (goal <= 50 ms). The gap while the engine loads (torch's import) is shown too.

Runs offscreen with temporary settings, cache and output folders.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAUNCH_GOAL_S = 1.5
STALL_GOAL_MS = 50.0
TICK_MS = 5

LAUNCH_CHILD = """
import sys, time
from PySide6.QtWidgets import QApplication
import gui.launcher  # the console script's module, as `fewstep` starts
from gui.app import create_window
app = QApplication([])
window = create_window(app)
window.show()
app.processEvents()
assert window.isVisible()
print(time.time(), "torch" in sys.modules)
"""

IMPORT_CHILD = "import time; t = time.perf_counter(); import torch, diffusers; print(time.perf_counter() - t)"


def child_env(scratch: Path) -> dict[str, str]:
    return dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        FEWSTEP_SETTINGS=str(scratch / "settings.json"),
        FEWSTEP_CACHE_DIR=str(scratch / "cache"),
    )


def measure_launch(scratch: Path, repeats: int) -> None:
    env = child_env(scratch)
    window_s, torch_process_s, torch_import_s = [], [], []
    for _ in range(repeats):
        start = time.time()
        done = subprocess.run(
            [sys.executable, "-c", LAUNCH_CHILD],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            check=True,
        )
        shown_at, torch_loaded = done.stdout.split()
        window_s.append(float(shown_at) - start)
        assert torch_loaded == "False", "torch was imported before the window showed"
        start = time.time()
        done = subprocess.run(
            [sys.executable, "-c", IMPORT_CHILD],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            check=True,
        )
        torch_process_s.append(time.time() - start)
        torch_import_s.append(float(done.stdout.split()[-1]))
    window = statistics.median(window_s)
    verdict = "ok" if window <= LAUNCH_GOAL_S else "OVER GOAL"
    print(f"launch to visible window:       median {window:.2f} s, best {min(window_s):.2f} s "
          f"(goal <= {LAUNCH_GOAL_S} s: {verdict}); torch imported before it: no")  # fmt: skip
    print(f"process importing torch+diffusers: median {statistics.median(torch_process_s):.2f} s "
          f"(the imports alone {statistics.median(torch_import_s):.2f} s)")  # fmt: skip


def measure_stall(scratch: Path) -> None:
    os.environ.update(child_env(scratch))
    os.environ.setdefault("FEWSTEP_THREADS", "1")
    sys.path.insert(0, str(REPO))
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from engine.contract.modes import DEFAULT_COMPARISON
    from gui.app import create_window
    from gui.state.settings import Settings, save_settings

    save_settings(Settings(output_dir=scratch / "out"))
    app = QApplication([])
    window = create_window(app)
    window.show()
    clock = QElapsedTimer()
    gaps: list[float] = []
    last = [0.0]

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)

    def run_until(signal: object, seconds: float) -> float:
        """The longest gap between ticks until signal fires, in ms."""
        gaps.clear()
        loop = QEventLoop()
        signal.connect(loop.quit)  # type: ignore[attr-defined]
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        clock.start()
        last[0] = 0.0
        timer.start()
        loop.exec()
        timer.stop()
        return max(gaps, default=0.0)

    QTimer.singleShot(0, window.start)
    load_stall = run_until(window.worker.engine_ready, 300)
    assert window.engine_info is not None, "the engine did not load"
    window.mode_panel.set_checked(DEFAULT_COMPARISON)
    window.prompt_panel.prompt.setPlainText("a lighthouse on a cliff at dusk")
    QTimer.singleShot(0, window.generate)
    started = time.perf_counter()
    stall = run_until(window.worker.job_finished, 300)
    seconds = time.perf_counter() - started
    ticks = len(gaps)
    window.close()
    verdict = "ok" if stall <= STALL_GOAL_MS else "OVER GOAL"
    print(f"longest event-loop stall, five-mode comparison: {stall:.1f} ms (goal <= {STALL_GOAL_MS:g} ms: "
          f"{verdict}); {seconds:.2f} s, {ticks} ticks, with previews, built-in model, "
          f"{os.environ['FEWSTEP_THREADS']} torch thread(s)")  # fmt: skip
    print(f"longest event-loop stall while the engine loads (torch import, model build): {load_stall:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fewstep-bench-") as folder:
        scratch = Path(folder)
        measure_launch(scratch, args.repeats)
        measure_stall(scratch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
