"""The style LoRAs a dropped PNG names, found among the artist's files.

A1111 names a LoRA by its file's stem (`<lora:ink_style:0.8>` for ink_style.safetensors) and writes its
short hash in `Lora hashes`; Fewstep writes both too. A name is looked up among the configured styles
first, then among the `.safetensors` files of the models folder: by stem, then by stem ignoring case, then
by hash where the hash cache already knows a candidate's (hashing here would stall the window: a LoRA
never met before is matched by name only). A name found nowhere is said, by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.contract.errors import FewstepError
from engine.files.model_files import check_style_lora
from engine.outputs.hash_cache import cached_lora_hash
from engine.outputs.infotext import StyleTag

MAX_FOLDER_FILES = 2000  # a models folder with more is searched this far, never walked whole


@dataclass(frozen=True)
class StyleMatch:
    found: tuple[tuple[Path, float], ...]  # (file, weight)
    missing: tuple[str, ...]  # names found nowhere, or found but not style LoRAs (with the reason)


def _folder_files(folder: Path | None) -> list[Path]:
    if folder is None or not folder.is_dir():
        return []
    files: list[Path] = []
    try:
        for path in folder.rglob("*.safetensors"):
            files.append(path)
            if len(files) >= MAX_FOLDER_FILES:
                break
    except OSError:
        pass
    return sorted(files)


def _pick(tag: StyleTag, candidates: Sequence[Path]) -> Path | None:
    exact = [p for p in candidates if p.stem == tag.name]
    folded = [p for p in candidates if p.stem.casefold() == tag.name.casefold()]
    if exact or folded:
        return (exact or folded)[0]
    if tag.hash:
        return next((p for p in candidates if cached_lora_hash(p) == tag.hash), None)
    return None


def match_styles(tags: Iterable[StyleTag], configured: Sequence[Path], models_dir: Path | None) -> StyleMatch:
    """Each tag's file: a configured style first, else a style LoRA of the models folder."""
    found: list[tuple[Path, float]] = []
    missing: list[str] = []
    folder: list[Path] | None = None
    for tag in tags:
        path = _pick(tag, configured)
        if path is None:
            folder = _folder_files(models_dir) if folder is None else folder
            path = _pick(tag, folder)
            if path is not None:
                try:
                    check_style_lora(path)
                except FewstepError:
                    missing.append(f"{tag.name} ({path.name} is not an SDXL LoRA)")
                    continue
        if path is None:
            missing.append(tag.name)
        else:
            found.append((path, tag.weight))
    return StyleMatch(tuple(found), tuple(missing))
