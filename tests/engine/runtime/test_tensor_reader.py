"""engine.runtime.tensor_reader reads what safetensors reads, tensor by tensor."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.runtime.tensor_reader import read_header, read_safetensors, release


def _file(tmp_path: Path) -> Path:
    generator = torch.Generator().manual_seed(0)
    tensors = {
        "b.weight": torch.randn(64, 32, generator=generator).half(),
        "a.bias": torch.randn(7, generator=generator).to(torch.bfloat16),
        "c.full": torch.randn(3, 5, 2, generator=generator),
        "d.positions": torch.arange(77, dtype=torch.int64)[None, :],
        "e.alpha": torch.tensor(4.0, dtype=torch.float16),
        "f.empty": torch.zeros(0, 4),
        "g.mask": torch.tensor([True, False, True]),
    }
    path = tmp_path / "mixed.safetensors"
    save_file(tensors, path, metadata={"format": "pt"})
    return path


def test_reads_every_tensor_exactly_as_safetensors_does(tmp_path: Path) -> None:
    path = _file(tmp_path)
    expected = load_file(path)
    got = read_safetensors(path)
    assert list(got) == list(expected)
    for key, tensor in expected.items():
        assert got[key].dtype == tensor.dtype and got[key].shape == tensor.shape, key
        assert torch.equal(got[key], tensor), key


def test_converts_floating_tensors_on_the_way_and_keeps_integers(tmp_path: Path) -> None:
    path = _file(tmp_path)
    expected = load_file(path)
    got = read_safetensors(path, dtype=torch.bfloat16)
    for key, tensor in expected.items():
        if tensor.is_floating_point():
            assert got[key].dtype == torch.bfloat16
            assert torch.equal(got[key], tensor.to(torch.bfloat16)), key
        else:
            assert got[key].dtype == tensor.dtype and torch.equal(got[key], tensor), key


def test_reports_progress_up_to_the_whole_file(tmp_path: Path) -> None:
    fractions: list[float] = []
    read_safetensors(_file(tmp_path), on_progress=fractions.append)
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert len(fractions) == 7


def test_a_truncated_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = _file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(ValueError, match=r"mixed\.safetensors is truncated"):
        read_safetensors(path)


def test_release_empties_the_dict() -> None:
    state = {"a": torch.zeros(3), "b": torch.ones(2)}
    release(state)
    assert state == {}


def test_tensors_sit_where_a_mapping_of_the_file_would_put_them(tmp_path: Path) -> None:
    """Relative to a page, as in safetensors' mapping (kernels round by alignment; see the reader)."""
    path = _file(tmp_path)
    with path.open("rb") as handle:
        start, header = read_header(handle, path)
    got = read_safetensors(path)
    for key, info in header.items():
        if info["data_offsets"][1] > info["data_offsets"][0]:
            assert got[key].data_ptr() % 4096 == (start + info["data_offsets"][0]) % 4096, key
