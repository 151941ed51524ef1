"""The settings file: round trip, the environment variable, damaged and newer files; the dialog."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from devtools.tiny_model import TinyModelSet
from engine.contract.modes import ModelRole
from engine.contract.residency import Residency
from engine.files.model_paths import StyleLora
from gui.state.settings import (
    SCHEMA_VERSION,
    Settings,
    StyleSetting,
    default_models_dir,
    load_settings,
    save_settings,
    settings_path,
)
from gui.widgets.settings_dialog import PathRow, SettingsDialog
from tests.gui.conftest import write_vae_file

WAIT_MS = 5_000  # a path's check, answered from the dialog's pool thread


def test_round_trip_through_the_file(tmp_path: Path) -> None:
    settings = Settings(
        model_paths={ModelRole.BASE: tmp_path / "sdxl", ModelRole.LCM_LORA: tmp_path / "lcm.safetensors"},
        output_dir=tmp_path / "images",
        device="cpu",
        live_mode="lcm-lora",
        models_dir=tmp_path / "my models",
        styles=(
            StyleSetting(path=tmp_path / "ink.safetensors", weight=0.6),
            StyleSetting(path=tmp_path / "water.safetensors", weight=-1.25, enabled=False),
        ),
        vae=tmp_path / "sdxl-vae-fp16-fix",
        residency=Residency.ONE,
    )
    path = save_settings(settings)
    assert path == settings_path()
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    loaded = load_settings()
    assert loaded.problem is None
    assert loaded.settings == settings


def test_the_environment_variable_moves_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moved = tmp_path / "elsewhere" / "fewstep.json"
    monkeypatch.setenv("FEWSTEP_SETTINGS", str(moved))
    save_settings(Settings(device="cpu"))
    assert moved.is_file()
    assert load_settings().settings.device == "cpu"


def test_no_file_gives_defaults() -> None:
    loaded = load_settings()
    assert loaded == load_settings()
    assert loaded.problem is None
    assert loaded.settings.uses_builtin_model
    assert loaded.settings.model_paths_for_engine() is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "was not used"),
        ("[]", "JSON object"),
        ('{"schema_version": 99}', "newer Fewstep"),
        ('{"schema_version": 1, "device": "toaster"}', "device"),
        ('{"schema_version": 1, "model_paths": {"vae": "/x"}}', "unknown model role"),
        ('{"schema_version": 1, "model_paths": {"base": 3}}', "must be a path"),
        ('{"schema_version": 1, "live_mode": "nope"}', "live_mode"),
        ('{"device": "cpu"}', "schema_version"),
        ('{"schema_version": 2, "residency": "most"}', "residency"),
        ('{"schema_version": 2, "styles": {}}', "styles must be a list"),
        ('{"schema_version": 2, "styles": [{"path": ""}]}', "styles[0].path"),
        ('{"schema_version": 2, "styles": [{"path": "/a", "weight": 11}]}', "between -10 and 10"),
        ('{"schema_version": 2, "styles": [{"path": "/a", "weight": true}]}', "weight"),
        ('{"schema_version": 2, "styles": [{"path": "/a", "enabled": "yes"}]}', "enabled"),
        ('{"schema_version": 2, "vae": 5}', "vae must be text"),
    ],
)
def test_a_damaged_file_gives_defaults_and_says_why(content: str, problem: str) -> None:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    loaded = load_settings()
    assert loaded.settings == Settings()
    assert loaded.problem is not None and problem in loaded.problem
    assert path.read_text() == content  # left for the user to look at, not overwritten


def test_a_version_1_file_is_migrated(tmp_path: Path) -> None:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    version_1 = {
        "schema_version": 1,
        "model_paths": {"base": str(tmp_path / "sdxl")},
        "output_dir": str(tmp_path / "images"),
        "device": "cpu",
        "live_mode": "lcm",
    }
    path.write_text(json.dumps(version_1))
    loaded = load_settings()
    assert loaded.problem is None
    assert loaded.settings == Settings(
        model_paths={ModelRole.BASE: tmp_path / "sdxl"},
        output_dir=tmp_path / "images",
        device="cpu",
        live_mode="lcm",
    )
    settings = loaded.settings
    assert settings.styles == () and settings.vae is None and settings.residency is Residency.AUTO
    assert settings.resolved_models_dir == default_models_dir()
    save_settings(settings)
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION == 3


def test_styles_reach_the_engine_at_a_fixed_weight(tmp_path: Path) -> None:
    """The engine's configuration holds every style at weight 1; the request carries the real weights,
    so that a toggle or a new weight leaves the configuration (and the loaded engine) as it is."""
    base = Settings(model_paths={ModelRole.BASE: tmp_path / "sdxl"}, vae=tmp_path / "vae")
    one = base.with_style_added(tmp_path / "a.safetensors").with_style_added(tmp_path / "b.safetensors")
    toggled = replace(one, styles=(replace(one.styles[0], enabled=False), replace(one.styles[1], weight=0.3)))
    assert one.engine_config() == toggled.engine_config()
    paths = one.engine_config().paths
    assert paths is not None and paths.vae == tmp_path / "vae"
    assert paths.styles == (
        StyleLora(tmp_path / "a.safetensors", 1.0),
        StyleLora(tmp_path / "b.safetensors", 1.0),
    )
    assert one.style_weights() == (("style-0", 1.0), ("style-1", 1.0))
    assert toggled.style_weights() == (("style-0", 0.0), ("style-1", 0.3))
    assert base.style_weights() is None
    assert replace(toggled, residency=Residency.ALL).engine_config() != toggled.engine_config()


def test_model_paths_for_the_engine(tmp_path: Path) -> None:
    only_lora = Settings(model_paths={ModelRole.LCM_LORA: tmp_path / "a.safetensors"})
    assert only_lora.model_paths_for_engine() is None  # no base: the built-in model runs
    with_base = only_lora.with_model_path(ModelRole.BASE, tmp_path / "sdxl")
    paths = with_base.model_paths_for_engine()
    assert (
        paths is not None and paths.base == tmp_path / "sdxl" and paths.lcm_lora == tmp_path / "a.safetensors"
    )


def set_path(qtbot: QtBot, row: PathRow, path: Path | str) -> None:
    """Type a path into a row and wait for its check, which answers from the dialog's pool thread."""
    row.edit.setText(str(path))
    assert row.pending and "checking" in row.status.text()
    qtbot.waitUntil(lambda: not row.pending, timeout=WAIT_MS)


def test_dialog_checks_paths_on_the_spot_and_round_trips(
    qtbot: QtBot, tiny_models: TinyModelSet, tmp_path: Path
) -> None:
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    base = dialog.rows[ModelRole.BASE]
    set_path(qtbot, base, tmp_path / "missing")
    assert base.error is not None and "does not exist" in base.status.text()
    set_path(qtbot, base, tiny_models.lcm_lora)  # a LoRA given as the base
    assert base.error is not None and "LoRA" in base.error
    dialog.accept()
    assert dialog.result() == 0 and "Fix or clear" in dialog.problem.text()  # refused, dialog stays open

    set_path(qtbot, base, tiny_models.base)
    assert base.error is None and "✓" in base.status.text()
    set_path(qtbot, dialog.rows[ModelRole.LIGHTNING_LORA], tiny_models.lightning_lora)
    assert "4 steps" in dialog.rows[ModelRole.LIGHTNING_LORA].status.text()
    dialog.output_dir.setText(str(tmp_path / "pictures"))
    dialog.device.setCurrentText("cpu")
    dialog.accept()
    assert dialog.result() == 1
    chosen = dialog.chosen_settings()
    save_settings(chosen)
    assert load_settings().settings == chosen
    assert chosen.model_paths == {
        ModelRole.BASE: Path(tiny_models.base),
        ModelRole.LIGHTNING_LORA: Path(tiny_models.lightning_lora),
    }
    assert chosen.output_dir == tmp_path / "pictures" and chosen.device == "cpu"


def test_dialog_checks_the_vae_and_edits_folder_and_residency(
    qtbot: QtBot, tiny_models: TinyModelSet, tmp_path: Path
) -> None:
    styles = (StyleSetting(path=tmp_path / "ink.safetensors", weight=0.4),)
    dialog = SettingsDialog(Settings(styles=styles))
    qtbot.addWidget(dialog)
    assert dialog.residency.currentText() == "auto" and "if they fit" in dialog.residency_note.text()
    vae = dialog.vae_row
    set_path(qtbot, vae, tiny_models.lcm_lora)
    assert vae.error is not None and "not a VAE" in vae.error and "✗" in vae.status.text()
    dialog.accept()
    assert dialog.result() == 0 and "VAE:" in dialog.problem.text()
    set_path(qtbot, vae, write_vae_file(tmp_path / "sdxl_vae.safetensors"))
    assert vae.error is None and "VAE (single file)" in vae.status.text()

    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    dialog.models_dir.setText(str(a_file))
    assert "is a file" in dialog.models_status.text()
    dialog.accept()
    assert dialog.result() == 0 and "Models folder" in dialog.problem.text()
    dialog.models_dir.setText(str(tmp_path / "models"))
    assert "scanned at start" in dialog.models_status.text()
    dialog.residency.setCurrentText("one")
    assert "one full distilled UNet" in dialog.residency_note.text()
    dialog.accept()
    assert dialog.result() == 1
    chosen = dialog.chosen_settings()
    assert chosen.vae == tmp_path / "sdxl_vae.safetensors"
    assert chosen.models_dir == tmp_path / "models"
    assert chosen.residency is Residency.ONE
    assert chosen.styles == styles  # kept: the dialog does not edit them
    save_settings(chosen)
    assert load_settings().settings == chosen


def test_dialog_refuses_a_file_as_output_folder(qtbot: QtBot, tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    dialog.output_dir.setText(str(a_file))
    assert "is a file" in dialog.output_status.text()
    dialog.accept()
    assert dialog.result() == 0
