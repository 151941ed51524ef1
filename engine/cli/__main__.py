"""`python -m engine.cli COMMAND ...`: the same commands as `fewstep COMMAND ...`."""

import sys

from engine.cli import main

sys.exit(main())
