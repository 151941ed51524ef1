"""The files a user gave, by role: what the engine is built from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.contract.modes import ModelRole
from engine.files.model_files import ModelFile, check_role, check_unet_fits


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

    @classmethod
    def from_roles(cls, roles: Mapping[ModelRole, Path | None], **others: Any) -> ModelPaths:
        """The one way to build paths from files by role (others: styles, vae, base_config, builtin)."""
        fields: dict[str, Any] = {role.replace("-", "_"): path for role, path in roles.items()}
        return cls(**fields, **others)

    def get(self, role: ModelRole) -> Path | None:
        path: Path | None = getattr(self, role.replace("-", "_"))
        return path

    def checked(self) -> dict[ModelRole, ModelFile]:
        """Every given path checked for its role; the first problem raises ModelInputError."""
        files = {role: check_role(role, path) for role in ModelRole if (path := self.get(role)) is not None}
        base, lightning = files.get(ModelRole.BASE), files.get(ModelRole.LIGHTNING_UNET)
        if base is not None and lightning is not None:
            check_unet_fits(lightning, base)
        return files
