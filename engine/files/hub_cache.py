"""Models already in the Hugging Face cache, found offline by repository id.

Artists who used diffusers before have `stabilityai/stable-diffusion-xl-base-1.0` and friends in
`~/.cache/huggingface/hub`; huggingface_hub's own cache functions find them, with no network.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def cache_dir() -> Path | None:
    """HF_HUB_CACHE read at call time (huggingface_hub reads it once, at import)."""
    value = os.environ.get("HF_HUB_CACHE")
    return Path(value) if value else None


def looks_like_hub_reference(text: str) -> bool:
    """`org/name` or `org/name/file.safetensors`, and not a path that exists."""
    parts = text.split("/")
    return (
        len(parts) >= 2
        and _REPO_ID.match("/".join(parts[:2])) is not None
        and not text.startswith((".", "/"))
    )


def hub_repo_id(path: Path) -> str | None:
    """The repository id of a path in the cache, from huggingface_hub's folder name for it
    (``models--{org}--{name}/snapshots/{commit}/...``); None for a path outside the cache."""
    for parent in path.parents:
        if parent.name.startswith("models--"):
            return parent.name.removeprefix("models--").replace("--", "/", 1)
    return None


def resolve_hub_reference(text: str) -> Path | None:
    """The local folder or file a hub reference names, if it is in the cache; None otherwise."""
    from huggingface_hub import snapshot_download, try_to_load_from_cache
    from huggingface_hub.errors import LocalEntryNotFoundError

    parts = text.split("/")
    repo_id = "/".join(parts[:2])
    if len(parts) > 2:
        found = try_to_load_from_cache(repo_id, "/".join(parts[2:]), cache_dir=cache_dir())
        return Path(found) if isinstance(found, str) else None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True, cache_dir=cache_dir()))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class CachedRepo:
    repo_id: str
    snapshot: Path
    size_on_disk: int


def cached_model_repos() -> list[CachedRepo]:
    """Every model repository in the cache with a snapshot, newest revision first per repo."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(cache_dir())
    except (CacheNotFound, OSError):
        return []
    repos = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        newest = max(repo.revisions, key=lambda r: r.last_modified)
        repos.append(CachedRepo(repo.repo_id, Path(newest.snapshot_path), repo.size_on_disk))
    return repos
