"""How the window feels: event-loop stalls during a comparison, and time to a visible window.

    .venv/bin/python tests/benchmarks/bench_gui.py [--repeats 3]

1. Launch: from starting a Python process to the main window being visible (goal <= 1.5 s), next to
   the time a process needs to `import torch, diffusers`, measured in the same run.
2. Stall: a QTimer ticks every 5 ms in the GUI thread while the real worker runs a five-mode
   comparison on the built-in model; the longest gap between ticks is the longest freeze an artist
   would feel (goal <= 50 ms). The gap while the engine loads (torch's import) is shown too.
3. History: the longest gap while the window reads a history of 200 runs with 1024 px images (the
   records and their thumbnails, read off the GUI thread), next to how long the same reads take
   when done in one go, which is what the window would freeze for if it read them itself.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    from gui.state.jobs import EventKind, WorkerEvent
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

    def run_until(signal: Any, seconds: float, kind: EventKind | None = None) -> float:
        """The longest gap between ticks until signal fires (with a worker event of this kind), in ms."""
        gaps.clear()
        loop = QEventLoop()

        def quit_on(*args: object) -> None:
            if kind is None or (isinstance(args[0], WorkerEvent) and args[0].kind is kind):
                loop.quit()

        signal.connect(quit_on)
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        clock.start()
        last[0] = 0.0
        timer.start()
        loop.exec()
        timer.stop()
        signal.disconnect(quit_on)
        return max(gaps, default=0.0)

    QTimer.singleShot(0, window.start)
    load_stall = run_until(window.worker.reported, 300, EventKind.ENGINE_READY)
    assert window.engine_info is not None, "the engine did not load"
    window.mode_panel.set_checked(DEFAULT_COMPARISON)
    window.prompt_panel.prompt.setPlainText("a lighthouse on a cliff at dusk")
    QTimer.singleShot(0, window.generate)
    started = time.perf_counter()
    stall = run_until(window.worker.reported, 300, EventKind.FINISHED)
    seconds = time.perf_counter() - started
    ticks = len(gaps)
    verdict = "ok" if stall <= STALL_GOAL_MS else "OVER GOAL"
    print(f"longest event-loop stall, five-mode comparison: {stall:.1f} ms (goal <= {STALL_GOAL_MS:g} ms: "
          f"{verdict}); {seconds:.2f} s, {ticks} ticks, with previews, built-in model, "
          f"{os.environ['FEWSTEP_THREADS']} torch thread(s)")  # fmt: skip
    print(f"longest event-loop stall while the engine loads (torch import, model build): {load_stall:.0f} ms")
    measure_history(scratch / "out", window, run_until)
    window.close()


HISTORY_RUNS = 200


def fill_history(root: Path) -> None:
    """HISTORY_RUNS copies of the run just saved, each with its own 1024 px PNG, as a long history."""
    import json

    import numpy as np
    from PIL import Image

    from engine.outputs.run_writer import HISTORY_FOLDER

    record_path = next((root / HISTORY_FOLDER).glob("*.json"))
    record = json.loads(record_path.read_text())
    ramp = np.linspace(0, 255, 1024, dtype=np.float32)
    pixels = np.stack(
        [np.add.outer(ramp, ramp) / 2, np.tile(ramp, (1024, 1)), np.tile(ramp[:, None], (1, 1024))], -1
    )
    noise = np.random.default_rng(0).integers(0, 16, (1024, 1024, 3))
    picture = Image.fromarray((pixels + noise).clip(0, 255).astype(np.uint8))
    day = root / "2026-01-01"
    day.mkdir(parents=True, exist_ok=True)
    for index in range(HISTORY_RUNS):
        run = f"20260101-{index // 3600:02d}{index // 60 % 60:02d}{index % 60:02d}-j{index}"
        picture.save(day / f"{run}.png")
        for image in record["images"]:
            image["png"] = f"2026-01-01/{run}.png"
        (root / HISTORY_FOLDER / f"{run}.json").write_text(json.dumps(dict(record, run=run)))


def measure_history(root: Path, window: Any, run_until: Callable[[object, float], float]) -> None:
    from gui.state.image_store import load_history
    from gui.widgets.history import THUMBNAIL
    from gui.widgets.images import read_image

    fill_history(root)
    started = time.perf_counter()
    records, _damaged = load_history(root)
    records_ms = (time.perf_counter() - started) * 1000
    for record in records:
        read_image(record.images[0].png, THUMBNAIL)
    in_one_go_ms = (time.perf_counter() - started) * 1000
    window.output.reload_history(root)
    stall = run_until(window.history.thumbnails_done, 300)
    shown = len(window.history.records())
    verdict = "ok" if stall <= STALL_GOAL_MS else "OVER GOAL"
    print(f"longest event-loop stall reading a history of {shown} runs and their thumbnails: {stall:.1f} ms "
          f"(goal <= {STALL_GOAL_MS:g} ms: {verdict}); the same reads in one go take {in_one_go_ms:.0f} ms, "
          f"the records alone {records_ms:.0f} ms")  # fmt: skip


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
