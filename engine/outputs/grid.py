"""A labelled grid of images: one tile per mode, its label under it, optionally a title on top."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from engine.contract.request import RGBImage

_MIN_TILE = 256  # tiny models draw 64 px images; scale them up so that labels fit and pixels show
_PAD = 8
_BACKGROUND = (24, 24, 28)
_TEXT = (235, 235, 235)
_NOTE = (255, 196, 0)


@dataclass(frozen=True)
class Tile:
    image: RGBImage
    lines: tuple[str, ...]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def make_grid(tiles: Sequence[Tile], *, columns: int | None = None, title: str = "") -> Image.Image:
    """Tiles left to right, wrapping after `columns`; every tile scaled to the same size."""
    if not tiles:
        raise ValueError("a grid needs at least one tile")
    columns = columns or len(tiles)
    rows = -(-len(tiles) // columns)
    height, width = tiles[0].image.shape[:2]
    scale = max(1, -(-_MIN_TILE // max(width, height)))
    tile_w, tile_h = width * scale, height * scale
    font = _font(14)
    line_h = 18
    # Wrap the title to the grid's width (about 7.5 px a character at this size).
    width_chars = max(20, int((columns * (tile_w + _PAD)) / 7.5))
    title = "\n".join(textwrap.fill(part, width_chars) for part in title.splitlines()) if title else ""
    label_h = line_h * max(len(t.lines) for t in tiles) + _PAD
    title_h = (line_h * (title.count("\n") + 1) + _PAD) if title else 0
    canvas = Image.new(
        "RGB",
        (columns * (tile_w + _PAD) + _PAD, title_h + rows * (tile_h + label_h + _PAD) + _PAD),
        _BACKGROUND,
    )
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.multiline_text((_PAD, _PAD), title, fill=_NOTE, font=font, spacing=4)
    for index, tile in enumerate(tiles):
        x = _PAD + (index % columns) * (tile_w + _PAD)
        y = title_h + _PAD + (index // columns) * (tile_h + label_h + _PAD)
        picture = Image.fromarray(tile.image).resize((tile_w, tile_h), Image.Resampling.NEAREST)
        canvas.paste(picture, (x, y))
        for line_index, line in enumerate(tile.lines):
            draw.text((x, y + tile_h + 4 + line_index * line_h), line, fill=_TEXT, font=font)
    return canvas
