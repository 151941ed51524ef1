"""The bound for images that two load routes of the same weights give on a CPU.

Bitwise-equal weights loaded by two routes (a diffusers folder, an original single file) sit at
different memory alignments: the folder's stay in the mmapped file at its byte offsets, the single
file's converted tensors are partly fresh 64-byte-aligned copies. MKL's GEMM and oneDNN's
convolutions choose their kernels, and so their summation order, by alignment and instruction set,
so the two routes may round differently in the last bit. Through 30 DDIM steps and the VAE the tiny
model's float images then differ by at most 0.0003 of a grey level, so only a value that close to a
rounding boundary of the uint8 conversion moves, by one level: on an AMD EPYC, 0 to 2 of the 12288
values of a 64x64 image, in every mode, with AVX-512, AVX2 or torch's plain kernels. Same files
through the same route are compared exactly instead.
"""

from __future__ import annotations

import numpy as np

# One grey level: a float difference far below one level moves a value across a rounding boundary,
# never two. A few pixels: 1 % of the values, some fifty times the most seen (2 in 12288).
MAX_LEVELS = 1
MAX_FRACTION = 0.01


def route_difference(actual: np.ndarray, desired: np.ndarray) -> tuple[int, int]:
    """(largest difference in grey levels, how many values differ) between two uint8 images."""
    assert actual.shape == desired.shape, (actual.shape, desired.shape)
    difference = np.abs(actual.astype(np.int16) - desired.astype(np.int16))
    return int(difference.max(initial=0)), int(np.count_nonzero(difference))


def assert_equal_but_for_alignment(actual: np.ndarray, desired: np.ndarray, label: str = "") -> None:
    """Two routes' images: at most one grey level apart, in at most 1 % of the values."""
    levels, count = route_difference(actual, desired)
    allowed = int(MAX_FRACTION * actual.size)
    assert levels <= MAX_LEVELS and count <= allowed, (
        f"{label}: {count} of {actual.size} values differ, by up to {levels} grey levels; memory"
        f" alignment explains at most {MAX_LEVELS} level in {allowed} values"
    )


def to_grey_levels(image: np.ndarray) -> np.ndarray:
    """A float image in [0, 1] (diffusers' output_type="np") as the uint8 values its PIL output holds."""
    return np.asarray((image * 255).round(), dtype=np.uint8)
