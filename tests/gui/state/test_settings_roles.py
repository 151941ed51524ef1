"""Settings store every role of the loaded modes (the field's and a user's), keep old files loading, and
give the engine a role's file exactly as `--model ROLE=PATH` does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Signal
from pytestqt.qtbot import QtBot

from devtools.field_fixtures import FieldSet, build_field_set
from devtools.tiny_model import TinyModelSet
from engine.cli import build_parser
from engine.cli.arguments import model_paths
from engine.contract.mode_files import parse_modes
from engine.contract.modes import MODES, ModelRole
from engine.files.model_files import inspect_path
from gui.state.jobs import EngineConfig
from gui.state.model_controller import ModelController
from gui.state.model_setup import Use, assignable_roles, missing_roles, natural_use
from gui.state.settings import Settings, load_settings, save_settings, settings_from_json

CHECK_MS = 5_000


@pytest.fixture(scope="module")
def field(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> FieldSet:
    return build_field_set(tiny_models, tmp_path_factory.mktemp("field") / "models")


class FakeWorker(QObject):
    """What ModelController asks of the engine's worker: the configurations, recorded."""

    reported = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.configs: list[EngineConfig] = []

    def configure(self, config: EngineConfig) -> None:
        self.configs.append(config)


def cli_paths(*argv: str) -> object:
    args = build_parser().parse_args(["compare", "--prompt", "x", "--out", "unused", *argv])
    return model_paths(args)


def test_every_role_of_the_loaded_modes_is_assignable() -> None:
    roles = {s.role for s in MODES.values() if s.role is not None}
    assert set(assignable_roles()) == roles | {ModelRole.BASE}
    assert {"tcd-lora", "dmd2-unet", "turbo", "hyper-cfg-lora"} <= set(assignable_roles())


def test_a_field_role_round_trips_through_the_settings_file(tmp_path: Path) -> None:
    tcd = tmp_path / "TCD-SDXL-LoRA" / "pytorch_lora_weights.safetensors"
    settings = Settings(
        model_paths={ModelRole.BASE: tmp_path / "sdxl", "tcd-lora": tcd, "turbo": tmp_path / "t"}
    )
    path = save_settings(settings)
    assert json.loads(path.read_text())["model_paths"]["tcd-lora"] == str(tcd)
    loaded = load_settings()
    assert loaded.problem is None and loaded.settings == settings


def test_an_old_settings_file_still_loads(tmp_path: Path) -> None:
    version_2 = {
        "schema_version": 2,
        "model_paths": {"base": str(tmp_path / "sdxl"), "lightning-lora": str(tmp_path / "l.safetensors")},
    }
    settings = settings_from_json(version_2)
    assert settings.model_paths == {"base": tmp_path / "sdxl", "lightning-lora": tmp_path / "l.safetensors"}
    # A version 2 file could only hold the five first roles: anything else in one is damage.
    with pytest.raises(ValueError, match="unknown model role 'tcd-lora'"):
        settings_from_json({"schema_version": 2, "model_paths": {"tcd-lora": "/x"}})
    with pytest.raises(ValueError, match="unknown model role 'vae'"):
        settings_from_json({"schema_version": 3, "model_paths": {"vae": "/x"}})


def test_a_role_reaches_the_engine_as_the_cli_gives_it(tiny_models: TinyModelSet, field: FieldSet) -> None:
    tcd, dmd2 = field["tcd"].path, field["dmd2-unet-4step"].path
    settings = Settings(model_paths={"base": tiny_models.base, "tcd-lora": tcd, "dmd2-unet": dmd2})
    given = settings.engine_config().paths
    assert given == cli_paths(
        "--base", str(tiny_models.base), "--model", f"tcd-lora={tcd}", "--model", f"dmd2-unet={dmd2}"
    )
    assert given is not None and given.get("tcd-lora") == tcd and given.get("dmd2-unet") == dmd2
    assert missing_roles(settings, "tcd") == () and missing_roles(settings, "dmd2") == ()
    assert missing_roles(settings, "flash-lora") == ("flash-lora",)


def test_a_user_modes_role_is_stored_and_given_while_its_mode_is_loaded(
    tiny_models: TinyModelSet, field: FieldSet
) -> None:
    text = """
[[mode]]
name = "my-tcd"
label = "My TCD"
file = "lora"
role = "my-tcd-lora"
scheduler = "TCDScheduler"
steps = 4
guidance = 0.0
guidance_kind = "none"
"""
    specs = parse_modes(text, "modes.toml", source="modes.toml", known=tuple(MODES.values()))
    settings = Settings(model_paths={"base": tiny_models.base, "my-tcd-lora": field["tcd"].path})
    with MODES.added(specs):
        assert "my-tcd-lora" in assignable_roles()
        paths = settings.engine_config().paths
        assert paths is not None and paths.get("my-tcd-lora") == field["tcd"].path
    # Its mode file gone: the file stays in the settings, but the engine is not given a role no mode has.
    assert settings_from_json(settings.to_json()).model_paths["my-tcd-lora"] == field["tcd"].path
    paths = settings.engine_config().paths
    assert paths is not None and paths.get("my-tcd-lora") is None


def test_assigning_a_field_file_in_the_window_reloads_the_engine_with_it(
    qtbot: QtBot, tiny_models: TinyModelSet, field: FieldSet
) -> None:
    worker = FakeWorker()
    controller = ModelController(Settings(model_paths={"base": tiny_models.base}), worker)  # type: ignore[arg-type]
    hyper = field["hyper-lora-4steps"].path
    use = natural_use(inspect_path(hyper))
    assert use == Use("hyper-lora")  # a double-click gives it the role its name says
    with qtbot.waitSignal(controller.assigned, timeout=CHECK_MS) as answered:
        controller.assign(use, hyper)
    assert answered.args == [True]
    assert controller.settings.model_paths["hyper-lora"] == hyper
    assert load_settings().settings.model_paths["hyper-lora"] == hyper
    assert worker.configs[-1].paths == cli_paths(
        "--base", str(tiny_models.base), "--model", f"hyper-lora={hyper}"
    )


def test_the_undecided_lora_is_said_which_in_the_window(
    qtbot: QtBot, tiny_models: TinyModelSet, field: FieldSet, tmp_path: Path
) -> None:
    loose = tmp_path / "downloads" / "pytorch_lora_weights.safetensors"
    loose.parent.mkdir()
    loose.write_bytes(field["tcd"].path.read_bytes())
    assert natural_use(inspect_path(loose)) is None  # a double-click cannot choose
    worker = FakeWorker()
    controller = ModelController(Settings(model_paths={"base": tiny_models.base}), worker)  # type: ignore[arg-type]
    messages: list[str] = []
    controller.message.connect(lambda text, _level: messages.append(text))
    with qtbot.waitSignal(controller.assigned, timeout=CHECK_MS):
        controller.assign(Use("tcd-lora"), loose)  # the menu's "Use as TCD LoRA"
    assert controller.settings.model_paths["tcd-lora"] == loose
    assert "TCD LoRA" in messages[-1] and "is now the TCD LoRA" in messages[-1]
    # A file whose name says another distillation is refused, naming the role that takes it.
    with qtbot.waitSignal(controller.assigned, timeout=CHECK_MS) as answered:
        controller.assign(Use("tcd-lora"), field["dmd2-lora-4step"].path)
    assert answered.args == [False] and "--model dmd2-lora" in messages[-1]
    controller.shutdown()


def test_the_settings_dialog_has_a_row_for_every_role(
    qtbot: QtBot, tiny_models: TinyModelSet, field: FieldSet
) -> None:
    from gui.widgets.settings_dialog import SettingsDialog

    dialog = SettingsDialog(Settings(model_paths={"base": tiny_models.base}))
    qtbot.addWidget(dialog)
    assert list(dialog.rows) == list(assignable_roles())
    dmd2 = field["dmd2-unet-4step"].path
    row = dialog.rows["dmd2-unet"]
    row.edit.setText(str(dmd2))
    qtbot.waitUntil(lambda: not row.pending, timeout=CHECK_MS)
    assert row.error is None and row.status.text() == "✓ DMD2 UNet, 4 steps"
    wrong = dialog.rows["hyper-lora"]
    wrong.edit.setText(str(field["dmd2-lora-4step"].path))
    qtbot.waitUntil(lambda: not wrong.pending, timeout=CHECK_MS)
    assert wrong.error is not None and "--model dmd2-lora" in wrong.error
    wrong.edit.clear()
    chosen = dialog.chosen_settings()
    assert chosen.model_paths == {"base": tiny_models.base, "dmd2-unet": dmd2}
    dialog.done(0)
