"""Where a CLI run writes, checked from the path alone before any model loads.

A comparison folder is replaced whole (engine.outputs.atomic.replaced_folder), so it must be new,
empty, or an earlier comparison: a folder holding anything else is the user's, and is only replaced
with --overwrite. A single image (and its JSON sidecar) never replaces an existing file without
--overwrite.
"""

from __future__ import annotations

from pathlib import Path

from engine.files.safe_paths import output_problem

# What write_comparison leaves (images, grid.png, report.json, reproduce.py): a folder of these and
# nothing else, report.json among them, is an earlier comparison.
_COMPARISON_SUFFIXES = (".png", ".json", ".py")


def looks_like_comparison(folder: Path) -> bool:
    try:
        entries = [e for e in folder.iterdir() if not e.name.startswith(".")]
    except OSError:
        return False
    names = {e.name for e in entries}
    return "report.json" in names and all(
        e.is_file() and not e.is_symlink() and e.suffix.lower() in _COMPARISON_SUFFIXES for e in entries
    )


def comparison_target_problem(folder: Path, *, overwrite: bool) -> str | None:
    """Why `fewstep compare --out folder` cannot write there, in one line; None if it can."""
    if problem := output_problem(folder):
        return problem
    if not folder.exists():
        return None
    if not folder.is_dir():
        return f"--out {folder} is a file; compare writes a folder"
    try:
        empty = not any(e for e in folder.iterdir() if not e.name.startswith("."))
    except OSError as exc:
        return f"--out {folder}: cannot list it ({exc.strerror or exc})"
    if empty or overwrite or looks_like_comparison(folder):
        return None
    return (
        f"--out {folder} already holds files that are not a Fewstep comparison; give a new or empty"
        " folder, or add --overwrite to replace it whole"
    )


def image_target_problem(path: Path, *, overwrite: bool) -> str | None:
    """Why `fewstep generate --out path` cannot write there, in one line; None if it can."""
    if path.suffix.lower() != ".png":
        return f"--out {path} must be a .png file"
    if problem := output_problem(path):
        return problem
    if path.is_dir():
        return f"--out {path} is a folder; generate writes one .png file"
    for target in (path, path.with_suffix(".json")):  # the image and its sidecar
        if target.exists() and not overwrite:
            return f"--out: {target} already exists; give a new name, or add --overwrite to replace it"
    return None
