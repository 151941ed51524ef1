"""What the settings fields of an A1111-style text say beyond Fewstep's own: which tool wrote it, and
which of its settings Fewstep does not apply, in words an artist knows."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

# Read into Fewstep's settings (engine.outputs.infotext), or said only for the record: neither is
# "ignored". Hashes and versions identify files and tools; they change nothing in the image.
USED = frozenset(
    {
        "Steps",
        "Sampler",
        "Schedule type",
        "Scheduler",
        "CFG scale",
        "Seed",
        "Size",
        "Model",
        "Model hash",
        "Fewstep mode",
        "Fewstep styles",
        "Fewstep guidance",
        "Fewstep eta",
        "LCM guidance embedding",
        "Lora hashes",
    }
)
FOR_THE_RECORD = frozenset(
    {
        "Version",
        "App",
        "Hashes",
        "VAE hash",
        "TI hashes",
        "Created Date",
        "Civitai resources",
        "Civitai metadata",
        "Backend",
        "Pipeline",
        "Operations",
        "Batch size",
        "Batch pos",
    }
)

# Settings that come as a family of fields, said once for the family.
_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("Hires", "Hires fix", "Fewstep renders at one size; the upscaling second pass is not applied"),
    ("ADetailer", "ADetailer", "the face and detail repair pass is not applied"),
    ("ControlNet", "ControlNet", "Fewstep has no ControlNet; the control image is not applied"),
    ("Refiner", "Refiner", "the SDXL refiner is not run; the base model does every step"),
    ("Variation seed", "Variation seed", "Fewstep has no variation seeds; only the main seed is used"),
)


def _said_once(fields: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    seen: set[str] = set()
    for key, value in fields.items():
        if key in USED or key in FOR_THE_RECORD:
            continue
        family = next((f for f in _FAMILIES if key.startswith(f[0])), None)
        if family is not None:
            if family[1] not in seen:
                seen.add(family[1])
                yield family[1], family[2]
        elif key == "Clip skip":
            if value.strip() not in ("1", ""):
                yield key, f"Fewstep uses SDXL's fixed text-encoder layers; clip skip {value} is not applied"
        elif key == "Denoising strength":
            if not any(k.startswith("Hires") for k in fields):
                yield key, "image-to-image is not a Fewstep mode; Fewstep starts from noise"
        elif key == "VAE":
            yield key, f"{value} is not loaded; Fewstep uses the VAE its settings name"
        else:
            yield key, f"not a Fewstep setting; {value[:40]!r} is not applied"


def ignored_pairs(fields: Mapping[str, str]) -> list[tuple[str, str]]:
    """(field, reason) for each setting of the text that Fewstep does not apply."""
    return list(_said_once(fields))


_FORGE_VERSION = re.compile(r"f\d+\.\d+")
_A1111_VERSION = re.compile(r"v?\d+\.\d+\.\d+")


def source_of(fields: Mapping[str, str], keywords: frozenset[str] = frozenset()) -> str | None:
    """The tool that wrote the text, where its fields or the PNG's other text chunks tell; else None."""
    version = fields.get("Version", "").strip()
    low = version.lower()
    if "Fewstep mode" in fields or low.startswith("fewstep"):
        return "Fewstep"
    if "Civitai resources" in fields or "Civitai metadata" in fields:
        return "Civitai"
    if {"smproj", "parameters-json"} & keywords or low.replace(" ", "").startswith("stabilitymatrix"):
        return "Stability Matrix"
    if fields.get("App", "").lower() == "sd.next" or {"Backend", "Pipeline"} <= fields.keys():
        return "SD.Next"
    if "comfyui" in low or {"prompt", "workflow"} & keywords:
        return "ComfyUI"
    if "fooocus" in low or "fooocus_scheme" in keywords:
        return "Fooocus"
    # Forge and reForge write their own version first: "f2.0.1v1.10.1-previous-…", "f1.1.0-v1.10.1RC-…".
    if _FORGE_VERSION.match(low):
        return "Forge"
    if _A1111_VERSION.match(low):
        return "AUTOMATIC1111"
    return None
