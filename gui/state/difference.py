"""The difference view's pictures, computed from two RGB images (numpy only, no Qt): a heat map of
the per-pixel difference with its scale, and a wipe that splits the two images at a point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.contract.request import RGBImage

# A perceptually ordered dark-to-bright ramp (black, purple, red, orange, pale yellow), after
# matplotlib's "inferno": small differences stay dark, so the eye goes to where modes disagree.
_STOPS = np.array(
    [
        [0, 0, 0],
        [40, 11, 84],
        [101, 21, 110],
        [159, 42, 99],
        [212, 72, 66],
        [245, 125, 21],
        [250, 193, 39],
        [252, 255, 164],
    ],
    dtype=np.float64,
)


def colormap(levels: int = 256) -> npt.NDArray[np.uint8]:
    """(levels, 3) uint8 colours from no difference (index 0) to the scale's top."""
    positions = np.linspace(0.0, 1.0, len(_STOPS))
    wanted = np.linspace(0.0, 1.0, levels)
    channels = [np.interp(wanted, positions, _STOPS[:, c]) for c in range(3)]
    return np.round(np.stack(channels, axis=1)).astype(np.uint8)


_LUT = colormap()


@dataclass(frozen=True)
class Difference:
    heat: RGBImage  # the heat map, same size as the images
    scale_max: float  # the difference the brightest colour stands for, in 0-255 levels
    mean: float  # the mean per-pixel difference, in 0-255 levels
    peak: float  # the largest per-pixel difference


def same_size(a: RGBImage, b: RGBImage) -> bool:
    return a.shape[:2] == b.shape[:2]


def per_pixel_difference(a: RGBImage, b: RGBImage) -> npt.NDArray[np.float64]:
    """Mean absolute difference over the three channels, per pixel, in 0-255 levels."""
    if not same_size(a, b):
        raise ValueError(f"images of different sizes: {a.shape[:2]} and {b.shape[:2]}")
    return np.asarray(
        np.abs(a[..., :3].astype(np.int16) - b[..., :3].astype(np.int16)).mean(axis=2), np.float64
    )


def difference(a: RGBImage, b: RGBImage, scale_max: float | None = None) -> Difference:
    """The heat map of |a - b|. scale_max None: the image's own largest difference (at least 1), so
    the whole ramp is used; give a number to compare several pairs on one scale."""
    diff = per_pixel_difference(a, b)
    peak = float(diff.max()) if diff.size else 0.0
    top = max(1.0, peak if scale_max is None else scale_max)
    index = np.clip(np.round(diff / top * 255), 0, 255).astype(np.intp)
    return Difference(
        heat=_LUT[index], scale_max=top, mean=float(diff.mean()) if diff.size else 0.0, peak=peak
    )


def wipe(a: RGBImage, b: RGBImage, fraction: float) -> RGBImage:
    """a left of the split, b right of it; fraction 0 shows all of b, 1 all of a."""
    if not same_size(a, b):
        raise ValueError(f"images of different sizes: {a.shape[:2]} and {b.shape[:2]}")
    split = round(max(0.0, min(1.0, fraction)) * a.shape[1])
    out = b[..., :3].copy()
    out[:, :split] = a[:, :split, :3]
    return out
