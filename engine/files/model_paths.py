"""The files a user gave, by role: what the engine is built from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from engine.contract.modes import ModelRole
from engine.files.model_files import ModelFile, check_role, check_unet_fits

RoleT = TypeVar("RoleT", bound=str)  # a ModelRole or any role's name


@dataclass(frozen=True)
class StyleLora:
    path: Path
    weight: float = 1.0


@dataclass(frozen=True)
class ModelPaths:
    """The files the user gave, by role; None where not given."""

    base: Path | None = None
    lcm_unet: Path | None = None
    lcm_lora: Path | None = None
    lightning_unet: Path | None = None
    lightning_lora: Path | None = None
    styles: tuple[StyleLora, ...] = ()
    vae: Path | None = None  # e.g. sdxl-vae-fp16-fix, replacing the base's VAE
    base_config: Path | None = None  # config folder for a single-file base; None: the shipped SDXL one
    builtin: bool = False  # the project's own model, not the user's
    # Files of any other role a mode declares (--model ROLE=PATH): "tcd-lora", "dmd2-unet"...
    # (a tuple of pairs, so that the paths stay hashable like the rest).
    models: tuple[tuple[str, Path], ...] = ()

    @classmethod
    def from_roles(cls, roles: Mapping[RoleT, Path | None], **others: Any) -> ModelPaths:
        """The one way to build paths from files by role (others: styles, vae, base_config, builtin)."""
        fixed = set(ModelRole)
        fields: dict[str, Any] = {
            role.replace("-", "_"): path for role, path in roles.items() if role in fixed
        }
        models = {role: path for role, path in roles.items() if role not in fixed and path is not None}
        given = dict(others.pop("models", ()))
        return cls(**fields, models=tuple({**given, **models}.items()), **others)

    def get(self, role: str) -> Path | None:
        if role in set(ModelRole):
            path: Path | None = getattr(self, role.replace("-", "_"))
            return path
        return dict(self.models).get(role)

    @property
    def roles(self) -> tuple[str, ...]:
        """Every role given a path, the five with options of their own first."""
        return (*(r for r in ModelRole if self.get(r) is not None), *(role for role, _path in self.models))

    def checked(self) -> dict[str, ModelFile]:
        """Every given path checked for its role; the first problem raises ModelInputError."""
        files = {role: check_role(role, path) for role in self.roles if (path := self.get(role)) is not None}
        base, lightning = files.get(ModelRole.BASE), files.get(ModelRole.LIGHTNING_UNET)
        if base is not None and lightning is not None:
            check_unet_fits(lightning, base)
        return files
