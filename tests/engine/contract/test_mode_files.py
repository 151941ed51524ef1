"""Mode files: the built-in modes are TOML a user can write; a user's mode runs end to end like a built-in
one (CLI compare, report.json, reproduce.py bit for bit); each kind of mistake gets one line naming the
file, the line and the key, and leaves the built-in modes as they were."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import diffusers
import pytest

from devtools.tiny_model import TinyModelSet
from engine.cli import EXIT_BAD_INPUT, EXIT_OK, main
from engine.cli.user_modes import user_modes
from engine.contract.mode_files import ModeFileError, parse_modes, user_modes_path
from engine.contract.modes import MODES, SCHEDULERS, ModeFile
from tests.conftest import REPO_ROOT
from tests.engine.outputs.test_reproduce import assert_replays_bit_for_bit, recipe_of

GOOD = """
[[mode]]
name = "my-tcd"
label = "My TCD on the LCM-LoRA"
family = "mine"
file = "lora"
role = "my-lora"
scheduler = "TCDScheduler"
steps = 3
timesteps = [999, 666, 333]
guidance = 0.0
guidance_kind = "none"
eta = 0.2
eta_range = [0.0, 1.0]
"""


def test_the_builtin_modes_come_from_the_shipped_toml() -> None:
    assert list(MODES)[:7] == ["ddim", "lcm", "lcm-lora", "lightning", "lightning-lora", "euler", "dpmpp-2m"]
    assert {"tcd", "hyper-lora", "hyper-unet", "dmd2", "dmd2-lora", "pcm-lora", "flash-lora", "ays"} <= set(
        MODES
    )
    for spec in MODES.values():
        if spec.is_distilled:
            assert spec.card is not None and spec.card.url.startswith("https://") and spec.card.quote, (
                spec.name
            )
    assert MODES["dmd2"].timesteps_for(1) == (399,)
    assert MODES["tcd"].eta == 0.3 and MODES["tcd"].file is ModeFile.LORA


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_the_scheduler_table_says_what_diffusers_does(name: str) -> None:
    scheduler = getattr(diffusers, name)
    takes = "timesteps" in inspect.signature(scheduler.set_timesteps).parameters
    assert takes is SCHEDULERS[name]


def test_a_good_file_reads_into_a_mode(tmp_path: Path) -> None:
    (spec,) = parse_modes(GOOD, "mine.toml", source="mine.toml", known=tuple(MODES.values()))
    assert (spec.name, spec.role, spec.file, spec.eta, spec.timesteps_for(3)) == (
        "my-tcd",
        "my-lora",
        ModeFile.LORA,
        0.2,
        (999, 666, 333),
    )
    assert spec.sampler_label == "TCD" and spec.recommended_steps == (3, 3)


def with_line(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


# Each kind of mistake, and what its one line must name: (file text, "line N", key, words of the problem).
MISTAKES = {
    "syntax": (with_line(GOOD, "steps = 3", "steps = = 3"), "line 9, column", "", "not valid TOML"),
    "unknown key": (with_line(GOOD, "steps = 3", "steps = 3\nspeed = 2"), "line 10", "speed:", "unknown key"),
    "wrong type": (with_line(GOOD, "steps = 3", 'steps = "three"'), "line 9", "steps:", "a whole number"),
    "bool for a number": (
        with_line(GOOD, "guidance = 0.0", "guidance = true"),
        "line 11",
        "guidance:",
        "a number",
    ),
    "unknown scheduler": (
        with_line(GOOD, '"TCDScheduler"', '"TurboScheduler"'),
        "line 8",
        "scheduler:",
        "unknown scheduler class 'TurboScheduler'",
    ),
    "timesteps rising": (
        with_line(GOOD, "[999, 666, 333]", "[333, 666, 999]"),
        "line 10",
        "timesteps:",
        "strictly decrease",
    ),
    "timestep out of range": (
        with_line(GOOD, "[999, 666, 333]", "[1000, 666, 333]"),
        "line 10",
        "timesteps:",
        "0 to 999",
    ),
    "timesteps for another count": (
        with_line(GOOD, "timesteps = [999, 666, 333]", "timesteps = { 4 = [999, 666, 333] }"),
        "line 10",
        "timesteps:",
        "3 timesteps listed for 4 steps",
    ),
    "scheduler without timesteps": (
        with_line(GOOD, '"TCDScheduler"', '"DDIMScheduler"'),
        "line 10",
        "timesteps:",
        "DDIMScheduler takes no explicit timesteps",
    ),
    "duplicate of a built-in": (
        with_line(GOOD, '"my-tcd"', '"tcd"'),
        "line 3",
        "name:",
        "'tcd' is already defined (built-in)",
    ),
    "duplicate in the file": (GOOD + GOOD, "line 17", "name:", "'my-tcd' is already defined (mine.toml)"),
    "missing key": (with_line(GOOD, 'scheduler = "TCDScheduler"\n', ""), "line 2", "scheduler:", "missing"),
    "role of another kind": (
        with_line(GOOD, '"my-lora"', '"lcm-unet"'),
        "line 7",
        "role:",
        "'lcm-unet' is a unet file in mode lcm",
    ),
}


@pytest.mark.parametrize("kind", sorted(MISTAKES))
def test_each_mistake_names_the_file_line_and_key(kind: str) -> None:
    text, line, key, problem = MISTAKES[kind]
    with pytest.raises(ModeFileError) as caught:
        parse_modes(text, "mine.toml", source="mine.toml", known=tuple(MODES.values()))
    message = str(caught.value)
    assert message.startswith(f"mine.toml, {line}"), message
    assert key in message and problem in message, message
    assert "\n" not in message


def test_a_bad_modes_file_on_the_cli_is_one_line_exit_2_and_nothing_written(
    tiny_models: TinyModelSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "mine.toml"
    bad.write_text(MISTAKES["wrong type"][0], encoding="utf-8")
    out = tmp_path / "out"
    before = dict(MODES)
    code = main(
        [
            "compare",
            "--prompt",
            "x",
            "--base",
            str(tiny_models.base),
            "--modes-file",
            str(bad),
            "--out",
            str(out),
        ]
    )
    assert code == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fewstep: error: {bad}, line 9: steps: must be a whole number, not a string 'three'"]
    assert not out.exists()
    assert dict(MODES) == before


def test_a_bad_modes_toml_in_the_config_folder_is_said_and_left_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = user_modes_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MISTAKES["unknown key"][0], encoding="utf-8")
    try:
        assert user_modes([]) == ()
    finally:
        path.unlink()
    err = capsys.readouterr().err
    assert f"{path}, line 10: speed: unknown key" in err and "built-in modes only" in err


def test_a_user_mode_runs_end_to_end_like_a_builtin_one(tiny_models: TinyModelSet, tmp_path: Path) -> None:
    modes_file = tmp_path / "mine.toml"
    modes_file.write_text(GOOD, encoding="utf-8")
    out = tmp_path / "out"
    argv = [
        "compare",
        "--prompt",
        "a large red circle on a blue background",
        "--modes",
        "ddim,my-tcd",
        "--steps",
        "ddim=2",
        "--eta",
        "my-tcd=0.1",
        "--base",
        str(tiny_models.base),
        "--model",
        f"my-lora={tiny_models.lcm_lora}",
        "--modes-file",
        str(modes_file),
        "--out",
        str(out),
    ]
    assert main(argv) == EXIT_OK
    assert "my-tcd" not in MODES  # joined for that command only
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    (mine,) = [r for r in report["results"] if r["mode"] == "my-tcd"]
    assert (mine["scheduler"], mine["timesteps"], mine["eta"], mine["steps"]) == (
        "TCDScheduler",
        [999, 666, 333],
        0.1,
        3,
    )
    assert report["reproduce"]["cannot_replay"] == []
    recipe = recipe_of(out)
    (image,) = [i for i in recipe["images"] if i["mode"] == "my-tcd"]
    assert (image["adapter"], image["timesteps"], image["eta"]) == ("my_lora", [999, 666, 333], 0.1)
    assert recipe["files"]["my_lora"] == str(tiny_models.lcm_lora)
    assert_replays_bit_for_bit(out, [record["file"] for record in report["results"]], tmp_path)


def test_the_example_in_docs_modes_md_reads() -> None:
    text = (REPO_ROOT / "docs" / "modes.md").read_text(encoding="utf-8")
    example = text.split("```toml", 1)[1].split("```", 1)[0]
    (spec,) = parse_modes(example, "modes.md", source="modes.md", known=tuple(MODES.values()))
    assert spec.role == "tcd-lora" and spec.timesteps_for(8) is not None and spec.eta == 0.1


def test_model_flag_refuses_an_unknown_role_a_wrong_file_and_a_file_given_twice(
    tiny_models: TinyModelSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    run = ["compare", "--prompt", "x", "--base", str(tiny_models.base), "--out", str(out)]
    lora = str(tiny_models.lcm_lora)
    assert main([*run, "--model", f"nope-lora={lora}"]) == EXIT_BAD_INPUT
    assert main([*run, "--model", f"dmd2-unet={lora}"]) == EXIT_BAD_INPUT
    assert main([*run, "--lcm-lora", lora, "--model", f"lcm-lora={lora}"]) == EXIT_BAD_INPUT
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3, lines
    assert "unknown file role 'nope-lora'" in lines[0] and "tcd-lora" in lines[0]
    assert (
        f"--model dmd2-unet={lora}: this is an LCM-LoRA, but --model dmd2-unet takes a full SDXL UNet"
        in lines[1]
    )
    assert "the lcm-lora file is given twice" in lines[2]
    assert not out.exists()
