"""The pocket drawings, now in engine.pocket.shapes: the scorer that ships in the engine reads its
geometry. Kept here so that the training and evaluation tools import it as before."""

from engine.pocket.shapes import (
    ANCHORS,
    CENTER_JITTER,
    IMAGE_SIZE,
    PALETTE,
    PALETTE_ARRAY,
    RADII,
    RADIUS_JITTER,
    Layout,
    draw,
    draw_batch,
    layout_for,
    render,
    shape_mask,
)

__all__ = [
    "ANCHORS",
    "CENTER_JITTER",
    "IMAGE_SIZE",
    "PALETTE",
    "PALETTE_ARRAY",
    "RADII",
    "RADIUS_JITTER",
    "Layout",
    "draw",
    "draw_batch",
    "layout_for",
    "render",
    "shape_mask",
]
