"""A Hugging Face hub cache (``models--{org}--{name}/blobs``, ``refs/main``, ``snapshots/{commit}`` of
relative symlinks) holding the tiny set under the real repository ids."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devtools.tiny_model import (
    TinyModelSet,
)

# ---------------------------------------------------------------------------------------------
# The Hugging Face cache


@dataclass(frozen=True)
class HubCache:
    """A synthetic ``HF_HUB_CACHE`` and the snapshot folder of each repository in it."""

    root: Path
    snapshots: Mapping[str, Path]


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _files_under(folder: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            yield path.relative_to(folder).as_posix(), path


def add_to_hub_cache(cache: Path, repo_id: str, files: Mapping[str, Path]) -> Path:
    """Put ``files`` (repository path -> source file) into ``cache`` as huggingface_hub lays out a download:
    contents in ``blobs/`` (LFS files named by SHA-256, others by git SHA-1), ``snapshots/{commit}/`` of
    relative symlinks, ``refs/main`` holding the commit. Returns the snapshot folder."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    contents = {name: files[name].read_bytes() for name in sorted(files)}
    digest = hashlib.sha1(repo_id.encode(), usedforsecurity=False)
    for name, data in contents.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    commit = digest.hexdigest()
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        lfs = name.endswith(".safetensors")
        blob = repo / "blobs" / (hashlib.sha256(data).hexdigest() if lfs else _git_blob_sha1(data))
        if not blob.exists():
            blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit, encoding="utf-8")  # no newline, as huggingface_hub writes it
    return snapshot


BASE_REPO = "stabilityai/stable-diffusion-xl-base-1.0"
LCM_REPO = "latent-consistency/lcm-sdxl"
LCM_LORA_REPO = "latent-consistency/lcm-lora-sdxl"
LIGHTNING_REPO = "ByteDance/SDXL-Lightning"


def write_hub_cache(models: TinyModelSet, cache: Path, *, lightning_extra: Sequence[Path] = ()) -> HubCache:
    """The tiny set under the real repository ids: the base, lcm-sdxl, lcm-lora-sdxl, and SDXL-Lightning
    with its UNet and LoRA files (plus ``lightning_extra``, e.g. an all-in-one checkpoint)."""
    lightning = [models.lightning_unet, models.lightning_lora, *lightning_extra]
    snapshots = {
        BASE_REPO: add_to_hub_cache(cache, BASE_REPO, dict(_files_under(models.base))),
        LCM_REPO: add_to_hub_cache(cache, LCM_REPO, dict(_files_under(models.lcm_unet))),
        LCM_LORA_REPO: add_to_hub_cache(cache, LCM_LORA_REPO, {models.lcm_lora.name: models.lcm_lora}),
        LIGHTNING_REPO: add_to_hub_cache(cache, LIGHTNING_REPO, {p.name: p for p in lightning}),
    }
    return HubCache(cache, snapshots)
