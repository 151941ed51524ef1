"""Model file hashes: A1111's forms, computed once per file version."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import pytest

from engine.outputs import hash_cache
from engine.outputs.hash_cache import lora_hash, model_hash, sha256_of


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEWSTEP_CACHE_DIR", str(tmp_path / "cache"))


def _safetensors(path: Path, header: bytes, data: bytes) -> Path:
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


def test_hashes_are_a1111s_forms(tmp_path: Path) -> None:
    file = _safetensors(tmp_path / "a.safetensors", b'{"__metadata__":{}}', b"\x01\x02" * 1000)
    whole = hashlib.sha256(file.read_bytes()).hexdigest()
    tensors = hashlib.sha256(b"\x01\x02" * 1000).hexdigest()
    assert model_hash(file) == whole[:10]
    assert lora_hash(file) == tensors[:12]
    assert sha256_of(file) == whole


def test_a_file_is_hashed_once_until_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = _safetensors(tmp_path / "m.safetensors", b"{}", b"x" * 5000)
    calls: list[Path] = []
    real = hash_cache._digest

    def counting(path: Path, start: int, progress: hash_cache.Progress | None) -> str:
        calls.append(path)
        return real(path, start, progress)

    monkeypatch.setattr(hash_cache, "_digest", counting)
    first = sha256_of(file)
    assert sha256_of(file) == first and len(calls) == 1
    file.write_bytes(file.read_bytes() + b"y")
    os.utime(file, ns=(1, 1))
    assert sha256_of(file) != first and len(calls) == 2


def test_progress_reaches_the_total_and_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    file = tmp_path / "big.bin"
    file.write_bytes(os.urandom(hash_cache._CHUNK + 123))
    seen: list[tuple[int, int]] = []
    hash_cache.cache_file().parent.mkdir(parents=True)
    hash_cache.cache_file().write_text("{not json")
    value = sha256_of(file, progress=lambda done, total: seen.append((done, total)))
    assert value == hashlib.sha256(file.read_bytes()).hexdigest()
    assert seen[-1] == (file.stat().st_size, file.stat().st_size) and len(seen) == 2
    assert json.loads(hash_cache.cache_file().read_text())["format"] == 1
