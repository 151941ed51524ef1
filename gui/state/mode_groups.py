"""The mode panel's families and presets, read from the mode records (ModeSpec) alone; Qt-free.

A family is ModeSpec.family as the mode files give it; a user's modes are listed apart, whatever
family they name, so that the artist sees at once which modes are their own. The presets are rules on
the records (file kind, default steps), so that a mode added to builtin.toml joins them unasked; the
first is the exception, by definition the five modes Refiners 0.4 compares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from engine.contract.modes import DEFAULT_COMPARISON, ModeFile, ModeSpec
from engine.outputs.trilemma import REFERENCE_MODE

BUILTIN_SOURCE = "built-in"  # ModeSpec.source of the modes of resources/modes/builtin.toml
USER_GROUP = "user"

# Each built-in family's heading; a family not named here (a newer builtin.toml) is headed by its id.
FAMILY_LABELS: Mapping[str, str] = {
    "sdxl": "SDXL reference samplers",
    "lcm": "LCM",
    "lightning": "Lightning",
    "tcd": "TCD",
    "hyper-sd": "Hyper-SD",
    "dmd2": "DMD2",
    "pcm": "PCM",
    "flash": "Flash",
    "turbo": "Turbo",
    USER_GROUP: "User modes",
}


@dataclass(frozen=True)
class ModeGroup:
    key: str  # the family, or USER_GROUP
    label: str
    modes: tuple[str, ...]  # in the mode files' order


def mode_groups(specs: Iterable[ModeSpec]) -> tuple[ModeGroup, ...]:
    """The built-in modes by family, families in the order of their first mode; then the user's modes."""
    families: dict[str, list[str]] = {}
    for spec in specs:
        key = spec.family if spec.source == BUILTIN_SOURCE else USER_GROUP
        families.setdefault(key, []).append(spec.name)
    user = families.pop(USER_GROUP, None)
    groups = [ModeGroup(key, FAMILY_LABELS.get(key, key), tuple(names)) for key, names in families.items()]
    if user:
        groups.append(ModeGroup(USER_GROUP, FAMILY_LABELS[USER_GROUP], tuple(user)))
    return tuple(groups)


class Preset(StrEnum):
    REFINERS = "refiners"
    FOUR_STEP = "four-step"
    LORAS = "loras"
    ONE_STEP = "one-step"


PRESET_LABELS: Mapping[Preset, str] = {
    Preset.REFINERS: "DDIM, LCM and Lightning",
    Preset.FOUR_STEP: "Every 4-step mode",
    Preset.LORAS: "Every LoRA on this checkpoint",
    Preset.ONE_STEP: "1-step",
}

PRESET_TIPS: Mapping[Preset, str] = {
    Preset.REFINERS: "The five modes of Refiners 0.4: DDIM, the LCM UNet and LoRA, the Lightning UNet and LoRA",
    Preset.FOUR_STEP: "Every mode whose default is 4 steps (a Lightning or Hyper-SD file's own count counts)",
    Preset.LORAS: "Every mode that is a LoRA on the SDXL base, with DDIM as the reference",
    Preset.ONE_STEP: "Every mode whose default is 1 step, with DDIM as the reference",
}

# The mode's default steps as the panel has it: a file distilled for N steps (sdxl_lightning_8step_lora)
# makes N the default, so that the 8-step Lightning file is no 4-step mode.
StepsOf = Callable[[str], int]


# The presets that add the reference to their own modes, for the trilemma to measure them against.
WITH_REFERENCE = frozenset({Preset.LORAS, Preset.ONE_STEP})


def _is_member(preset: Preset, spec: ModeSpec, steps_of: StepsOf) -> bool:
    if preset is Preset.REFINERS:
        return spec.name in DEFAULT_COMPARISON
    if preset is Preset.FOUR_STEP:
        return steps_of(spec.name) == 4
    if preset is Preset.LORAS:
        return spec.file is ModeFile.LORA
    return steps_of(spec.name) == 1


def preset_members(preset: Preset, specs: Mapping[str, ModeSpec], steps_of: StepsOf) -> tuple[str, ...]:
    """Every mode the preset names, present or not, in the mode files' order."""
    return tuple(
        name
        for name, spec in specs.items()
        if _is_member(preset, spec, steps_of) or (preset in WITH_REFERENCE and name == REFERENCE_MODE)
    )


@dataclass(frozen=True)
class PresetChoice:
    preset: Preset
    ticked: tuple[str, ...]  # the members whose files are present
    skipped: tuple[str, ...]  # the members whose files are absent

    @property
    def empty(self) -> bool:
        """Nothing of the preset's own is present (the reference it adds alone compares nothing)."""
        own = [m for m in self.ticked if not (self.preset in WITH_REFERENCE and m == REFERENCE_MODE)]
        return not own


def choose_preset(
    preset: Preset, specs: Mapping[str, ModeSpec], steps_of: StepsOf, available: Iterable[str]
) -> PresetChoice:
    present = set(available)
    members = preset_members(preset, specs, steps_of)
    return PresetChoice(
        preset,
        ticked=tuple(m for m in members if m in present),
        skipped=tuple(m for m in members if m not in present),
    )


def preset_note(choice: PresetChoice, titles: Mapping[str, str]) -> str:
    """What the preset did, in one line: the modes it ticked, and those it skipped for want of files."""
    label = PRESET_LABELS[choice.preset]
    if choice.empty:
        missing = ", ".join(titles[m] for m in choice.skipped)
        return f"{label}: no mode of it has its files here ({missing}), so the choice is unchanged"
    text = f"{label}: ticked {len(choice.ticked)}"
    if choice.skipped:
        text += "; skipped, files absent: " + ", ".join(titles[m] for m in choice.skipped)
    return text
