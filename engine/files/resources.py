"""The files Fewstep ships that the engine reads: the SDXL config folder and the pocket model.

They are the package data ``engine.resources`` (the repository's top-level ``resources/`` folder,
mapped there by ``pyproject.toml``), found through ``importlib.resources``: the same call finds them in
a checkout, an editable install, an installed wheel and the PyInstaller bundle. Torch-free.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from engine.contract.errors import FewstepError

CONFIG_DIR_NAME = "sdxl-base-config"
POCKET_DIR_NAME = "pocket"

REPAIR = (
    "reinstall Fewstep (pip install --force-reinstall fewstep, or unpack the installer again);"
    " in a checkout, run: git checkout -- resources"
)


class MissingResourceError(FewstepError):
    """A shipped file is not where the installation put it: the install is damaged."""


def resources_root() -> Path:
    # Every route Fewstep installs by (checkout, wheel, bundle) unpacks the package data into real
    # folders, so the Traversable is a filesystem path; from_single_file needs one.
    return Path(str(files("engine.resources")))


def shipped(name: str) -> Path:
    """The shipped file or folder ``name``; MissingResourceError, saying how to repair, when it is not there."""
    path = resources_root() / name
    if not path.exists():
        raise MissingResourceError(f"Fewstep's shipped {name!r} is missing from {path.parent}: {REPAIR}")
    return path


def sdxl_config_dir() -> Path:
    """The SDXL base config folder: ``config=`` for ``StableDiffusionXLPipeline.from_single_file``."""
    return resources_root() / CONFIG_DIR_NAME


def pocket_dir() -> Path:
    return resources_root() / POCKET_DIR_NAME
