"""Writes that are all or nothing: a temporary file beside the target, then a rename.

A crash or a kill at any moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _current_umask() -> int:
    # Linux says it without changing it; elsewhere it can only be read by setting it and back.
    try:
        with Path("/proc/self/status").open(encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _share(fd: int) -> None:
    """mkstemp creates a file only its owner can read (0600), and a rename keeps that mode. A saved image
    or report is an ordinary file: 0644 less the user's umask, as open() would have made it."""
    if hasattr(os, "fchmod"):  # POSIX; Windows files have no such modes
        os.fchmod(fd, 0o666 & ~_current_umask())


def atomic_write(path: Path, write: Callable[[IO[bytes]], object], *, overwrite: bool = True) -> None:
    """Call write() on a temporary file in path's folder, flush it to disk, then move it into place.

    With overwrite=False an existing file is never replaced (FileExistsError instead).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    temp = Path(temp_name)
    try:
        _share(fd)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            temp.replace(path)
        else:
            # link() fails if the target exists, where rename() would silently replace it.
            os.link(temp, path)
            temp.unlink()
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, *, overwrite: bool = True) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), overwrite=overwrite)


@contextmanager
def replaced_folder(dest: Path) -> Iterator[Path]:
    """A temporary folder beside ``dest`` to fill; when the block ends without error it replaces
    ``dest`` whole, and otherwise it is removed and ``dest`` is left as it was."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        # mkdtemp makes the folder private; what replaces dest is shared like any other folder.
        for path in (tmp, *tmp.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.replace(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
