"""The soak tests at full counts (100 cancels, 1000 edits, 50 kills), printing their figures.

.venv/bin/python -m tests.soak [pytest arguments]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    env = {**os.environ, "FEWSTEP_SOAK": "full"}
    command = [sys.executable, "-m", "pytest", "tests/soak", "-q", *sys.argv[1:]]
    sys.exit(subprocess.call(command, cwd=ROOT, env=env))
