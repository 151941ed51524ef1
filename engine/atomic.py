"""Writes that are all or nothing: a temporary file beside the target, then a rename.

A crash or a kill at any moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def atomic_write(path: Path, write: Callable[[IO[bytes]], object], *, overwrite: bool = True) -> None:
    """Call write() on a temporary file in path's folder, flush it to disk, then move it into place.

    With overwrite=False an existing file is never replaced (FileExistsError instead).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    temp = Path(temp_name)
    try:
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
