"""Settings restored from a PNG's AUTOMATIC1111 `parameters` text, read as untrusted input.

A dropped file can be anything. The PNG is read chunk by chunk without decoding pixels; only a text
chunk named `parameters` is kept, within size limits, and compressed text is inflated with a cap
(a small chunk must not inflate into gigabytes). The text is then parsed strictly: a known field
with a malformed value rejects the whole text rather than restoring something the artist did not make.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine.contract.modes import MODES
from engine.contract.request import MAX_SEED, MAX_SIDE, MAX_STEPS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TEXT_CHUNK = 256 * 1024  # compressed or not; A1111's own texts are a few kilobytes
MAX_PARAMETERS_CHARS = 32 * 1024
MAX_PROMPT_CHARS = 16 * 1024
MAX_FIELDS = 64
MAX_FIELD_VALUE = 4096
MAX_CHUNKS = 10_000
MAX_GUIDANCE = 30.0

# A1111 writes `Key: value` pairs, a value JSON-quoted when it holds `,`, `:` or a newline.
_FIELD = re.compile(r'\s*([A-Za-z][^:,"]{0,63}):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"(\d{1,5})x(\d{1,5})")
_NEGATIVE = "Negative prompt:"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# Where an A1111 image names no Fewstep mode, its sampler (and schedule) tells the nearest one.
_SAMPLER_MODES = {
    ("ddim", ""): "ddim",
    ("lcm", ""): "lcm-lora",
    ("dpm++ 2m", ""): "dpmpp-2m",
    ("euler", "sgm uniform"): "lightning-lora",
    ("euler", "trailing"): "lightning-lora",
    ("euler", ""): "euler",
}


class ParametersError(ValueError):
    """The file or its text cannot be used; the message says why, in one line."""


@dataclass(frozen=True, kw_only=True)
class RestoredSettings:
    prompt: str
    negative_prompt: str = ""
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    mode: str | None = None  # Fewstep's mode, named or inferred from the sampler
    mode_named: bool = False  # True when the file names a Fewstep mode, False when inferred
    steps: int | None = None
    guidance: float | None = None
    model: str | None = None


# --- the PNG container ---------------------------------------------------------------------------


def _read_exact(handle: BinaryIO, count: int) -> bytes:
    data = handle.read(count)
    if len(data) != count:
        raise ParametersError("the PNG file is truncated")
    return data


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_PARAMETERS_CHARS * 4)
    except zlib.error:
        raise ParametersError("the PNG's compressed text is damaged") from None
    if inflater.unconsumed_tail:
        raise ParametersError("the PNG's text is larger than Fewstep accepts")
    return out


def _text_of_chunk(kind: bytes, data: bytes) -> tuple[str, str] | None:
    """(keyword, text) of a tEXt, zTXt or iTXt chunk; None for a chunk that is not text."""
    keyword, sep, rest = data.partition(b"\0")
    if not sep or not 1 <= len(keyword) <= 79:
        raise ParametersError("the PNG has a malformed text chunk")
    name = keyword.decode("latin-1")
    if kind == b"tEXt":
        return name, rest.decode("latin-1")
    if kind == b"zTXt":
        if rest[:1] != b"\0":
            raise ParametersError("the PNG's text uses an unknown compression")
        return name, _inflate(rest[1:]).decode("latin-1")
    if kind == b"iTXt":
        if len(rest) < 2:
            raise ParametersError("the PNG has a malformed text chunk")
        compressed, method, rest = rest[0], rest[1], rest[2:]
        _language, _, rest = rest.partition(b"\0")
        _translated, _, text = rest.partition(b"\0")
        if compressed:
            if method != 0:
                raise ParametersError("the PNG's text uses an unknown compression")
            text = _inflate(text)
        try:
            return name, text.decode("utf-8")
        except UnicodeDecodeError:
            raise ParametersError("the PNG's text is not valid UTF-8") from None
    return None


def read_png_parameters(path: Path) -> str:
    """The `parameters` text of a PNG file; ParametersError if it is no PNG or has none."""
    try:
        with path.open("rb") as handle:
            if handle.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
                raise ParametersError(f"{path.name} is not a PNG image")
            for _ in range(MAX_CHUNKS):
                length, kind = struct.unpack(">I4s", _read_exact(handle, 8))
                if kind == b"IEND":
                    break
                if kind in (b"tEXt", b"zTXt", b"iTXt"):
                    if length > MAX_TEXT_CHUNK:
                        raise ParametersError(f"{path.name} holds a text chunk larger than Fewstep accepts")
                    data = _read_exact(handle, length)
                    crc = struct.unpack(">I", _read_exact(handle, 4))[0]
                    if zlib.crc32(kind + data) != crc:
                        raise ParametersError(f"{path.name} is damaged (a text chunk fails its checksum)")
                    text = _text_of_chunk(kind, data)
                    if text is not None and text[0] == "parameters":
                        return text[1]
                else:
                    handle.seek(length + 4, 1)  # skip the data and its CRC without reading pixels
    except OSError as exc:
        raise ParametersError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    raise ParametersError(f"{path.name} holds no generation settings (no `parameters` text)")


# --- the text -------------------------------------------------------------------------------------


def _parse_fields(line: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    position = 0
    while position < len(line):
        match = _FIELD.match(line, position)
        if match is None or match.end() == position:
            raise ParametersError(f"unreadable settings near {line[position : position + 30]!r}")
        key, value = match.group(1).strip(), match.group(2).strip()
        if value.startswith('"'):
            try:
                decoded = json.loads(value)
            except json.JSONDecodeError:
                raise ParametersError(f"{key}: a quoted value is malformed") from None
            if not isinstance(decoded, str):
                raise ParametersError(f"{key}: a quoted value is malformed")
            value = decoded
        if len(value) > MAX_FIELD_VALUE:
            raise ParametersError(f"{key}: the value is too long")
        if key in fields:
            raise ParametersError(f"{key} is given twice")
        fields[key] = value
        if len(fields) > MAX_FIELDS:
            raise ParametersError("too many settings")
        position = match.end()
        while position < len(line) and line[position] == " ":
            position += 1
    return fields


def _int(fields: dict[str, str], key: str, low: int, high: int) -> int | None:
    text = fields.get(key)
    if text is None:
        return None
    if not text.isdigit() or len(text) > 20 or not low <= int(text) <= high:
        raise ParametersError(f"{key} {text!r} must be a whole number from {low} to {high}")
    return int(text)


def _guidance(fields: dict[str, str]) -> float | None:
    text = fields.get("CFG scale")
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ParametersError(f"CFG scale {text!r} is not a number") from None
    if not 0.0 <= value <= MAX_GUIDANCE:  # also refuses nan and inf
        raise ParametersError(f"CFG scale {text!r} must be between 0 and {MAX_GUIDANCE:g}")
    return value


def _size(fields: dict[str, str]) -> tuple[int | None, int | None]:
    text = fields.get("Size")
    if text is None:
        return None, None
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ParametersError(f"Size {text!r} must look like 1024x1024")
    width, height = int(match.group(1)), int(match.group(2))
    if not (8 <= width <= MAX_SIDE and 8 <= height <= MAX_SIDE and width % 8 == 0 and height % 8 == 0):
        raise ParametersError(f"Size {text} must be multiples of 8 up to {MAX_SIDE}")
    return width, height


def _mode(fields: dict[str, str]) -> tuple[str | None, bool]:
    named = fields.get("Fewstep mode")
    if named is not None:
        if named not in MODES:
            raise ParametersError(f"Fewstep mode {named!r} is unknown")
        return named, True
    sampler = fields.get("Sampler", "").lower()
    schedule = fields.get("Schedule type", "").lower()
    inferred = _SAMPLER_MODES.get((sampler, schedule)) or _SAMPLER_MODES.get((sampler, ""))
    return inferred, False


def parse_parameters(text: str) -> RestoredSettings:
    """AUTOMATIC1111's three parts: prompt lines, an optional `Negative prompt:` part, the settings line."""
    if len(text) > MAX_PARAMETERS_CHARS:
        raise ParametersError(f"the settings text is longer than {MAX_PARAMETERS_CHARS} characters")
    if _CONTROL.search(text):
        raise ParametersError("the settings text holds control characters")
    lines = text.replace("\r\n", "\n").strip("\n").split("\n")
    if len(lines) < 2 or "Steps:" not in lines[-1]:
        raise ParametersError("no settings line (Steps: ...) at the end of the text")
    fields = _parse_fields(lines[-1])
    body = lines[:-1]
    negative_at = next((i for i, line in enumerate(body) if line.startswith(_NEGATIVE)), None)
    if negative_at is None:
        prompt, negative = "\n".join(body), ""
    else:
        prompt = "\n".join(body[:negative_at])
        negative = "\n".join([body[negative_at][len(_NEGATIVE) :].lstrip(), *body[negative_at + 1 :]])
    if len(prompt) > MAX_PROMPT_CHARS or len(negative) > MAX_PROMPT_CHARS:
        raise ParametersError(f"a prompt is longer than {MAX_PROMPT_CHARS} characters")
    width, height = _size(fields)
    mode, named = _mode(fields)
    model = fields.get("Model")
    return RestoredSettings(
        prompt=prompt,
        negative_prompt=negative,
        seed=_int(fields, "Seed", 0, MAX_SEED),
        width=width,
        height=height,
        mode=mode,
        mode_named=named,
        steps=_int(fields, "Steps", 1, MAX_STEPS),
        guidance=_guidance(fields),
        model=model,
    )


def restore_from_png(path: Path) -> RestoredSettings:
    return parse_parameters(read_png_parameters(path))
