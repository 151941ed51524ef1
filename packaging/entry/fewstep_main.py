"""The bundle's entry point (PyInstaller runs this file as __main__): the `fewstep` command.

Kept in a folder of its own, because PyInstaller puts the entry script's folder on the module path.
"""

from __future__ import annotations

import multiprocessing
import sys

from gui.launcher import main

if __name__ == "__main__":
    # A frozen program that starts a child process runs itself again; this makes the child do its job.
    multiprocessing.freeze_support()
    sys.exit(main())
