"""The window reads the config folder's modes.toml: its modes are listed like the built-in ones; a bad
file is one line in the window, and the built-in modes are all there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from engine.contract.mode_files import user_modes_path
from engine.contract.modes import MODES
from gui.app import add_user_modes
from gui.state.model_setup import role_title
from gui.widgets.mode_panel import ModePanel
from gui.widgets.settings_dialog import needs_table

MODE = """
[[mode]]
name = "my-euler"
label = "SDXL + my Euler, trailing"
file = "none"
scheduler = "EulerDiscreteScheduler"
scheduler_overrides = { timestep_spacing = "trailing" }
steps = 12
guidance = 4.0
guidance_kind = "cfg"
"""


@pytest.fixture
def modes_toml() -> Iterator[Path]:
    path = user_modes_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    yield path
    path.unlink(missing_ok=True)
    MODES.set_source(str(path), ())


def test_a_users_mode_is_listed_like_a_builtin_one(qtbot: QtBot, modes_toml: Path) -> None:
    modes_toml.write_text(MODE, encoding="utf-8")
    assert add_user_modes() is None
    assert add_user_modes() is None  # a second window start reads it again, without a clash
    panel = ModePanel()
    qtbot.addWidget(panel)
    assert "my-euler" in panel.rows and set(MODES) <= set(panel.rows)
    assert panel.rows["my-euler"].default_steps == 12


def test_a_bad_file_is_one_line_and_the_builtin_modes_stay(modes_toml: Path) -> None:
    before = dict(MODES)
    modes_toml.write_text(MODE.replace("steps = 12", "steps = 0"), encoding="utf-8")
    problem = add_user_modes()
    assert (
        problem
        == f"{modes_toml}, line 8: steps: 0 is outside 1 to 1000; running with the built-in modes only"
    )
    assert dict(MODES) == before


LORA_MODE = """
[[mode]]
name = "my-look"
label = "SDXL + my look"
file = "lora"
role = "my-look-lora"
scheduler = "TCDScheduler"
steps = 4
guidance = 0.0
guidance_kind = "none"
"""


# A user's mode on a built-in role: that file's row is titled after the built-in mode ("TCD LoRA").
ON_TCD = """
[[mode]]
name = "my-tcd"
label = "My TCD, 6 steps"
file = "lora"
role = "tcd-lora"
scheduler = "TCDScheduler"
steps = 6
guidance = 0.0
guidance_kind = "none"
eta = 0.5
eta_range = [0.0, 1.0]
"""


def test_the_settings_help_says_what_every_loaded_mode_needs(modes_toml: Path) -> None:
    modes_toml.write_text(MODE + LORA_MODE + ON_TCD, encoding="utf-8")
    assert add_user_modes() is None
    lines = needs_table().splitlines()
    assert lines[0] == "Every mode needs the SDXL base."
    assert "SDXL + my Euler, trailing" in lines[1] and lines[1].endswith("need nothing more.")
    # A file's row is titled after its mode ("SDXL + my look" needs the "my look" row), so one line
    # covers every mode with one file; only a mode whose title does not name its row is spelt out.
    assert lines[2].startswith("Each other mode needs the one file its title names")
    assert role_title("my-look-lora") == "my look"
    assert lines[3:] == ["My TCD, 6 steps needs TCD LoRA."]
    for name in MODES:
        spec = MODES[name]
        if spec.role is not None and name != "my-tcd":
            assert role_title(spec.role) in spec.title, name
