"""Imports diffusers and transformers quietly, once.

Their chatter (torchvision fallbacks, LoRA load reports, progress bars) is for library developers,
not for an artist's terminal; errors still surface as exceptions.
"""

from __future__ import annotations

import os
from types import ModuleType


def quiet_diffusers() -> ModuleType:
    """Return the diffusers module with its and transformers' logging set to errors only."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights are never downloaded; say so before a lookup tries
    import transformers.utils.logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    import diffusers
    import diffusers.utils.logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    module: ModuleType = diffusers
    return module
