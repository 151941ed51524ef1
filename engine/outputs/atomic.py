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

PART_SUFFIX = ".part"


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
    # The writer's pid in the name tells a crashed run's leftover from a live writer's file.
    prefix = f".{path.name}.{os.getpid()}."
    fd, temp_name = tempfile.mkstemp(prefix=prefix, suffix=PART_SUFFIX, dir=path.parent)
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{os.getpid()}.", suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        # mkdtemp makes the folder private; what replaces dest is shared like any other folder.
        for path in (tmp, *tmp.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        # Two renames, never a delete before the new folder is in place: a kill between them leaves
        # the old folder aside (restore_interrupted_swap puts it back), never a half-deleted one at dest.
        old = dest.with_name(f".{dest.name}.{os.getpid()}.old{PART_SUFFIX}")
        if dest.exists():
            dest.replace(old)
        tmp.replace(dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill there terminates the process instead of probing it: never remove
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists (another user's), or we cannot tell: keep its file
    return True


def restore_interrupted_swap(dest: Path) -> bool:
    """Where a writer died between replaced_folder's two renames, `dest` is missing and the folder it
    replaced lies aside: put that one back. True when it did."""
    if dest.exists() or dest.is_symlink():
        return False
    for aside in dest.parent.glob(f".{dest.name}.*.old{PART_SUFFIX}"):
        pid = aside.name.split(".")[-3]
        if aside.is_dir() and pid.isascii() and pid.isdigit() and not _pid_alive(int(pid)):
            aside.replace(dest)
            return True
    return False


def remove_stale_parts(folder: Path, name: str = "") -> int:
    """Remove what writers that died (kill -9, power loss) left in `folder`: the temporary files and
    folders of atomic_write and replaced_folder whose writer is no longer running (their names carry
    its pid). `name` limits it to one target's leftovers. Returns how many were removed."""
    removed = 0
    try:
        entries = [e for e in folder.iterdir() if e.name.startswith(f".{name}")]
    except OSError:
        return 0
    for entry in entries:
        # .{target}.{pid}.{random}.part, .{target}.{pid}.old.part, .{target}.{pid}.{random}.tmp
        fields = entry.name.split(".")
        if len(fields) < 4 or fields[-1] not in ("part", "tmp"):
            continue
        pid = fields[-3]
        if not (pid.isascii() and pid.isdigit()) or _pid_alive(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed
