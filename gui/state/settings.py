"""The application's settings: a typed record in a JSON file of its own, with a schema version.

FEWSTEP_SETTINGS moves the file (tests point it at a temporary one). A damaged or newer file never
stops the application: it starts with defaults and says why, and the damaged file is left as it is
until the user saves new settings.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from platformdirs import user_config_dir, user_data_dir, user_pictures_dir

from engine.contract.limits import STYLE_WEIGHT_RANGE
from engine.contract.modes import MODES, ModelRole
from engine.contract.placement import LoraRoute
from engine.contract.request import style_adapter_name
from engine.contract.residency import Residency
from engine.files.model_paths import ModelPaths, StyleLora
from engine.files.safe_paths import open_regular
from engine.outputs.atomic import atomic_write_text
from gui.state.jobs import EngineConfig

SCHEMA_VERSION = 3
SETTINGS_ENV = "FEWSTEP_SETTINGS"
DEVICES = ("auto", "cpu", "cuda", "mps")
MAX_SETTINGS_BYTES = 1 << 20  # a settings file is a few hundred bytes; anything huge is not ours
MAX_STYLES = 32


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 added the models folder, style LoRAs, the VAE override and the residency policy."""
    return {**data, "schema_version": 2, "models_dir": None, "styles": [], "vae": None, "residency": "auto"}


def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    """Version 3 lets model_paths hold any role a mode declares ("tcd-lora", "dmd2-unet"); a version 2
    file holds only the five first ones, so it reads as it is (and is checked against those five)."""
    _check_roles_of_v2(data.get("model_paths", {}))
    return {**data, "schema_version": 3}


def _check_roles_of_v2(raw: object) -> None:
    if isinstance(raw, dict):
        for key in raw:
            if key not in set(ModelRole):
                raise SettingsError(f"unknown model role {key!r} in model_paths")


# Each entry turns a file of version N into version N + 1, so that a change to the schema never
# breaks the files users already have.
MIGRATIONS: Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2, 2: _v2_to_v3}
# A role as mode files spell it (engine.contract.mode_files): lower-case words joined by "-".
_ROLE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_NOT_ROLES = frozenset({"vae", "style"})  # the other uses of a file, stored apart


def settings_path() -> Path:
    override = os.environ.get(SETTINGS_ENV)
    if override:
        return Path(override)
    return Path(user_config_dir("fewstep", appauthor=False)) / "settings.json"


def default_output_dir() -> Path:
    return Path(user_pictures_dir()) / "Fewstep"


def default_models_dir() -> Path:
    return Path(user_data_dir("fewstep", appauthor=False)) / "models"


@dataclass(frozen=True, kw_only=True)
class StyleSetting:
    """One style LoRA of the list: always loaded; enabled and weight only change the request."""

    path: Path
    weight: float = 1.0
    enabled: bool = True

    @property
    def effective_weight(self) -> float:
        return self.weight if self.enabled else 0.0


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What persists between sessions. No widget state: the window is built from this, not stored in it."""

    schema_version: int = SCHEMA_VERSION
    # By role: the five first ones and any a mode declares. A role no loaded mode declares (its mode
    # file was removed) is kept, but not given to the engine.
    model_paths: Mapping[str, Path] = field(default_factory=dict)
    output_dir: Path | None = None  # None: default_output_dir()
    device: str = "auto"
    live_mode: str = "lightning-lora"
    models_dir: Path | None = None  # None: default_models_dir()
    styles: tuple[StyleSetting, ...] = ()
    vae: Path | None = None  # replaces the base's VAE, e.g. sdxl-vae-fp16-fix
    residency: Residency = Residency.AUTO
    vram: float | None = None  # GiB of free GPU memory to plan for; None: measured (CLI --vram)
    lora_route: LoraRoute = LoraRoute.AUTO  # CLI --lora-route

    @property
    def uses_builtin_model(self) -> bool:
        return ModelRole.BASE not in self.model_paths

    @property
    def resolved_output_dir(self) -> Path:
        return self.output_dir or default_output_dir()

    @property
    def resolved_models_dir(self) -> Path:
        return self.models_dir or default_models_dir()

    def engine_config(self, device: str | None = None) -> EngineConfig:
        return EngineConfig(
            paths=self.model_paths_for_engine(),
            device=device or self.device,
            residency=self.residency,
            vram=self.vram,
            lora_route=self.lora_route,
        )

    def style_weights(self) -> tuple[tuple[str, float], ...] | None:
        """The request's weights for the loaded styles, named as the engine names them.

        None where the engine loads no style: no style is set, or the built-in model runs (the
        artist's SDXL LoRAs do not fit it).
        """
        if not self.styles or self.uses_builtin_model:
            return None
        return tuple(
            (style_adapter_name(index), style.effective_weight) for index, style in enumerate(self.styles)
        )

    def with_style_added(self, path: Path) -> Settings:
        return replace(self, styles=(*self.styles, StyleSetting(path=path)))

    def model_paths_for_engine(self) -> ModelPaths | None:
        """None means the built-in model. Files for other roles without a base are kept but unused."""
        if self.uses_builtin_model:
            return None
        known = {str(ModelRole.BASE), *MODES.role_files()}
        paths = {role: path for role, path in self.model_paths.items() if role in known}
        return ModelPaths.from_roles(
            paths,
            # Every style at weight 1 whatever its setting: a toggle or a new weight then changes only
            # the request, never the engine's configuration, so it reloads nothing.
            styles=tuple(StyleLora(style.path, 1.0) for style in self.styles),
            vae=self.vae,
        )

    def with_model_path(self, role: str, path: Path | None) -> Settings:
        paths = dict(self.model_paths)
        if path is None:
            paths.pop(role, None)
        else:
            paths[role] = path
        return replace(self, model_paths=paths)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "model_paths": {str(role): str(path) for role, path in self.model_paths.items()},
            "output_dir": str(self.output_dir) if self.output_dir else None,
            "device": self.device,
            "live_mode": self.live_mode,
            "models_dir": str(self.models_dir) if self.models_dir else None,
            "styles": [
                {"path": str(style.path), "weight": style.weight, "enabled": style.enabled}
                for style in self.styles
            ],
            "vae": str(self.vae) if self.vae else None,
            "residency": str(self.residency),
            "vram": self.vram,
            "lora_route": str(self.lora_route),
        }


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    problem: str | None = None  # why defaults were used, for the status bar


class SettingsError(ValueError):
    pass


def _string(data: Mapping[str, Any], key: str, default: str | None) -> str | None:
    value = data.get(key, default)
    if value is not None and not isinstance(value, str):
        raise SettingsError(f"{key} must be text")
    return value


def _styles(data: Mapping[str, Any]) -> tuple[StyleSetting, ...]:
    raw = data.get("styles", [])
    if not isinstance(raw, list):
        raise SettingsError("styles must be a list")
    if len(raw) > MAX_STYLES:
        raise SettingsError(f"more than {MAX_STYLES} styles")
    styles = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise SettingsError(f"styles[{index}] must be an object")
        path, weight, enabled = item.get("path"), item.get("weight", 1.0), item.get("enabled", True)
        if not isinstance(path, str) or not path:
            raise SettingsError(f"styles[{index}].path must be a path")
        low, high = STYLE_WEIGHT_RANGE
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not low <= weight <= high:
            raise SettingsError(f"styles[{index}].weight must be a number between {low:g} and {high:g}")
        if not isinstance(enabled, bool):
            raise SettingsError(f"styles[{index}].enabled must be true or false")
        styles.append(StyleSetting(path=Path(path), weight=float(weight), enabled=enabled))
    return tuple(styles)


def settings_from_json(data: object) -> Settings:
    if not isinstance(data, dict):
        raise SettingsError("the file does not hold a JSON object")
    version = data.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise SettingsError("schema_version is missing or not a positive whole number")
    if version > SCHEMA_VERSION:
        raise SettingsError(
            f"it was written by a newer Fewstep (schema {version}; this one reads {SCHEMA_VERSION})"
        )
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    raw_paths = data.get("model_paths", {})
    if not isinstance(raw_paths, dict):
        raise SettingsError("model_paths must be an object")
    paths: dict[str, Path] = {}
    for key, value in raw_paths.items():
        if not isinstance(key, str) or not _ROLE_NAME.match(key) or key in _NOT_ROLES:
            raise SettingsError(f"unknown model role {key!r} in model_paths")
        if not isinstance(value, str) or not value:
            raise SettingsError(f"model_paths.{key} must be a path")
        paths[key] = Path(value)
    output = _string(data, "output_dir", None)
    device = _string(data, "device", "auto") or "auto"
    if device not in DEVICES and not device.startswith("cuda:"):
        raise SettingsError(f"device {device!r} is not one of {', '.join(DEVICES)}")
    live_mode = _string(data, "live_mode", "lightning-lora") or "lightning-lora"
    if live_mode not in MODES:
        raise SettingsError(f"live_mode {live_mode!r} is not a mode")
    residency = _string(data, "residency", "auto") or "auto"
    if residency not in set(Residency):
        raise SettingsError(f"residency {residency!r} is not one of {', '.join(Residency)}")
    models_dir = _string(data, "models_dir", None)
    vae = _string(data, "vae", None)
    # Added within schema 2: optional, so files written before it still read.
    vram = data.get("vram")
    if vram is not None and (
        isinstance(vram, bool) or not isinstance(vram, int | float) or not 0 < vram <= 4096
    ):
        raise SettingsError("vram must be a number of GiB above 0 and at most 4096, or null")
    lora_route = _string(data, "lora_route", "auto") or "auto"  # added within schema 2: optional
    if lora_route not in set(LoraRoute):
        raise SettingsError(f"lora_route {lora_route!r} is not one of {', '.join(LoraRoute)}")
    return Settings(
        model_paths=paths,
        output_dir=Path(output) if output else None,
        device=device,
        live_mode=live_mode,
        models_dir=Path(models_dir) if models_dir else None,
        styles=_styles(data),
        vae=Path(vae) if vae else None,
        residency=Residency(residency),
        vram=float(vram) if vram is not None else None,
        lora_route=LoraRoute(lora_route),
    )


def load_settings(path: Path | None = None) -> LoadedSettings:
    path = path or settings_path()
    try:
        with open_regular(path) as handle:  # a FIFO in its place is refused, never waited on
            raw = handle.read(MAX_SETTINGS_BYTES + 1)
        if len(raw) > MAX_SETTINGS_BYTES:
            return LoadedSettings(Settings(), f"settings file {path} is too large; using defaults")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        return LoadedSettings(Settings())
    except (OSError, UnicodeDecodeError) as exc:
        return LoadedSettings(Settings(), f"cannot read settings file {path} ({exc}); using defaults")
    try:
        return LoadedSettings(settings_from_json(json.loads(text)))
    except (json.JSONDecodeError, SettingsError, KeyError) as exc:
        return LoadedSettings(Settings(), f"settings file {path} was not used: {exc}; using defaults")


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    path = path or settings_path()
    atomic_write_text(path, json.dumps(settings.to_json(), indent=2) + "\n")
    return path
