"""AUTOMATIC1111's sampler and schedule names, to and from Fewstep's modes.

A1111 names a sampling method twice: `Sampler` (the solver: "Euler", "DPM++ 2M", "DDIM", "LCM") and, since
version 1.9, `Schedule type` (which noise levels it visits: "Automatic", "Karras", "SGM Uniform", "DDIM",
...). Before 1.9 the schedule was a suffix of the sampler's name ("DPM++ 2M Karras"), and ComfyUI's
metadata savers write ComfyUI's own spellings ("dpmpp_2m", "sgm_uniform"). All of these are read.

Writing: each mode gets A1111's nearest names. Fewstep's schedules are diffusers' timestep spacings:
- "leading" with steps_offset 1 (SDXL's own config: DDIM, Euler, DPM++ 2M) visits timesteps 1, 1+k,
  1+2k, ... which is exactly A1111's "DDIM" schedule type, and its DDIM sampler's own (Automatic) one;
- "trailing" (Lightning) starts at t=999 and spaces evenly down, which A1111 calls "SGM Uniform";
- LCM's scheduler picks its own timesteps from its distillation grid: A1111's LCM sampler under
  "Automatic" is the same idea, so LCM is never written as a spacing.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.contract.modes import ModeSpec

AUTOMATIC = "Automatic"

# Lower-case schedule names, as A1111 (1.9+), its old sampler suffixes, ComfyUI and old Fewstep files
# write them, mapped to the spacing they stand for: "leading", "trailing", or "other" (a curve no
# Fewstep scheduler follows, approximated by the mode's own spacing).
_SCHEDULES = {
    "automatic": "own",
    "": "own",
    "ddim": "leading",
    "ddim uniform": "leading",
    "leading": "leading",
    "normal": "leading",
    "sgm uniform": "trailing",
    "trailing": "trailing",
    "simple": "trailing",
    "uniform": "other",
    "karras": "other",
    "exponential": "other",
    "polyexponential": "other",
    "kl optimal": "other",
    "align your steps": "other",
    "beta": "other",
    "turbo": "other",
}
# Old A1111 names carried the schedule as a suffix; the longer suffix is tried first.
_SUFFIXES = ("sgm uniform", "polyexponential", "exponential", "karras", "uniform")

# A1111's sampler names (lower case), with ComfyUI's spellings normalised to them, and the Fewstep mode
# each runs nearest to; the third item names an approximation in the sampler itself.
_SAMPLERS: dict[str, tuple[str, str | None]] = {
    "ddim": ("ddim", None),
    "lcm": ("lcm-lora", None),
    "euler": ("euler", None),
    "euler a": ("euler", "Euler a adds fresh noise each step; read as plain Euler"),
    "dpm++ 2m": ("dpmpp-2m", None),
    "dpm++ 2m sde": ("dpmpp-2m", "DPM++ 2M SDE adds fresh noise each step; read as DPM++ 2M"),
}
_ALIASES = {
    "euler ancestral": "euler a",
    "dpmpp 2m": "dpm++ 2m",
    "dpmpp 2m sde": "dpm++ 2m sde",
    "dpmpp 2m sde gpu": "dpm++ 2m sde",
}
# Euler on the trailing schedule at a few steps is SDXL-Lightning's recipe (ComfyUI's euler +
# sgm_uniform); at more steps it is the plain base model with another spacing.
LIGHTNING_MAX_STEPS = 8


def a1111_names(spec: ModeSpec) -> tuple[str, str]:
    """(Sampler, Schedule type) as AUTOMATIC1111 would write the nearest method to this mode."""
    if spec.schedule_label is not None:
        return spec.sampler_label, spec.schedule_label
    if spec.scheduler in ("LCMScheduler", "TCDScheduler"):  # their own 50-point grid: no schedule choice
        return spec.sampler_label, AUTOMATIC
    spacing = spec.scheduler_overrides.get("timestep_spacing", "leading")
    if spacing == "trailing":
        return spec.sampler_label, "SGM Uniform"
    # A1111's DDIM sampler steps on leading timesteps by itself; the others need the DDIM schedule.
    return spec.sampler_label, AUTOMATIC if spec.sampler_label == "DDIM" else "DDIM"


@dataclass(frozen=True)
class SamplerReading:
    mode: str | None
    approximations: tuple[str, ...] = ()  # what the mode does differently, in words
    unknown: str | None = None  # why no mode was found


def _normal(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


def split_sampler(sampler: str, schedule: str) -> tuple[str, str]:
    """A1111's current (sampler, schedule) from either the current or the old suffixed form."""
    name, sched = _normal(sampler), _normal(schedule)
    name = _ALIASES.get(name, name)
    if name not in _SAMPLERS:
        for suffix in _SUFFIXES:
            if name.endswith(" " + suffix):
                stem = name[: -len(suffix) - 1]
                stem = _ALIASES.get(stem, stem)
                if not sched or sched == "automatic":
                    sched = suffix
                name = stem
                break
    return name, sched


def mode_for_sampler(sampler: str, schedule: str, steps: int | None) -> SamplerReading:
    """The nearest Fewstep mode to an A1111 sampler and schedule, and what it approximates."""
    name, sched = split_sampler(sampler, schedule)
    if name not in _SAMPLERS:
        return SamplerReading(
            None, unknown=f"{sampler} has no Fewstep mode; the modes were left as they were"
        )
    mode, note = _SAMPLERS[name]
    notes = [note] if note else []
    spacing = _SCHEDULES.get(sched, "other")
    shown = schedule or sched.title()
    if mode == "lcm-lora":
        if spacing != "own":
            notes.append(f"LCM picks its own timesteps; the {shown} schedule is not applied")
    elif mode == "euler" and spacing == "trailing" and (steps is None or steps <= LIGHTNING_MAX_STEPS):
        mode = "lightning-lora"
    elif spacing in ("other", "trailing"):
        notes.append(f"{shown} approximated: the mode uses leading timestep spacing")
    return SamplerReading(mode, tuple(notes))
