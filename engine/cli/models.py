"""`fewstep models [DIR]`: what each model file in a folder and in the Hugging Face cache is, and which
modes it enables; refused files say why. Reads names and headers only, never weights."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.contract.errors import ModelInputError
from engine.files.model_files import ModelFile, inspect_path
from engine.files.safe_paths import special_file_problem

SUMMARY = "list and classify the model files in a folder and the HF cache"


def add_parser(commands: Any) -> None:
    models = commands.add_parser("models", help=SUMMARY)
    models.add_argument(
        "folder", nargs="?", type=Path, help="folder to scan (default: only the Hugging Face cache)"
    )


def run(args: argparse.Namespace) -> int:
    """`fewstep models`: what each file is and which modes it enables; refused files say why."""
    folder: Path | None = args.folder
    from engine.files.hub_cache import cached_model_repos
    from engine.files.model_files import FileKind
    from engine.files.model_scan import Refused, scan_models

    rows: list[tuple[str, str, str]] = []

    def add(found: Iterable[object]) -> None:
        for item in found:
            if isinstance(item, Refused):
                rows.append(("refused: " + item.reason, "-", str(item.path)))
            elif isinstance(item, ModelFile):
                usable = item.kind not in (FileKind.OTHER, FileKind.NOT_SDXL)
                what = item.describe() if usable else f"refused: {item.describe()}"
                rows.append((what, ", ".join(item.enables) or "-", str(item.path)))

    if folder is not None:
        if problem := special_file_problem(folder):
            raise ModelInputError(problem)
        if not folder.is_dir():
            raise ModelInputError(f"{folder} is not a folder")
        add(scan_models(folder))
    for repo in cached_model_repos():
        try:
            info = inspect_path(repo.snapshot)
        except ModelInputError as exc:
            rows.append((f"refused: {exc}", "-", f"{repo.repo_id} (Hugging Face cache)"))
            continue
        if info.kind is FileKind.OTHER:  # a repository of several files, like ByteDance/SDXL-Lightning
            add(scan_models(repo.snapshot))
        else:
            rows.append(
                (info.describe(), ", ".join(info.enables) or "-", f"{repo.repo_id} (Hugging Face cache)")
            )
    if not rows:
        print("no model files found" + (f" in {folder}" if folder else " in the Hugging Face cache"))
        return 0
    width = max(len(r[0]) for r in rows)
    enables = max(len(r[1]) for r in rows)
    print(f"{'what it is':{width}}  {'enables':{enables}}  path")
    for what, modes, path in rows:
        print(f"{what:{width}}  {modes:{enables}}  {path}")
    return 0
