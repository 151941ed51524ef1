"""Reads safetensors files one tensor at a time, so that loading never stalls the window's thread.

safetensors' load_file is one call over the whole file: it maps the file, and the last tensor to go
unmaps it all, with the GIL held: for a 5 GB UNet that took 0.34 to 0.42 s (0.65 s for the 6.9 GB
SDXL base), during which the GUI thread could not run. Here each tensor is read into a buffer of its
own with a plain file read (which releases the GIL while the disk works), converted to the engine's
dtype at once (a torch operation, also without the GIL), and its buffer freed alone: no step holds
the GIL longer than one tensor's allocation. Reading tensor by tensor also gives the load a measure
of its progress, and the conversion on the way keeps a single copy of each weight in memory.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

Progress = Callable[[float], None]

_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_HEADER_LIMIT = 100 * 1024 * 1024
_PAGE = 4096


def read_header(handle: Any, path: Path) -> tuple[int, dict[str, Any]]:
    """The data section's offset and the header's tensor entries (no __metadata__)."""
    prefix = handle.read(8)
    if len(prefix) != 8:
        raise ValueError(f"{path.name} is not a safetensors file (too short)")
    (length,) = struct.unpack("<Q", prefix)
    if length > _HEADER_LIMIT:
        raise ValueError(f"{path.name} is not a safetensors file (header of {length} bytes)")
    header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    return 8 + length, header


def _read_into(handle: Any, buffer: torch.Tensor, path: Path) -> None:
    view = memoryview(buffer.numpy())  # type: ignore[arg-type]
    filled = 0
    while filled < len(view):
        count = handle.readinto(view[filled:])  # the GIL is released while the disk works
        if not count:
            raise ValueError(f"{path.name} is truncated: a tensor ends past the end of the file")
        filled += count


def _placed_like_mmap(size: int, file_offset: int) -> torch.Tensor:
    """An uninitialised byte buffer whose address sits where a mapping of the whole file would put
    this tensor, relative to a page: CPU kernels choose their blocking, and so the order of their
    sums, by the alignment of their operands, so an image is bit-exact with plain diffusers' (which
    reads through such a mapping) only if the tensors it adopts as they are sit alike.

    Not bytearray(n): that zero-fills every byte with the GIL held (0.25 s for a large tensor on a
    busy machine). torch.empty leaves the pages untouched until the read fills them, in the kernel,
    with the GIL released."""
    raw = torch.empty(size + _PAGE, dtype=torch.uint8)
    shift = (file_offset - raw.data_ptr()) % _PAGE
    return raw[shift : shift + size]


def read_safetensors(
    path: Path, *, dtype: torch.dtype | None = None, on_progress: Progress | None = None
) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, in the order of the data in the file, as safetensors'
    load_file returns them (diffusers' LoRA loading looks at the first key).

    `dtype`: floating-point tensors are converted to it as they are read (integers stay as they
    are). `on_progress` receives the fraction of the data read so far, after each tensor.
    """
    path = Path(path)
    with path.open("rb", buffering=0) as handle:
        start, header = read_header(handle, path)
        entries = sorted(header.items(), key=lambda item: item[1]["data_offsets"][0])
        total = sum(end - begin for _key, (begin, end) in ((k, v["data_offsets"]) for k, v in entries)) or 1
        done = 0
        state: dict[str, torch.Tensor] = {}
        for key, info in entries:
            kind = _DTYPES.get(info["dtype"])
            if kind is None:
                raise ValueError(f"{path.name}: tensor {key} has the unsupported dtype {info['dtype']}")
            begin, end = info["data_offsets"]
            shape = tuple(info["shape"])
            if end == begin:
                tensor = torch.empty(shape, dtype=kind)
            else:
                buffer = _placed_like_mmap(end - begin, start + begin)
                handle.seek(start + begin)
                _read_into(handle, buffer, path)
                tensor = buffer.view(kind).reshape(shape)
            if dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
                tensor = tensor.to(dtype)  # the file's buffer is freed here, alone
            state[key] = tensor
            done += end - begin
            if on_progress is not None:
                on_progress(done / total)
    return state


def release(state: dict[str, Any]) -> None:
    """Drop a state dict's tensors one at a time. Letting the dict go frees them all inside one
    call that holds the GIL (0.13 to 0.44 s for a 5 GB UNet); one by one, other threads run between."""
    while state:
        state.popitem()
