"""`fewstep models [DIR] [--json]`: what each model file in a folder and in the Hugging Face cache is, and
which modes it enables; refused files say why. Reads names and headers only, never weights.

The table fits the terminal: usable files first, refused ones after, paths relative to the folder
scanned, reasons wrapped. --json gives every entry with its full path and full reason, for scripts.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.cli.arguments import EXIT_OK
from engine.cli.terminal_table import fitted_table, terminal_width
from engine.contract.errors import ModelInputError
from engine.files.model_files import UNDECIDED_ROLES, FileKind, ModelFile, inspect_path
from engine.files.model_scan import Refused, scan_models
from engine.files.safe_paths import special_file_problem

FOLDER, HF_CACHE = "folder", "huggingface-cache"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder", nargs="?", type=Path, help="folder to scan (default: only the Hugging Face cache)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print every entry as JSON, full paths and reasons whole"
    )


@dataclass(frozen=True)
class Listed:
    """One model file or folder found: what it is and what it enables, or why it is refused."""

    path: Path  # as found on disk
    name: str  # as the table shows it: relative to the folder scanned, or the cache's repo id
    source: str  # FOLDER or HF_CACHE
    what: str | None  # what it is; None where it could not be read
    enables: tuple[str, ...]
    reason: str | None  # why it is refused; None when it is usable
    # The roles the user may give it as, where header and name cannot tell (--model ROLE=PATH).
    say_which: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return self.reason is None

    def short_reason(self) -> str:
        """The reason without the path the table's first column already names."""
        reason = self.reason or ""
        for prefix in (f"{self.path} is ", f"{self.path}: "):
            if reason.startswith(prefix):
                return reason.removeprefix(prefix)
        return reason.replace(str(self.path), self.name)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "name": self.name,
            "source": self.source,
            "usable": self.usable,
            "what": self.what,
            "enables": list(self.enables),
            "reason": self.reason,
            "say_which": list(self.say_which),
        }


def _listed(item: ModelFile | Refused, name: str, source: str) -> Listed:
    if isinstance(item, Refused):
        return Listed(item.path, name, source, None, (), item.reason)
    if item.kind in (FileKind.OTHER, FileKind.NOT_SDXL):
        return Listed(item.path, name, source, item.describe(), (), item.describe())
    if item.kind is FileKind.UNDECIDED_LORA:  # the user says which, by the role it is given as
        return Listed(item.path, name, source, item.describe(), (), None, UNDECIDED_ROLES)
    return Listed(item.path, name, source, item.describe(), tuple(item.enables), None)


def _enables(item: Listed) -> str:
    if item.say_which:
        return "say which: --model " + "|".join(item.say_which) + "=PATH"
    return ", ".join(item.enables) or "-"


def _relative(path: Path, root: Path) -> str:
    try:
        relative = path.relative_to(root).as_posix()
    except ValueError:  # not below root: say it whole
        return str(path)
    return relative + ("/" if path.is_dir() and not path.is_symlink() else "")


def found_models(folder: Path | None) -> Iterator[Listed]:
    """Everything in `folder` (when given), then everything in the Hugging Face cache, in scan order."""
    from engine.files.hub_cache import cached_model_repos

    def scanned(root: Path, prefix: str, source: str) -> Iterable[Listed]:
        for item in scan_models(root):
            yield _listed(item, prefix + _relative(item.path, root), source)

    if folder is not None:
        if problem := special_file_problem(folder):
            raise ModelInputError(problem)
        if not folder.is_dir():
            raise ModelInputError(f"{folder} is not a folder")
        yield from scanned(folder, "", FOLDER)
    for repo in cached_model_repos():
        try:
            info = inspect_path(repo.snapshot)
        except ModelInputError as exc:
            yield Listed(repo.snapshot, repo.repo_id, HF_CACHE, None, (), str(exc))
            continue
        if info.kind is FileKind.OTHER:  # a repository of several files, like ByteDance/SDXL-Lightning
            yield from scanned(repo.snapshot, repo.repo_id + "/", HF_CACHE)
        else:
            yield _listed(info, repo.repo_id, HF_CACHE)


def _name(item: Listed) -> str:
    return item.name + (" (HF cache)" if item.source == HF_CACHE else "")


def models_table(items: Iterable[Listed], width: int) -> list[str]:
    """Usable files first, then refused ones, each a table that fits `width` columns."""
    listed = list(items)
    usable = [i for i in listed if i.usable]
    refused = [i for i in listed if not i.usable]
    lines: list[str] = []
    if usable:
        rows = [(_name(i), i.what or "", _enables(i)) for i in usable]
        lines += fitted_table((f"usable ({len(usable)})", "what it is", "enables"), rows, width)
    if refused:
        if lines:
            lines.append("")
        reasons = [(_name(i), i.short_reason()) for i in refused]
        lines += fitted_table((f"refused ({len(refused)})", "why"), reasons, width)
    return lines


def run(args: argparse.Namespace) -> int:
    folder: Path | None = args.folder
    listed = sorted(found_models(folder), key=lambda i: not i.usable)  # stable: scan order within each
    if args.json:
        print(json.dumps([i.as_json() for i in listed], indent=2, ensure_ascii=False))
    elif not listed:
        print("no model files found" + (f" in {folder}" if folder else " in the Hugging Face cache"))
    else:
        print("\n".join(models_table(listed, terminal_width())))
    return EXIT_OK
