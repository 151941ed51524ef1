"""Build the bundle from a clean checkout and smoke-test the built binary (qutebrowser's habit).

    .venv/bin/python packaging/smoke_test.py [--worktree] [--keep] [--tarball]
    .venv/bin/python packaging/smoke_test.py --bundle dist/fewstep      # test a bundle already built

Clones the repository's HEAD into a temporary folder (so uncommitted files cannot leak into the
build; --worktree builds this working tree instead, for quick iterations), builds it with
packaging/build.py, then starts the built binary offscreen, away from the virtual environment, with
a private cache and settings: `fewstep --help`, then `fewstep --self-test`. It fails on a non-zero
exit, on a missing PASS line, and on any line on stderr that ALLOWED_STDERR does not list (it lists
none). Reports the bundle's size, the build time and the start times.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MIB = 1024 * 1024

# Lines a healthy bundle may print on stderr. None: library chatter is silenced by the application,
# and a Qt warning or a Python warning is something to look at.
ALLOWED_STDERR: tuple[re.Pattern[str], ...] = ()

# Variables that would let the bundle lean on the developer's Python instead of its own files.
PYTHON_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONUSERBASE")


@dataclass
class Captured:
    """A process's output, each line with the seconds since the process started."""

    stdout: list[tuple[float, str]] = field(default_factory=list)
    stderr: list[tuple[float, str]] = field(default_factory=list)
    returncode: int | None = None
    seconds: float = 0.0

    def first_stdout(self, pattern: str) -> float | None:
        return next((t for t, line in self.stdout if re.search(pattern, line)), None)


def run_captured(command: Sequence[str], env: dict[str, str], timeout: float, echo: bool) -> Captured:
    captured = Captured()
    started = time.perf_counter()

    def pump(stream: IO[str], into: list[tuple[float, str]], prefix: str) -> None:
        for line in stream:
            into.append((time.perf_counter() - started, line.rstrip("\n")))
            if echo:
                print(f"{prefix}{line}", end="", flush=True)

    with subprocess.Popen(
        list(command), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        threads = [
            threading.Thread(target=pump, args=(process.stdout, captured.stdout, "  | ")),
            threading.Thread(target=pump, args=(process.stderr, captured.stderr, "  ! ")),
        ]
        for thread in threads:
            thread.start()
        try:
            captured.returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            captured.returncode = None
        for thread in threads:
            thread.join()
    captured.seconds = time.perf_counter() - started
    return captured


def clean_clone(dest: Path) -> Path:
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(dest)], check=True)
    head = subprocess.run(
        ["git", "-C", str(dest), "log", "-1", "--format=%h %s"], check=True, capture_output=True, text=True
    )
    print(f"cloned {REPO} at {head.stdout.strip()}", flush=True)
    return dest


def bundle_env(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PYTHON_VARIABLES}
    runtime = scratch / "xdg-runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        FEWSTEP_CACHE_DIR=str(scratch / "cache"),
        FEWSTEP_SETTINGS=str(scratch / "settings.json"),
        # Qt warns on stderr when XDG_RUNTIME_DIR is unset (as it is for root or in CI).
        XDG_RUNTIME_DIR=str(runtime),
    )
    return env


def expected_lines(source: Path) -> list[str]:
    """The PASS lines every healthy self-test prints, with the modes of the checkout under test."""
    sys.path.insert(0, str(source))
    from engine.contract.modes import MODES  # torch-free
    from engine.pocket.model import BUILTIN_ROLES  # torch-free

    # The modes the built-in model's files allow; the rest of the field needs the user's files.
    shipped = [m for m, spec in MODES.items() if all(r in BUILTIN_ROLES for r in spec.required_roles)]

    backends = ("torch", "transformers", "peft", "accelerate", "safetensors", "peft-lora")
    return [
        "PASS  qt: ",
        *(f"PASS  backend {b}: " for b in backends),
        "PASS  engine: ",
        *(f"PASS  generate {mode}: " for mode in shipped),
        "self-test PASSED",
    ]


def unexpected_stderr(captured: Captured) -> list[str]:
    return [line for _, line in captured.stderr if not any(p.search(line) for p in ALLOWED_STDERR)]


def bundle_size(bundle: Path) -> int:
    """Bytes in the bundle, each file once (PyInstaller links some libraries to one another)."""
    return sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())


def executable(bundle: Path) -> Path:
    if sys.platform == "win32":
        return bundle / "fewstep-cli.exe"
    return bundle / "fewstep"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worktree", action="store_true", help="build this working tree, not a clean clone")
    parser.add_argument("--bundle", type=Path, help="test this built bundle folder; build nothing")
    parser.add_argument("--tarball", action="store_true", help="also make the Linux tarball")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for the self-test")
    args = parser.parse_args(argv)

    wall = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="fewstep-smoke-"))
    problems: list[str] = []
    try:
        build_seconds = None
        if args.bundle is not None:
            source, bundle = REPO, args.bundle.resolve()
        else:
            source = REPO if args.worktree else clean_clone(scratch / "src")
            out = scratch / "dist"
            build_started = time.perf_counter()
            command = [
                sys.executable,
                str(source / "packaging" / "build.py"),
                "--source",
                str(source),
                "--out",
                str(out),
                "--work",
                str(scratch / "work"),
            ]
            if not args.tarball:
                command.append("--no-tarball")
            subprocess.run(command, check=True)
            build_seconds = time.perf_counter() - build_started
            bundle = out / "fewstep"
        binary = executable(bundle)
        env = bundle_env(scratch)

        print(f"$ {binary} --help", flush=True)
        helped = run_captured([str(binary), "--help"], env, timeout=120, echo=False)
        if helped.returncode != 0 or not any("usage: fewstep" in line for _, line in helped.stdout):
            problems.append(f"--help exited {helped.returncode} without the usage text")
        problems += [f"stderr of --help: {line}" for line in unexpected_stderr(helped)]

        print(f"$ {binary} --self-test", flush=True)
        tested = run_captured([str(binary), "--self-test"], env, timeout=args.timeout, echo=True)
        if tested.returncode != 0:
            problems.append(f"--self-test exited {tested.returncode}")
        printed = [line for _, line in tested.stdout]
        for expected in expected_lines(source):
            if not any(line.startswith(expected) for line in printed):
                problems.append(f"no line starting {expected!r}")
        problems += [f"FAIL line: {line}" for line in printed if line.startswith("FAIL")]
        problems += [f"unexpected stderr: {line}" for line in unexpected_stderr(tested)]

        print("\n== smoke test report", flush=True)
        print(f"bundle: {bundle}: {bundle_size(bundle) / MIB:.0f} MiB")
        if build_seconds is not None:
            print(f"build (clone to bundle): {build_seconds:.0f} s")
        print(f"start, `fewstep --help`: {helped.seconds:.2f} s")
        qt_at = tested.first_stdout(r"^(PASS|FAIL)  qt: ")
        ready_at = tested.first_stdout(r"^(PASS|FAIL)  engine: ")
        if qt_at is not None:
            print(f"start, self-test to a QApplication: {qt_at:.2f} s")
        if ready_at is not None:
            print(
                f"start, self-test to the engine loaded (built-in model built on first use): {ready_at:.2f} s"
            )
        print(f"self-test: {tested.seconds:.1f} s in all")
        print(f"smoke test: {time.perf_counter() - wall:.0f} s in all")
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    for problem in problems:
        print(f"SMOKE FAIL: {problem}", flush=True)
    print("smoke test " + ("FAILED" if problems else "PASSED"), flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
