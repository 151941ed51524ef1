"""`fewstep info FILE.png`: what Fewstep reads from a PNG's settings text, as JSON.

The same reader as the window's drop (engine.outputs.infotext), so what this prints is what a drop
restores, and `ignored` is what it leaves out, with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.outputs.infotext import Infotext, parse_infotext
from engine.outputs.png_text import InfotextError, read_png_text


def read_settings(path: Path) -> Infotext:
    """The settings of a PNG file; InfotextError when it is no PNG, is damaged, or holds none."""
    found = read_png_text(path)
    if found.parameters is None:
        raise InfotextError(f"{path.name} holds no generation settings (no `parameters` text)")
    return parse_infotext(found.parameters, found.keywords)


def info_record(settings: Infotext) -> dict[str, Any]:
    return {
        "prompt": settings.prompt,
        "negative_prompt": settings.negative_prompt,
        "seed": settings.seed,
        "width": settings.width,
        "height": settings.height,
        "steps": settings.steps,
        "guidance": settings.guidance,
        "mode": settings.mode,
        "styles": [{"name": s.name, "weight": s.weight, "hash": s.hash} for s in settings.styles],
        "model": settings.model,
        "model_hash": settings.model_hash,
        "source": settings.source,
        "ignored": [{"field": i.field, "reason": i.reason} for i in settings.ignored],
    }


def print_info(path: Path) -> None:
    print(json.dumps(info_record(read_settings(path)), indent=2, ensure_ascii=False))
