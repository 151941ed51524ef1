"""A screenshot of the built bundle's first start, on a real X server (Xvfb), with no models configured.

    .venv/bin/python packaging/bundle_screenshot.py --bundle dist/fewstep [--out docs/screenshots]

Starts the bundled binary as an artist would (no arguments, Qt's xcb platform) with an empty
settings file and cache in a temporary folder, waits until the built-in model has been built and
loaded, and grabs the screen through Qt (the environment's PySide6, on the same display). The black
root window around the application is cropped away. Needs Debian's xvfb and xauth, and for Qt's xcb
plugin libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 (without libxcb-icccm4, Qt's xcb plugin fails to load).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SCREEN = (1600, 1000)
PYTHON_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONUSERBASE")

GRAB = """
import sys
from PySide6.QtGui import QGuiApplication
app = QGuiApplication(["grab"])
screen = app.primaryScreen()
sys.exit(0 if screen.grabWindow(0).save(sys.argv[1]) else 1)
"""


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    """Xvfb on a free display number, which it writes to a pipe once it accepts connections."""
    read_end, write_end = os.pipe()
    width, height = SCREEN
    server = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write_end),
            "-screen",
            "0",
            f"{width}x{height}x24",
            "-nolisten",
            "tcp",
            "-br",
        ],
        pass_fds=(write_end,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        number = pipe.readline().strip()
    if not number:
        server.kill()
        raise RuntimeError("Xvfb did not start")
    return server, f":{number}"


def grab(display: str, dest: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = display
    subprocess.run([sys.executable, "-c", GRAB, str(dest)], env=env, check=True, capture_output=True)
    with Image.open(dest) as shot:
        box = shot.convert("RGB").getbbox()  # the black root window is (0, 0, 0)
        cropped = shot.crop(box) if box else shot.copy()
    cropped.save(dest, optimize=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "dist" / "fewstep")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--settle", type=float, default=25.0, help="seconds after the start")
    parser.add_argument(
        "--early", action="store_true", help="also keep bundle-first-start-early.png, 3 s after the start"
    )
    args = parser.parse_args(argv)
    if shutil.which("Xvfb") is None:
        print(
            "Xvfb is not installed: apt-get install -y xvfb xauth libxcb-icccm4 libxcb-keysyms1",
            file=sys.stderr,
        )
        return 2
    binary = args.bundle.resolve() / "fewstep"
    scratch = Path(tempfile.mkdtemp(prefix="fewstep-first-start-"))
    server, display = start_xvfb()
    app: subprocess.Popen[bytes] | None = None
    try:
        runtime = scratch / "xdg-runtime"
        runtime.mkdir(mode=0o700)
        env = {k: v for k, v in os.environ.items() if k not in (*PYTHON_VARIABLES, "QT_QPA_PLATFORM")}
        env.update(
            DISPLAY=display,
            FEWSTEP_CACHE_DIR=str(scratch / "cache"),
            FEWSTEP_SETTINGS=str(scratch / "settings.json"),
            XDG_RUNTIME_DIR=str(runtime),
            HOME=str(scratch / "home"),
        )
        log = scratch / "stderr.txt"
        started = time.perf_counter()
        with log.open("wb") as stderr:
            app = subprocess.Popen([str(binary)], env=env, stdout=stderr, stderr=stderr)
        args.out.mkdir(parents=True, exist_ok=True)
        early = (args.out if args.early else scratch) / "bundle-first-start-early.png"
        time.sleep(3.0)
        grab(display, early)
        time.sleep(args.settle)
        dest = args.out / "bundle-first-start.png"
        grab(display, dest)
        seconds = time.perf_counter() - started
        print(f"screenshot after {seconds:.0f} s: {dest}")
        if args.early:
            print(f"the window 3 s after the start: {early}")
        if app.poll() is not None:
            print(f"the application exited early with {app.returncode}", file=sys.stderr)
        output = log.read_text(encoding="utf-8", errors="replace").strip()
        print("application output: " + (output if output else "(none)"))
        return 0 if app.poll() is None else 1
    finally:
        if app is not None and app.poll() is None:
            app.terminate()
            try:
                app.wait(timeout=30)
            except subprocess.TimeoutExpired:
                app.kill()
        server.terminate()
        server.wait()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
