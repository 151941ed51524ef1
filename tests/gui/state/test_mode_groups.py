"""The mode panel's families and presets, read from the mode records: a mode joins them by its data."""

from __future__ import annotations

from dataclasses import replace

from engine.contract.modes import DEFAULT_COMPARISON, MODES, ModeFile, ModeSpec
from gui.state.mode_groups import (
    FAMILY_LABELS,
    USER_GROUP,
    Preset,
    choose_preset,
    mode_groups,
    preset_members,
    preset_note,
)

TITLES = {name: spec.title for name, spec in MODES.items()}


def own_steps(mode: str) -> int:
    return MODES[mode].default_steps


def user_mode(name: str, family: str) -> ModeSpec:
    """A mode as a user's modes.toml gives it: a copy of a built-in one, read from another file."""
    return replace(
        MODES["lcm-lora"], name=name, title=f"my {name}", family=family, source="/config/modes.toml"
    )


def test_every_builtin_mode_is_in_its_familys_group_once() -> None:
    groups = mode_groups(MODES.values())
    listed = [mode for group in groups for mode in group.modes]
    assert sorted(listed) == sorted(MODES)
    for group in groups:
        assert {MODES[mode].family for mode in group.modes} == {group.key}
        assert group.label == FAMILY_LABELS[group.key]
    # The ten families the issue names (the user's group only when a user has modes).
    assert len(groups) == len({spec.family for spec in MODES.values()}) == len(FAMILY_LABELS) - 1
    assert groups[0].label == "SDXL reference samplers" and "ddim" in groups[0].modes


def test_a_users_modes_are_listed_apart_last_whatever_family_they_name() -> None:
    specs = [*MODES.values(), user_mode("mine", family="lcm"), user_mode("other", family="newfamily")]
    groups = mode_groups(specs)
    assert groups[-1].key == USER_GROUP and groups[-1].modes == ("mine", "other")
    assert groups[-1].label == "User modes"
    assert "mine" not in next(g for g in groups if g.key == "lcm").modes


def test_a_family_without_a_label_is_headed_by_its_id() -> None:
    specs = [*MODES.values(), replace(MODES["tcd"], name="new", family="newfamily")]
    assert mode_groups(specs)[-1].label == "newfamily"


def test_the_refiners_preset_is_its_five_modes() -> None:
    assert preset_members(Preset.REFINERS, MODES, own_steps) == DEFAULT_COMPARISON


def test_the_step_presets_follow_each_modes_default_steps() -> None:
    four = preset_members(Preset.FOUR_STEP, MODES, own_steps)
    assert four and all(MODES[m].default_steps == 4 for m in four)
    assert "ddim" not in four  # 30 steps: no reference in this one
    one = preset_members(Preset.ONE_STEP, MODES, own_steps)
    assert one[0] == "ddim" and all(MODES[m].default_steps == 1 for m in one[1:])
    # A file distilled for 8 steps moves its mode out of the 4-step preset, and one for 1 step into the 1-step.
    eight = preset_members(Preset.FOUR_STEP, MODES, lambda m: 8 if m == "lightning-lora" else own_steps(m))
    assert "lightning-lora" in four and "lightning-lora" not in eight
    assert "lightning" in preset_members(Preset.ONE_STEP, MODES, lambda m: 1 if m == "lightning" else 4)


def test_a_mode_added_to_the_data_joins_the_presets_it_fits() -> None:
    specs = dict(MODES)
    specs["new-lora"] = replace(MODES["tcd"], name="new-lora", default_steps=1, file=ModeFile.LORA)
    steps = {name: spec.default_steps for name, spec in specs.items()}
    assert "new-lora" in preset_members(Preset.LORAS, specs, steps.__getitem__)
    assert "new-lora" in preset_members(Preset.ONE_STEP, specs, steps.__getitem__)
    assert "new-lora" not in preset_members(Preset.FOUR_STEP, specs, steps.__getitem__)


def test_the_lora_preset_is_every_lora_and_the_reference() -> None:
    loras = preset_members(Preset.LORAS, MODES, own_steps)
    assert set(loras) == {n for n, s in MODES.items() if s.file is ModeFile.LORA} | {"ddim"}


def test_a_preset_ticks_the_present_and_says_which_it_skipped() -> None:
    present = ["ddim", "lcm", "lcm-lora", "euler"]
    choice = choose_preset(Preset.REFINERS, MODES, own_steps, present)
    assert choice.ticked == ("ddim", "lcm", "lcm-lora")
    assert choice.skipped == ("lightning", "lightning-lora")
    note = preset_note(choice, TITLES)
    assert note.startswith("DDIM, LCM and Lightning: ticked 3; skipped, files absent: ")
    assert MODES["lightning"].title in note and MODES["lightning-lora"].title in note


def test_a_preset_with_only_its_reference_present_changes_nothing() -> None:
    choice = choose_preset(Preset.ONE_STEP, MODES, own_steps, ["ddim", "lcm"])
    assert choice.ticked == ("ddim",) and choice.empty
    assert "the choice is unchanged" in preset_note(choice, TITLES)
    assert not choose_preset(Preset.REFINERS, MODES, own_steps, ["ddim"]).empty  # ddim is one of the five
