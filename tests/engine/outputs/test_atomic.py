"""All-or-nothing writes: a file or a whole folder is either the old one or the new one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.outputs.atomic import atomic_write_text, replaced_folder


def test_replaced_folder_swaps_the_whole_folder_with_shared_permissions(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    (dest / "old").mkdir(parents=True)
    (dest / "old" / "stale.json").write_text("{}")
    with replaced_folder(dest) as tmp:
        (tmp / "unet").mkdir()
        (tmp / "unet" / "config.json").write_text('{"new": true}')
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == ["unet", "unet/config.json"]
    assert (dest.stat().st_mode & 0o777, (dest / "unet").stat().st_mode & 0o777) == (0o755, 0o755)
    assert (dest / "unet" / "config.json").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary folder left


def test_replaced_folder_leaves_the_old_folder_when_writing_fails(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "kept.json").write_text("{}")
    with pytest.raises(RuntimeError), replaced_folder(dest) as tmp:
        (tmp / "half.json").write_text("{")
        raise RuntimeError("killed halfway")
    assert [p.name for p in dest.iterdir()] == ["kept.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_atomic_write_can_refuse_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    atomic_write_text(path, "first", overwrite=False)
    with pytest.raises(FileExistsError):
        atomic_write_text(path, "second", overwrite=False)
    assert path.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["image.png"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_modes_open_would_give(tmp_path: Path, umask: int, expected: int) -> None:
    """mkstemp makes 0600 files and a rename keeps the mode: images were unreadable to anyone else."""
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "report.json", "{}")
        atomic_write_text(tmp_path / "image.png", "png", overwrite=False)
        atomic_write_text(tmp_path / "report.json", "{}")  # replacing keeps the rule
    finally:
        os.umask(old)
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {
        "report.json": expected,
        "image.png": expected,
    }
