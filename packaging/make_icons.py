"""Draw Fewstep's icon and write it in each platform's format under resources/icons/.

    .venv/bin/python packaging/make_icons.py [--out resources/icons]

The files are committed; run this again only to change the drawing. One drawing, three steps
climbing to a spark (a few steps to a picture), rendered large and scaled down for smooth edges:
fewstep.png (512 px, Linux .desktop and AppImage), fewstep.ico (16 to 256 px, Windows) and
fewstep.icns (macOS; Pillow writes it on any system).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
CANVAS = 1024
BACKGROUND_TOP = (38, 42, 74)
BACKGROUND_BOTTOM = (92, 72, 196)
STEP = (255, 255, 255)
SPARK = (255, 196, 72)


def draw_icon(size: int = CANVAS) -> Image.Image:
    scale = size / CANVAS
    gradient = Image.new("RGB", (1, size))
    for y in range(size):
        t = y / max(size - 1, 1)
        gradient.putpixel(
            (0, y),
            tuple(round(a + (b - a) * t) for a, b in zip(BACKGROUND_TOP, BACKGROUND_BOTTOM, strict=True)),
        )
    background = gradient.resize((size, size))
    mask = Image.new("L", (size, size), 0)
    margin = round(56 * scale)
    ImageDraw.Draw(mask).rounded_rectangle(
        (margin, margin, size - margin, size - margin), radius=round(200 * scale), fill=255
    )
    icon = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    icon.paste(background, (0, 0), mask)
    draw = ImageDraw.Draw(icon)
    # Three steps of growing height, left to right.
    width, gap, floor = 170, 44, 800
    for i, height in enumerate((190, 330, 470)):
        left = 190 + i * (width + gap)
        box = (left, floor - height, left + width, floor)
        draw.rounded_rectangle(tuple(round(v * scale) for v in box), radius=round(36 * scale), fill=STEP)
    # A four-pointed spark above the last step.
    cx, cy, long, short = 800, 205, 110, 32
    points = [
        (cx, cy - long),
        (cx + short, cy - short),
        (cx + long, cy),
        (cx + short, cy + short),
        (cx, cy + long),
        (cx - short, cy + short),
        (cx - long, cy),
        (cx - short, cy - short),
    ]
    draw.polygon([(round(x * scale), round(y * scale)) for x, y in points], fill=SPARK)
    return icon


def write_icons(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    big = draw_icon()
    png = out / "fewstep.png"
    big.resize((512, 512), Image.Resampling.LANCZOS).save(png, optimize=True)
    ico = out / "fewstep.ico"
    big.save(ico, sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    icns = out / "fewstep.icns"
    big.save(icns)
    return [png, ico, icns]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "icons")
    args = parser.parse_args()
    for path in write_icons(args.out):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
