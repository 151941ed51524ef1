"""What a run's files say: the PNG's A1111 text, the image sidecar, the grid's captions, the report's
per-image entries. engine.outputs.run_writer writes them."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from engine.contract.modes import MODES, GuidanceKind
from engine.contract.request import ComparisonResult, GenerationRequest, ModeResult
from engine.outputs.grid import Tile, make_grid
from engine.outputs.infotext import StyleTag, fewstep_infotext
from engine.outputs.provenance import FileRecord


@dataclass(frozen=True)
class RunContext:
    """What the files should say about where an image came from."""

    model_label: str  # e.g. the base folder's name, or the built-in pocket model's
    device: str
    note: str = ""  # shown on the grid, e.g. what the built-in pocket model can draw
    style_names: Mapping[str, str] = field(default_factory=dict)  # style adapter -> its file's name
    device_type: str = ""  # "cpu", "cuda", "mps"
    dtype: str = ""  # "float32", "float16", "bfloat16"
    model_files: tuple[FileRecord, ...] = ()  # every file the models came from, hashed
    replay: Mapping[str, Any] | None = None  # what reproduce.py needs to load the same files
    # AUTOMATIC1111's short hashes (engine.outputs.hash_cache), hashed by the engine's thread, never the GUI's:
    model_hash: str | None = None  # of a single-file base model; None for a diffusers folder
    style_hashes: Mapping[str, str] = field(default_factory=dict)  # style adapter -> its `Lora hashes` hash


@dataclass(frozen=True, kw_only=True)
class SavedImage:
    """Where engine.outputs.run_writer.RunWriter saved one image: the PNG and its JSON sidecar."""

    png: Path
    sidecar: Path


def version_of(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def guidance_label(result: ModeResult) -> str:
    """How the guidance number acts in this mode, in words an artist knows."""
    if MODES[result.mode].guidance_kind is GuidanceKind.EMBEDDING:
        return f"guidance {result.guidance:g} (embedded)"
    return f"CFG {result.guidance:g}" if result.guidance > 1.0 else "CFG off"


def tile_lines(result: ModeResult) -> tuple[str, ...]:
    """The grid's caption: what ran, then where the seconds went. Short lines: tiles are narrow."""
    t = result.timings
    encoding = "shared" if result.text_encoding_shared else f"{t.text_encoding:.2f}"
    return (
        f"{result.mode} · {result.steps} steps · {guidance_label(result)}",
        f"{t.total:.2f} s · seed {result.seed}",
        f"text {encoding} · denoise {t.denoising:.2f}",
        f"decode {t.decode:.2f} · switch {t.switch:.3f}",
    )


def png_parameters(result: ModeResult, comparison: ComparisonResult, context: RunContext) -> str:
    return png_parameters_for(result, comparison.request, comparison.width, comparison.height, context)


def png_parameters_for(
    result: ModeResult, request: GenerationRequest, width: int, height: int, context: RunContext
) -> str:
    """AUTOMATIC1111's `parameters` text for one image."""
    styles = [
        StyleTag(context.style_names.get(name, name), weight, context.style_hashes.get(name))
        for name, weight in result.styles
    ]
    return fewstep_infotext(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        mode=result.mode,
        steps=result.steps,
        guidance=result.guidance,
        seed=result.seed,
        width=width,
        height=height,
        model=context.model_label,
        model_hash=context.model_hash,
        styles=styles,
        version=f"fewstep {version_of('fewstep')}",
        eta=result.eta,
    )


def png_bytes(image: Image.Image, parameters: str | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    if parameters is not None:
        # Non-ASCII text goes in a UTF-8 iTXt chunk: a tEXt chunk is Latin-1, and its readers disagree.
        if parameters.isascii():
            info.add_text("parameters", parameters)
        else:
            info.add_itxt("parameters", parameters)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def result_record(result: ModeResult, file: str) -> dict[str, Any]:
    t = result.timings
    # eta only for the modes that pass one (TCD's gamma), so the other records stay as they were.
    eta = {"eta": result.eta} if result.eta is not None else {}
    return {
        "mode": result.mode,
        "steps": result.steps,
        "guidance": result.guidance,
        "scheduler": result.scheduler,
        "timesteps": [int(x) if float(x).is_integer() else x for x in result.timesteps],
        "seed": result.seed,
        "seconds": {
            "text_encoding": round(t.text_encoding, 6),
            "text_encoding_shared": result.text_encoding_shared,
            "switch": round(t.switch, 6),
            "denoising": round(t.denoising, 6),
            "per_step": [round(s, 6) for s in t.per_step],
            "decode": round(t.decode, 6),
            "total": round(t.total, 6),
        },
        "warnings": list(result.warnings),
        "file": file,
        **eta,
        **({"lora_route": result.lora_route} if result.lora_route is not None else {}),
    }


def image_sidecar(
    result: ModeResult,
    request: GenerationRequest,
    context: RunContext,
    *,
    parameters: str,
    file: str,
    run_id: str | None = None,
) -> dict[str, Any]:
    """The JSON written beside one saved image: what made it, in full, and the PNG's own text."""
    height, width = result.image.shape[:2]
    data: dict[str, Any] = {"format": "fewstep-image-1"}
    if run_id is not None:
        data["run"] = run_id
    data |= {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "size": [width, height],
        "model": context.model_label,
        "model_hash": context.model_hash,
        "styles": [
            {
                "name": context.style_names.get(name, name),
                "weight": weight,
                "hash": context.style_hashes.get(name),
            }
            for name, weight in result.styles
        ],
        "device": context.device,
        "parameters": parameters,
        **result_record(result, file),
    }
    return data


def image_name(result: ModeResult, several_seeds: bool) -> str:
    return f"{result.mode}-seed{result.seed}.png" if several_seeds else f"{result.mode}.png"


def comparison_grid(comparison: ComparisonResult, title: str) -> Image.Image:
    """The one labelled grid of a comparison: a column per mode, a row per seed, captions of their costs."""
    tiles = [Tile(result.image, tile_lines(result)) for result in comparison.results]
    columns = len({r.mode for r in comparison.results})
    return make_grid(tiles, columns=columns, title=title)
