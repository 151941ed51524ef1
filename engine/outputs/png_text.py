"""The text chunks of a PNG file, read as untrusted input without decoding a pixel.

A dropped or named file can be anything. Chunks are walked one by one; only text chunks are read, within
size limits, each checked against its CRC; compressed text is inflated with a cap (a small chunk must
not inflate into gigabytes). The keywords of every text chunk are kept, since they tell which tool wrote
the file (ComfyUI writes `prompt` and `workflow`, Stability Matrix `smproj`).

A plain `tEXt` chunk is Latin-1 by the PNG standard, but several tools (Stability Matrix among them)
write UTF-8 into it; Pillow decodes it as Latin-1, which turns "café" into "cafÃ©". Here the raw bytes
are tried as UTF-8 first, which a Latin-1 text with accents almost never is, then as Latin-1.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine.contract.errors import FewstepError
from engine.files.safe_paths import open_regular

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PARAMETERS_KEYWORD = "parameters"
MAX_TEXT_CHUNK = 256 * 1024  # compressed or not; A1111's own texts are a few kilobytes
MAX_INFLATED = 256 * 1024
MAX_CHUNKS = 10_000
_TEXT_KINDS = (b"tEXt", b"zTXt", b"iTXt")


class InfotextError(FewstepError, ValueError):
    """The file or its text cannot be used at all; the message says why, in one line."""


@dataclass(frozen=True)
class PngText:
    parameters: str | None  # the A1111 `parameters` text, None when the file has none
    keywords: frozenset[str]  # every text chunk's keyword


def _read_exact(handle: BinaryIO, count: int) -> bytes:
    data = handle.read(count)
    if len(data) != count:
        raise InfotextError("the PNG file is truncated")
    return data


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_INFLATED)
    except zlib.error:
        raise InfotextError("the PNG's compressed text is damaged") from None
    if inflater.unconsumed_tail:
        raise InfotextError("the PNG's text is larger than Fewstep accepts")
    return out


def _utf8_or_latin1(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _text_of_chunk(kind: bytes, data: bytes) -> tuple[str, str]:
    """(keyword, text) of a tEXt, zTXt or iTXt chunk."""
    keyword, sep, rest = data.partition(b"\0")
    if not sep or not 1 <= len(keyword) <= 79:
        raise InfotextError("the PNG has a malformed text chunk")
    name = keyword.decode("latin-1")
    if kind == b"tEXt":
        return name, _utf8_or_latin1(rest)
    if kind == b"zTXt":
        if rest[:1] != b"\0":
            raise InfotextError("the PNG's text uses an unknown compression")
        return name, _utf8_or_latin1(_inflate(rest[1:]))
    if len(rest) < 2:
        raise InfotextError("the PNG has a malformed text chunk")
    compressed, method, rest = rest[0], rest[1], rest[2:]
    _language, _, rest = rest.partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    if compressed:
        if method != 0:
            raise InfotextError("the PNG's text uses an unknown compression")
        text = _inflate(text)
    try:
        return name, text.decode("utf-8")
    except UnicodeDecodeError:
        raise InfotextError("the PNG's text is not valid UTF-8") from None


def _walk(handle: BinaryIO, name: str) -> PngText:
    if handle.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
        raise InfotextError(f"{name} is not a PNG image")
    parameters: str | None = None
    keywords: set[str] = set()
    for _ in range(MAX_CHUNKS):
        head = handle.read(8)
        if not head:
            break  # no IEND: tolerated, as every viewer does
        if len(head) != 8:
            raise InfotextError("the PNG file is truncated")
        length, kind = struct.unpack(">I4s", head)
        if kind == b"IEND":
            break
        if kind not in _TEXT_KINDS:
            handle.seek(length + 4, 1)  # skip the data and its CRC without reading pixels
            continue
        if length > MAX_TEXT_CHUNK:
            # Another tool's large chunk (a ComfyUI workflow) is only named; a huge `parameters` is refused.
            keyword = _read_exact(handle, min(length, 80)).partition(b"\0")[0].decode("latin-1")
            if keyword == PARAMETERS_KEYWORD:
                raise InfotextError(f"{name} holds a settings text larger than Fewstep accepts")
            keywords.add(keyword)
            handle.seek(length - min(length, 80) + 4, 1)
            continue
        data = _read_exact(handle, length)
        crc = struct.unpack(">I", _read_exact(handle, 4))[0]
        if zlib.crc32(kind + data) != crc:
            raise InfotextError(f"{name} is damaged (a text chunk fails its checksum)")
        keyword, text = _text_of_chunk(kind, data)
        keywords.add(keyword)
        if keyword == PARAMETERS_KEYWORD and parameters is None:
            parameters = text
    return PngText(parameters=parameters, keywords=frozenset(keywords))


def read_png_text(path: Path) -> PngText:
    """The text chunks of a PNG; InfotextError if it is no PNG or is damaged."""
    try:
        with open_regular(path) as handle:  # a FIFO named x.png is refused, never waited on
            return _walk(handle, path.name)
    except OSError as exc:
        raise InfotextError(f"cannot read {path.name}: {exc.strerror or exc}") from None


def read_png_parameters(path: Path) -> str:
    """The `parameters` text of a PNG file; InfotextError if it is no PNG or has none."""
    found = read_png_text(path).parameters
    if found is None:
        raise InfotextError(f"{path.name} holds no generation settings (no `parameters` text)")
    return found
