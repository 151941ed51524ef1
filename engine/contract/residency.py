"""The residency choice an artist can make: which full distilled UNets stay on the device.

The full LCM and Lightning UNets each weigh as much as the base UNet (5 GB in fp16 for SDXL). AUTO
leaves the choice to the placement planner (engine.contract.placement), which decides from the free
device memory where every part lives; ALL and ONE force the older, coarser choices.
"""

from __future__ import annotations

from enum import StrEnum


class Residency(StrEnum):
    AUTO = "auto"  # the placement planner decides from the free device memory
    ALL = "all"  # every part on the device: switches cost nothing
    ONE = "one"  # at most one full distilled UNet on the device at a time
