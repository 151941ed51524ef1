"""One writer at a time per output: a lock file beside the target, held with flock for the whole run.

The kernel drops an flock when its process dies, kill -9 included, so a crash never leaves a stale
lock behind. The lock file is removed on release; a writer that locked a file another one had just
removed checks that the path still names the file it holds, and tries again if not.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


class FolderBusyError(Exception):
    """Another process is writing to the same output right now."""


def lock_path_for(target: Path) -> Path:
    return target.with_name(f".{target.name}.fewstep-lock")


def _try_lock(fd: int) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    import msvcrt  # pragma: no cover - Windows only

    try:  # pragma: no cover
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:  # pragma: no cover
        return False
    return True  # pragma: no cover


@contextlib.contextmanager
def folder_lock(target: Path) -> Iterator[Path]:
    """Hold the lock of `target` (a file or folder, existing or not) for the block's length.

    Raises FolderBusyError at once when another process holds it; missing parent folders are created,
    and those this call created are removed again if nothing else was put in them.
    """
    path = lock_path_for(target)
    created = [p for p in reversed(path.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        if not _try_lock(fd):
            os.close(fd)
            raise FolderBusyError(f"another Fewstep run is writing to {target} right now; wait for it to end")
        try:
            same = os.path.samestat(os.fstat(fd), path.stat())
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder before us removed the file between our open and our lock
    else:  # pragma: no cover - only under a storm of writers
        raise FolderBusyError(f"cannot take the lock of {target}: {path} keeps changing")
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only an empty folder; one with outputs in it stays
