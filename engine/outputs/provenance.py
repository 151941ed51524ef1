"""Where a comparison's images came from: each model file's path, size and SHA-256.

A model given as a diffusers folder is a set of files; each file in it is listed (configs and
tokenizers too, which shape the result as much as the weights). Hashes come from hash_cache, so a
7 GB file is read once per version of the file; call this on a worker thread, never the GUI's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.outputs.hash_cache import sha256_of

StatusCallback = Callable[[str], None]


@dataclass(frozen=True)
class FileRecord:
    role: str  # "base", "lcm-unet", ..., "vae", "style"
    path: str
    size: int
    sha256: str

    def as_json(self) -> dict[str, object]:
        return {"role": self.role, "path": self.path, "size": self.size, "sha256": self.sha256}


def files_of(path: Path) -> list[Path]:
    """The file itself, or every regular file under a folder, in a stable order (hidden ones skipped)."""
    if path.is_file():
        return [path]
    found = [
        p
        for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    ]
    return sorted(found)


def file_records(
    models: Iterable[tuple[str, Path]], on_status: StatusCallback | None = None
) -> tuple[FileRecord, ...]:
    """Every file of every (role, path) given, hashed (from the cache where it can be)."""
    say = on_status or (lambda _message: None)
    records: list[FileRecord] = []
    for role, root in models:
        for path in files_of(root):
            size = path.stat().st_size
            progress = _progress_reporter(path.name, say) if size > 256 << 20 else None
            digest = sha256_of(path, "file", progress)
            records.append(FileRecord(role=role, path=str(path.resolve()), size=size, sha256=digest))
    return tuple(records)


def _progress_reporter(name: str, say: StatusCallback) -> Callable[[int, int], None]:
    """Whole tens of percent only: a status line per 4 MiB chunk would flood the window."""
    last_shown = -1

    def progress(done: int, total: int) -> None:
        nonlocal last_shown
        tenth = done * 10 // max(total, 1)
        if tenth != last_shown:
            last_shown = tenth
            say(f"hashing {name}: {tenth * 10}%")

    return progress
