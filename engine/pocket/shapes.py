"""Procedural 64x64 drawings of the pocket grammar: one anti-aliased shape on a plain background.

In the engine because the pocket scorer (engine.pocket.scorer) reads pictures back with the same
geometry; devtools.pocket trains the pocket model on these drawings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.pocket.grammar import COLORS, POSITIONS, SHAPES, Prompt

IMAGE_SIZE = 64
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 35, 35),
    "green": (35, 165, 55),
    "blue": (35, 70, 225),
    "yellow": (245, 220, 40),
    "orange": (245, 140, 25),
    "purple": (140, 45, 185),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
PALETTE_ARRAY = np.array([PALETTE[c] for c in COLORS], dtype=np.float32)
# Centres of the five positions, (x, y) in pixels.
ANCHORS: dict[str, tuple[float, float]] = {
    "top left": (18.0, 18.0),
    "top right": (46.0, 18.0),
    "bottom left": (18.0, 46.0),
    "bottom right": (46.0, 46.0),
    "center": (32.0, 32.0),
}
# Half-extent of a shape in pixels, before jitter.
RADII: dict[str, float] = {"small": 7.0, "large": 12.5}
CENTER_JITTER = 2.0  # pixels, uniform in each axis
RADIUS_JITTER = 0.08  # relative, uniform
_SUPERSAMPLE = 4
_SQUARE = 0.9  # a square's half-side relative to the radius
_TRIANGLE = 1.15  # an equilateral triangle's circumradius relative to the radius

assert set(PALETTE) == set(COLORS) and set(ANCHORS) == set(POSITIONS)


@dataclass(frozen=True)
class Layout:
    """Where and how big the shape of one drawing is."""

    shape: str
    color: str
    background: str
    cx: float
    cy: float
    radius: float


def shape_mask(shape: str, cx: float, cy: float, radius: float, size: int = IMAGE_SIZE) -> np.ndarray:
    """Anti-aliased coverage in [0, 1], shape [size, size], of a shape centred at (cx, cy)."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}")
    n = size * _SUPERSAMPLE
    coords = (np.arange(n, dtype=np.float32) + 0.5) / _SUPERSAMPLE
    x = coords[None, :] - cx
    y = coords[:, None] - cy
    if shape == "circle":
        inside = x * x + y * y <= radius * radius
    elif shape == "square":
        half = radius * _SQUARE
        inside = (np.abs(x) <= half) & (np.abs(y) <= half)
    else:
        big = radius * _TRIANGLE
        # Upright equilateral triangle with its centroid at the centre: apex up, base down.
        base = y <= big / 2
        slope = np.sqrt(3.0)
        left = slope * x + y >= -big
        right = -slope * x + y >= -big
        inside = base & left & right
    coverage: np.ndarray = inside.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(1, 3))
    return coverage.astype(np.float32)


def layout_for(prompt: Prompt, rng: np.random.Generator) -> Layout:
    """A random placement that fits the prompt; any of the five positions when it names none."""
    position = prompt.position or POSITIONS[rng.integers(len(POSITIONS))]
    ax, ay = ANCHORS[position]
    cx, cy = ax + rng.uniform(-CENTER_JITTER, CENTER_JITTER), ay + rng.uniform(-CENTER_JITTER, CENTER_JITTER)
    radius = RADII[prompt.size] * (1 + rng.uniform(-RADIUS_JITTER, RADIUS_JITTER))
    return Layout(prompt.shape, prompt.color, prompt.background, float(cx), float(cy), float(radius))


def render(layout: Layout, size: int = IMAGE_SIZE) -> np.ndarray:
    """The drawing as uint8 [size, size, 3]."""
    alpha = shape_mask(layout.shape, layout.cx, layout.cy, layout.radius, size)[..., None]
    fg = np.array(PALETTE[layout.color], dtype=np.float32)
    bg = np.array(PALETTE[layout.background], dtype=np.float32)
    image = alpha * fg + (1 - alpha) * bg
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def draw(prompt: Prompt, rng: np.random.Generator) -> np.ndarray:
    """One drawing of a prompt, uint8 [64, 64, 3]."""
    return render(layout_for(prompt, rng))


def draw_batch(prompts: list[Prompt], rng: np.random.Generator) -> np.ndarray:
    """Drawings of several prompts as float32 [N, 3, 64, 64] in [-1, 1], the VAE's input range."""
    images = np.stack([draw(p, rng) for p in prompts]).astype(np.float32)
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2) / 127.5 - 1.0)
