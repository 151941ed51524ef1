"""What a mode whose file is missing tells the artist: where that file can be given today."""

from __future__ import annotations

from engine.contract.modes import ModelRole
from gui.state.model_setup import missing_hint


def test_a_first_mode_file_is_added_in_the_window() -> None:
    hint = missing_hint((str(ModelRole.LCM_LORA),))
    assert "Models tab or in Settings" in hint and "--model" not in hint


def test_a_field_file_is_sent_to_the_command_line_the_window_cannot_take() -> None:
    hint = missing_hint(("tcd-lora",))
    assert "--model tcd-lora=PATH" in hint and "Settings" not in hint
