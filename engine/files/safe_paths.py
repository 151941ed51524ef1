"""Paths from the user, checked before anything opens them.

Opening a FIFO for reading blocks until a writer appears, and safetensors' reader blocks while
holding the GIL, so one named pipe among the models froze every thread of the application. Devices
and sockets are no better. Only regular files are ever opened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from engine.contract.limits import MAX_NAME_BYTES

# Kernel views, not storage: writing there fails, or worse, changes the running system.
_SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))


class NotRegularFileError(OSError):
    """A path that is a FIFO, a device or a socket: never opened."""


def special_kind(mode: int) -> str | None:
    """What a non-regular, non-folder file is, in words; None for a regular file or a folder."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def special_file_problem(path: Path) -> str | None:
    """Why `path` must not be opened (it is a FIFO, device or socket); None if it may be (or is absent)."""
    try:
        mode = path.stat().st_mode  # stat() never blocks, even on a FIFO; open() does
    except (OSError, ValueError):
        return None
    kind = special_kind(mode)
    return None if kind is None else f"{path} is {kind}, not a regular file; Fewstep reads only regular files"


def open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading, refusing (NotRegularFileError) anything else without blocking.

    O_NONBLOCK makes the open of a FIFO return at once; fstat on the open descriptor then tells what
    it is, with no gap in which the path could be swapped.
    """
    flags = (
        os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    )
    fd = os.open(path, flags)
    try:
        kind = special_kind(os.fstat(fd).st_mode)
        if kind is not None or stat.S_ISDIR(os.fstat(fd).st_mode):
            raise NotRegularFileError(0, f"it is {kind or 'a folder'}, not a regular file", str(path))
        if flags & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def output_problem(path: Path, *, what: str = "--out") -> str | None:
    """Why `path` cannot be written as an output (file or folder), or None; decided before any model
    loads, from the path alone: never under /proc, /sys or /dev, no name over 255 bytes, not under a
    file, and the nearest existing folder writable."""
    text = str(path)
    if not text or text.isspace():
        return f"{what} is empty: give a file or folder name"
    try:
        absolute = Path(os.path.abspath(path))  # noqa: PTH100 - resolve() would follow links; this only collapses ".."
        resolved = absolute.resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        return f"{what} {path}: cannot resolve the path ({exc})"
    for tree in _SYSTEM_TREES:
        if any(p == tree or p.is_relative_to(tree) for p in (absolute, resolved)):
            return f"{what} {path} is under {tree}, which is not a place for files: choose another folder"
    for part in absolute.parts:
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            return f"{what}: the name {part[:40]!r}... is longer than {MAX_NAME_BYTES} bytes; shorten it"
    existing = next((p for p in (absolute, *absolute.parents) if os.path.lexists(p)), None)
    if existing is None:
        return f"{what} {path}: no part of this path exists"
    if existing != absolute and not existing.is_dir():
        return f"{what} {path} is under {existing}, which is a file, not a folder"
    folder = existing if existing.is_dir() else existing.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{what} {path}: cannot write in {folder} (no permission); choose another folder"
    if existing == absolute and (problem := special_file_problem(existing)):
        return f"{what} {problem}"
    return None
