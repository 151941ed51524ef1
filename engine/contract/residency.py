"""Which distilled UNets stay on the device, and which wait in CPU RAM until their mode runs.

The base UNet (and the LoRA twins over its weights), the text encoders and the VAE are always on
the device. The full LCM and Lightning UNets each weigh as much as the base UNet (5 GB in fp16 for
SDXL): on a card that cannot hold three UNets they wait in CPU RAM and are moved in when their mode
runs (the previous one moved out), which adds the copy to that mode's switch time.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

RESIDENCY_MARGIN = 1.5 * 1024**3  # activations and the VAE decode at 1024x1024 need room too


class Residency(StrEnum):
    AUTO = "auto"  # ALL if it fits in free device memory, else ONE
    ALL = "all"  # every UNet on the device: switches cost nothing
    ONE = "one"  # at most one full distilled UNet on the device at a time


def plan_residency(
    policy: Residency, *, device_type: str, free_bytes: int | None, unet_bytes: Mapping[str, int]
) -> Residency:
    """The policy in force: AUTO resolved from the free memory measured after the base loaded."""
    if policy is not Residency.AUTO:
        return policy
    if device_type == "cpu" or free_bytes is None:
        return Residency.ALL  # the device is the CPU's RAM: nowhere else to wait
    needed = sum(unet_bytes.values()) + RESIDENCY_MARGIN
    return Residency.ALL if needed <= free_bytes else Residency.ONE
