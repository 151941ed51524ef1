"""Fewstep's engine: every model on the device, the five SDXL modes, and the headless CLI.

Nothing here imports Qt. Importing this package is cheap: torch and diffusers load only when a
model is loaded, so a front end can show itself first.
"""

import os

# On a 2-core machine with another busy process, OpenMP's spinning threads made generation 50 to 500
# times slower. PASSIVE only takes effect if set before torch is imported,
# which is why it lives here, at the root of every import of the engine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
