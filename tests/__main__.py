"""Every check CI runs, in order: ruff, no import cycles, mypy, the import contracts (import-linter), pytest.

.venv/bin/python -m tests [pytest arguments]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(step: str, command: list[str]) -> None:
    print(f"== {step}: {' '.join(command)}", flush=True)
    code = subprocess.call(command, cwd=ROOT)
    if code != 0:
        print(f"== {step} failed (exit {code})", flush=True)
        sys.exit(code)


def main() -> None:
    run("ruff", [str(BIN / "ruff"), "check", "."])
    run("ruff format", [str(BIN / "ruff"), "format", "--check", "."])
    # Between modules of engine/, gui/ and devtools/: the layer contracts do not see a cycle inside a layer.
    run("import cycles", [sys.executable, "-m", "tests.import_cycles"])
    run("mypy", [str(BIN / "mypy")])
    run("import contracts", [str(BIN / "lint-imports"), "--no-cache"])
    if os.environ.get("CI") or os.environ.get("FEWSTEP_BUNDLE") == "1":
        run("installer bundle", [sys.executable, str(ROOT / "packaging" / "smoke_test.py"), "--tarball"])
    run("pytest", [sys.executable, "-m", "pytest", *sys.argv[1:]])


if __name__ == "__main__":
    main()
