"""Strict parsing of the numbers and text a user types, shared by the CLI, the GUI and the request.

Python's own parsers are too lenient for input: int() takes "٣" and "1_000", str.isdigit() takes
"²" (which int() then refuses), and float() takes "nan", "inf" and "1e30". Every value here is plain
ASCII decimal notation, checked against the limits of engine.contract.limits.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

from engine.contract.errors import RequestError
from engine.contract.limits import (
    CONTROL_CHARACTERS,
    MAX_GUIDANCE,
    MAX_PROMPT_CHARS,
    MAX_STEPS,
    MIN_GUIDANCE,
    MIN_STEPS,
    STYLE_WEIGHT_RANGE,
)

_WHOLE = re.compile(r"[0-9]{1,9}", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]{1,9}(?:\.[0-9]{0,9})?|\.[0-9]{1,9})", re.ASCII)


def parse_whole(text: str, where: str, what: str, low: int, high: int) -> int:
    """A whole number in plain digits within [low, high]; otherwise RequestError, the message
    starting with `where` (e.g. "--steps lcm=0") and naming `what` ("steps")."""
    if not _WHOLE.fullmatch(text) or not low <= int(text) <= high:
        raise RequestError(f"{where}: {what} must be a whole number from {low} to {high}")
    return int(text)


def parse_decimal(text: str, where: str, what: str, low: float, high: float) -> float:
    """A finite decimal like 7, 7.5 or -0.8 within [low, high]; no exponents, nan or inf."""
    if not _DECIMAL.fullmatch(text):
        raise RequestError(f"{where}: {what} must be a plain number from {low:g} to {high:g}, e.g. 7.5")
    value = float(text)
    check_range(value, where, what, low, high)
    return value


def check_range(value: float, where: str, what: str, low: float, high: float) -> None:
    if not math.isfinite(value) or not low <= value <= high:
        raise RequestError(f"{where}: {what} must be a number from {low:g} to {high:g}")


def parse_steps(text: str, where: str) -> int:
    return parse_whole(text, where, "steps", MIN_STEPS, MAX_STEPS)


def parse_guidance(text: str, where: str) -> float:
    return parse_decimal(text, where, "guidance", MIN_GUIDANCE, MAX_GUIDANCE)


def parse_style_weight(text: str, where: str) -> float:
    return parse_decimal(text, where, "the style weight", *STYLE_WEIGHT_RANGE)


def check_prompt_text(text: str, what: str = "the prompt") -> None:
    """Text that can be encoded, tokenized and written into a PNG that Fewstep reads back."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Bytes that are not UTF-8 reach Python's argv as lone surrogates (PEP 383).
        raise RequestError(
            f"{what} holds bytes that are not valid UTF-8 text (at character {exc.start + 1}); re-type"
            " it, or set the terminal to UTF-8"
        ) from None
    if len(text) > MAX_PROMPT_CHARS:
        raise RequestError(f"{what} is {len(text)} characters long; shorten it to {MAX_PROMPT_CHARS} or less")
    control = CONTROL_CHARACTERS.search(text)
    if control is not None:
        raise RequestError(
            f"{what} holds a control character ({control.group()!r} at character {control.start() + 1});"
            " remove it (tabs and line breaks are fine)"
        )


def _no_gpu_driver() -> bool:
    """On Linux a CUDA (or ROCm) GPU shows as driver files; with none of them there is no GPU, told
    in microseconds instead of after seconds of importing torch. Elsewhere: cannot tell (False)."""
    if not sys.platform.startswith("linux"):
        return False
    dev = Path("/dev")
    return not (Path("/proc/driver/nvidia").exists() or (dev / "kfd").exists() or any(dev.glob("nvidia*")))


_DEVICE = re.compile(r"cpu|cuda|cuda:[0-9]{1,3}|mps", re.ASCII)
DTYPE_NAMES = ("float32", "fp32", "float16", "fp16", "bfloat16", "bf16")


def check_device_names(device: str | None, dtype: str | None) -> None:
    """The spelling of --device and --dtype, checked before torch is imported (which takes seconds);
    whether the device exists is only known after."""
    if device is not None and not _DEVICE.fullmatch(device):
        raise RequestError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps")
    if device is not None and device.startswith("cuda") and _no_gpu_driver():
        raise RequestError(
            "device cuda was asked for, but this machine has no GPU driver loaded; use --device cpu"
        )
    if dtype is not None and dtype.lower() not in DTYPE_NAMES:
        raise RequestError(f"unknown dtype {dtype!r}; use float32, float16 or bfloat16")
