"""What Fewstep reads from a PNG's settings text: the window's drop restores it, and `fewstep info`
prints info_record as JSON, `ignored` being what a drop leaves out, with the reason."""

from __future__ import annotations

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
        "eta": settings.eta,
        "mode": settings.mode,
        "styles": [{"name": s.name, "weight": s.weight, "hash": s.hash} for s in settings.styles],
        "model": settings.model,
        "model_hash": settings.model_hash,
        "source": settings.source,
        "ignored": [{"field": i.field, "reason": i.reason} for i in settings.ignored],
    }
