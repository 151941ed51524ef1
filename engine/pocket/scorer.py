"""Does a 64x64 picture show what its prompt says? Background, colour, shape, size and position.

By pixel statistics, no learned model: every pixel goes to its nearest palette colour; the
background is the commonest colour of the border; the foreground colour the commonest of the rest;
the shape is the largest connected region nearer the foreground colour than the background one,
classed by its overlap with an ideal circle, square and triangle of the same area and centroid; the
size from that area; the position from the centroid. Position is scored only where the prompt names it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

import numpy as np

from engine.pocket.grammar import COLORS, POSITIONS, SHAPES, Prompt
from engine.pocket.shapes import _SQUARE, _TRIANGLE, ANCHORS, PALETTE_ARRAY, RADII, shape_mask

# Area of each shape in units of radius squared (shapes.shape_mask's geometry).
AREA_PER_R2: dict[str, float] = {
    "circle": math.pi,
    "square": 4 * _SQUARE**2,
    "triangle": 3 * math.sqrt(3) / 4 * _TRIANGLE**2,
}
SIZE_THRESHOLD = math.sqrt(RADII["small"] * RADII["large"])  # radius between small and large
MIN_AREA = 12  # pixels: less than this is no shape at all
_BORDER = 2


@dataclass(frozen=True)
class Detection:
    """What the scorer sees in a picture; None where it sees no shape."""

    background: str
    color: str | None
    shape: str | None
    size: str | None
    position: str | None
    area: int
    centroid: tuple[float, float] | None


@dataclass(frozen=True)
class Score:
    """Each attribute right or wrong; ``position`` None when the prompt names none."""

    background: bool
    color: bool
    shape: bool
    size: bool
    position: bool | None

    @property
    def fbs(self) -> bool:
        """Foreground colour, background and shape all right: the trial's headline figure."""
        return self.background and self.color and self.shape

    @property
    def all(self) -> bool:
        """Everything the prompt names is right."""
        return self.fbs and self.size and self.position is not False


def _classes(image: np.ndarray) -> np.ndarray:
    pixels = image.reshape(-1, 3).astype(np.float32)
    distances = ((pixels[:, None, :] - PALETTE_ARRAY[None, :, :]) ** 2).sum(-1)
    return np.asarray(distances.argmin(1).reshape(image.shape[:2]))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of a boolean mask; of equal ones, the first in raster order.

    scipy's labelling in C (its default structure is 4-connected): a Python flood fill cost 9 ms an
    image, most of a bench's scoring time."""
    from scipy.ndimage import label

    labels, count = label(mask)
    if not count:
        return np.zeros_like(mask)
    sizes = np.bincount(labels.ravel())[1:]  # labels are numbered in raster order of their first pixel
    return np.asarray(labels == int(sizes.argmax()) + 1)


def detect(image: np.ndarray) -> Detection:
    """Read the attributes off a uint8 [64, 64, 3] picture."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got {image.shape}")
    classes = _classes(image)
    border = np.concatenate(
        [
            classes[:_BORDER].ravel(),
            classes[-_BORDER:].ravel(),
            classes[:, :_BORDER].ravel(),
            classes[:, -_BORDER:].ravel(),
        ]
    )
    bg_index = int(np.bincount(border, minlength=len(COLORS)).argmax())
    background = COLORS[bg_index]
    counts = np.bincount(classes.ravel(), minlength=len(COLORS))
    counts[bg_index] = 0
    if counts.max() < MIN_AREA:
        return Detection(background, None, None, None, None, int(counts.max()), None)
    fg_index = int(counts.argmax())
    # Nearer the foreground colour than the background one: half coverage and up.
    pixels = image.astype(np.float32)
    to_fg = ((pixels - PALETTE_ARRAY[fg_index]) ** 2).sum(-1)
    to_bg = ((pixels - PALETTE_ARRAY[bg_index]) ** 2).sum(-1)
    region = _largest_component(to_fg < to_bg)
    area = int(region.sum())
    if area < MIN_AREA:
        return Detection(background, COLORS[fg_index], None, None, None, area, None)
    ys, xs = np.nonzero(region)
    # Pixel centres, as shapes.shape_mask measures them.
    cx, cy = float(xs.mean()) + 0.5, float(ys.mean()) + 0.5
    best_shape, best_iou = SHAPES[0], -1.0
    for shape in SHAPES:
        radius = math.sqrt(area / AREA_PER_R2[shape])
        template = shape_mask(shape, cx, cy, radius, size=image.shape[0]) >= 0.5
        iou = float((template & region).sum() / max((template | region).sum(), 1))
        if iou > best_iou:
            best_shape, best_iou = shape, iou
    radius = math.sqrt(area / AREA_PER_R2[best_shape])
    size = "small" if radius < SIZE_THRESHOLD else "large"
    position = min(POSITIONS, key=lambda p: (ANCHORS[p][0] - cx) ** 2 + (ANCHORS[p][1] - cy) ** 2)
    return Detection(background, COLORS[fg_index], best_shape, size, position, area, (cx, cy))


def score(image: np.ndarray, prompt: Prompt) -> Score:
    """Compare what the picture shows with what the prompt asks."""
    found = detect(image)
    return Score(
        background=found.background == prompt.background,
        color=found.color == prompt.color,
        shape=found.shape == prompt.shape,
        size=found.size == prompt.size,
        position=None if prompt.position is None else found.position == prompt.position,
    )


@dataclass(frozen=True)
class Summary:
    """Fractions right over many pictures; ``position`` over those whose prompt names one."""

    count: int
    background: float
    color: float
    shape: float
    size: float
    position: float | None
    fbs: float
    all: float

    def as_dict(self) -> dict[str, float | int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def summarize(scores: Sequence[Score]) -> Summary:
    if not scores:
        raise ValueError("no scores to summarize")

    def mean(values: Iterable[bool]) -> float:
        items = list(values)
        return sum(items) / len(items)

    positioned = [s.position for s in scores if s.position is not None]
    return Summary(
        count=len(scores),
        background=mean(s.background for s in scores),
        color=mean(s.color for s in scores),
        shape=mean(s.shape for s in scores),
        size=mean(s.size for s in scores),
        position=mean(positioned) if positioned else None,
        fbs=mean(s.fbs for s in scores),
        all=mean(s.all for s in scores),
    )
