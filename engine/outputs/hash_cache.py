"""SHA-256 of model files, each file hashed once: cached by path, size and modification time.

A 7 GB checkpoint takes about half a minute to hash, so the engine's worker hashes it once, with
progress, and every later run reads the cache. Two hashes are kept, as AUTOMATIC1111 computes them:
- the whole file's SHA-256; its first 10 hex digits are A1111's `Model hash` (the "AutoV2" hash);
- for safetensors LoRAs, the SHA-256 of the tensor data after the header (kohya's additional-networks
  hash); its first 12 hex digits are what A1111 writes in `Lora hashes`.
The cache is a JSON file in the user's cache folder (FEWSTEP_CACHE_DIR moves it); a damaged cache is
ignored and rewritten, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from platformdirs import user_cache_dir

from engine.outputs.atomic import atomic_write

HashKind = Literal["file", "tensors"]
Progress = Callable[[int, int], None]  # (bytes hashed so far, bytes in all)

MODEL_HASH_DIGITS = 10
LORA_HASH_DIGITS = 12
_CHUNK = 1 << 22  # 4 MiB: hashlib releases the GIL on buffers this large, so the window stays live
_CACHE_FORMAT = 1
_lock = threading.Lock()


def cache_file() -> Path:
    root = os.environ.get("FEWSTEP_CACHE_DIR") or user_cache_dir("fewstep", appauthor=False)
    return Path(root) / "hashes.json"


def _load() -> dict[str, dict[str, object]]:
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if (
        not isinstance(data, dict)
        or data.get("format") != _CACHE_FORMAT
        or not isinstance(data.get("files"), dict)
    ):
        return {}
    files: dict[str, dict[str, object]] = data["files"]
    return files


def _save(files: dict[str, dict[str, object]]) -> None:
    payload = json.dumps({"format": _CACHE_FORMAT, "files": files}, indent=1, sort_keys=True).encode()
    # A read-only cache folder costs a re-hash next time, nothing else.
    with contextlib.suppress(OSError):
        atomic_write(cache_file(), lambda handle: handle.write(payload))


def _tensor_data_offset(path: Path) -> int:
    """Where a safetensors file's tensor data starts: after the 8-byte length and the JSON header."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if len(head) != 8:
        raise ValueError(f"{path} is too short to be a safetensors file")
    length: int = struct.unpack("<Q", head)[0]
    return 8 + length


def _digest(path: Path, start: int, progress: Progress | None) -> str:
    total = max(path.stat().st_size - start, 0)
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as handle:
        handle.seek(start)
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


def cached_sha256(path: Path, kind: HashKind = "file") -> str | None:
    """The hash the cache holds for this very version of the file, or None; never reads the file itself,
    so it is cheap enough for the GUI's thread."""
    try:
        path = path.resolve()
        stat = path.stat()
    except OSError:
        return None
    with _lock:
        entry = _load().get(f"{kind}:{path}")
    if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
        cached = entry.get("sha256")
        if isinstance(cached, str):
            return cached
    return None


def sha256_of(path: Path, kind: HashKind = "file", progress: Progress | None = None) -> str:
    """The file's SHA-256 (kind "file"), or its tensor data's (kind "tensors", safetensors only)."""
    path = path.resolve()
    stat = path.stat()
    if (cached := cached_sha256(path, kind)) is not None:
        return cached
    start = _tensor_data_offset(path) if kind == "tensors" else 0
    value = _digest(path, start, progress)
    with _lock:
        files = _load()
        files[f"{kind}:{path}"] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": value}
        _save(files)
    return value


def model_hash(path: Path, progress: Progress | None = None) -> str:
    """AUTOMATIC1111's `Model hash` of a checkpoint file: the first 10 hex digits of its SHA-256."""
    return sha256_of(path, "file", progress)[:MODEL_HASH_DIGITS]


def lora_hash(path: Path, progress: Progress | None = None) -> str:
    """AUTOMATIC1111's short hash of a safetensors LoRA in `Lora hashes`: 12 hex digits of its tensors' SHA-256."""
    return sha256_of(path, "tensors", progress)[:LORA_HASH_DIGITS]


def cached_lora_hash(path: Path) -> str | None:
    """lora_hash(path) if the cache already holds it, else None (nothing is hashed)."""
    found = cached_sha256(path, "tensors")
    return found[:LORA_HASH_DIGITS] if found else None
