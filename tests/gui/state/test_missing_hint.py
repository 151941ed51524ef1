"""What a mode whose file is missing tells the artist: where that file is given in the window."""

from __future__ import annotations

import pytest

from engine.contract.modes import MODES, ModelRole
from engine.files.field_files import PUBLISHED_FILES
from gui.state.model_setup import missing_hint, role_title


def test_a_first_mode_file_is_added_in_the_window() -> None:
    hint = missing_hint((str(ModelRole.LCM_LORA),))
    assert "Models tab or in Settings" in hint and "--model" not in hint


@pytest.mark.parametrize("role", sorted({s.role for s in MODES.values() if s.role} - set(ModelRole)))
def test_a_field_file_is_added_in_the_window_too(role: str) -> None:
    # Settings now stores every role of the loaded modes, so the window takes the field's files.
    hint = missing_hint((role,))
    assert "Models tab or in Settings" in hint and "--model" not in hint and "cannot take" not in hint
    assert role_title(role) in hint and PUBLISHED_FILES[role] in hint


def test_the_tcd_hint_names_its_file_and_repository() -> None:
    hint = missing_hint(("tcd-lora",))
    assert "TCD LoRA" in hint and "h1t/TCD-SDXL-LoRA" in hint
