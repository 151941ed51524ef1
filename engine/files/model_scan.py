"""A models folder scanned: every model file or folder in it, classified from names and headers only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.contract.errors import ModelInputError
from engine.files.model_files import (
    PICKLE_SUFFIXES,
    FileKind,
    ModelFile,
    classify_file,
    classify_folder,
    pickle_refusal,
)
from engine.files.safe_paths import special_file_problem


@dataclass(frozen=True)
class Refused:
    path: Path
    reason: str


def scan_models(
    folder: Path, *, depth: int = 3, _seen: set[tuple[int, int]] | None = None
) -> Iterator[ModelFile | Refused]:
    """Every model file or folder under `folder`, classified; what cannot be used says why.

    Three levels: a repository kept as its publisher lays it out can hold its files one folder down
    (wangfuyun/PCM_Weights keeps its SDXL LoRAs in sdxl/).

    A folder reached twice (a symlink loop, or two links to one folder) is scanned once, and nothing
    but regular files and folders is opened.
    """
    seen = set() if _seen is None else _seen
    try:
        identity = folder.stat()
        entries = sorted(folder.iterdir())
    except OSError as exc:
        if _seen is not None:
            yield Refused(folder, f"cannot list it: {exc.strerror or exc}")
            return
        raise ModelInputError(f"cannot list {folder}: {exc.strerror or exc}") from None
    if (identity.st_dev, identity.st_ino) in seen:
        return
    seen.add((identity.st_dev, identity.st_ino))
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if problem := special_file_problem(entry):
            yield Refused(entry, problem.removeprefix(f"{entry} is ").split(";")[0])
            continue
        if entry.is_dir():
            try:
                info = classify_folder(entry)
            except ModelInputError as exc:
                yield Refused(entry, str(exc))
                continue
            if info.kind is not FileKind.OTHER:
                yield info
            elif depth > 1:
                yield from scan_models(entry, depth=depth - 1, _seen=seen)
        elif entry.suffix.lower() in PICKLE_SUFFIXES:
            yield Refused(entry, pickle_refusal(entry))
        elif entry.suffix.lower() == ".safetensors":
            try:
                yield classify_file(entry)
            except ModelInputError as exc:
                yield Refused(entry, str(exc))
