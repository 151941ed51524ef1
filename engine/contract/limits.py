"""Every numeric and text limit of a request, in one place: the engine, the CLI, the GUI's widgets, the
PNG text writer and its reader all take them from here, so that what one side accepts the other does too.
"""

from __future__ import annotations

import re

MAX_SIDE = 4096  # pixels; width and height are multiples of 8 from 8 to this
MIN_STEPS, MAX_STEPS = 1, 200
MAX_SEED = 2**63 - 1
MIN_GUIDANCE, MAX_GUIDANCE = 0.0, 30.0
# Style LoRA weights: 0 turns a style off; beyond ±10 no LoRA gives a usable image, and a weight
# like 1e30 or nan gives an all-black one.
STYLE_WEIGHT_RANGE = (-10.0, 10.0)
# Prompts: the PNG text reader refuses longer ones, so the writer must never write them.
MAX_PROMPT_CHARS = 16 * 1024
# The A1111 settings line after the prompts: each field value is capped, and so is the count.
MAX_FIELDS = 64
MAX_FIELD_VALUE = 4096
# Room for both prompts at their limit, the "Negative prompt: " label and a full settings line.
MAX_PARAMETERS_CHARS = 2 * MAX_PROMPT_CHARS + 8 * 1024
# Control characters other than tab and newline: no prompt needs them, and the reader refuses them.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_NAME_BYTES = 255  # one file or folder name, as every common file system limits it
