"""What the models panel lists: a models folder and the Hugging Face cache, each entry said for what it is.

No Qt here: the panel runs scan_all on its thread pool, and tests call it directly. Scanning reads
names and safetensors headers only (engine.files.model_files), never weights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from engine.contract.errors import FewstepError
from engine.contract.modes import MODES
from engine.files.hub_cache import cache_dir, cached_model_repos
from engine.files.model_files import FileKind, ModelFile, inspect_path
from engine.files.model_scan import Refused, scan_models
from gui.state.model_setup import Use, natural_use, say_which, uses_for

log = logging.getLogger(__name__)

UNUSABLE = (FileKind.NOT_SDXL, FileKind.OTHER)


@dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """One row of the panel: what was found, and the path (or hub reference) a setting would hold."""

    name: str
    reference: Path  # a path on disk, or `org/name[/file]` for the Hugging Face cache
    info: ModelFile | None = None
    refused: str | None = None  # why the file cannot be used, when it could not even be classified

    @property
    def usable(self) -> bool:
        return self.info is not None and self.info.kind not in UNUSABLE

    @property
    def natural_use(self) -> Use | None:
        return natural_use(self.info) if self.info is not None else None

    def uses(self) -> tuple[Use, ...]:
        """What its menu offers: the uses of its sort of file, its natural one first."""
        return uses_for(self.info)

    def why_no_natural_use(self) -> str:
        """What a double-click says where the file has no one use: say which, or why it cannot be used."""
        if self.info is not None and (ask := say_which(self.info)) is not None:
            return f"{self.name}: {ask}"
        if self.usable:
            return f"{self.name} ({self.what()}): no loaded mode takes it; a mode file can"
        return f"{self.name} cannot be used: {self.what()}"

    def what(self) -> str:
        if self.refused is not None:
            return f"refused: {self.refused}"
        assert self.info is not None
        return self.info.describe()

    def enables(self) -> str:
        if self.info is None or not self.info.enables:
            return ""
        return ", ".join(
            MODES[name].title.removeprefix("SDXL + ") if name in MODES else name for name in self.info.enables
        )


@dataclass(frozen=True, kw_only=True)
class ScanResult:
    folder: Path
    entries: tuple[ModelEntry, ...] = ()
    folder_problem: str | None = None
    hub_entries: tuple[ModelEntry, ...] = ()
    hub_skipped: int = 0  # cached repositories with no model file Fewstep knows (text models, ...)
    hub_problem: str | None = None
    hub_dir: str = field(default="")


def _entry(found: ModelFile | Refused, name: str, reference: Path) -> ModelEntry:
    if isinstance(found, Refused):
        # The row's name says which file: a reason that opens with its full path says "it" instead,
        # so the narrow panel shows why, not the path again.
        reason = found.reason
        if reason.startswith(f"{found.path} "):
            reason = "it" + reason.removeprefix(str(found.path))
        return ModelEntry(name=name, reference=reference, refused=reason)
    return ModelEntry(name=name, reference=reference, info=found)


def usable_first(entries: list[ModelEntry]) -> tuple[ModelEntry, ...]:
    """The usable entries, then the refused ones, each in the scan's order: a folder with a few broken
    files still shows what can be used at the top."""
    return tuple(sorted(entries, key=lambda entry: not entry.usable))


def scan_folder(folder: Path) -> tuple[tuple[ModelEntry, ...], str | None]:
    """Every model under folder, and why the folder could not be read (None when it could)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)  # the default folder: there to drop files into
        found = list(scan_models(folder))
    except FewstepError as exc:
        return (), str(exc)
    except OSError as exc:
        return (), f"cannot use {folder}: {exc.strerror or exc}"
    entries = []
    for item in found:
        path = item.path
        try:
            name = str(path.relative_to(folder))
        except ValueError:
            name = path.name
        if path.name == "pytorch_lora_weights.safetensors":  # a diffusers LoRA folder: name the folder
            name = str(path.parent.relative_to(folder)) if path.parent != folder else path.name
        entries.append(_entry(item, name, path))
    return usable_first(entries), None


def scan_hub_cache() -> tuple[tuple[ModelEntry, ...], int]:
    """Models in the Hugging Face cache, named by repository id (and file, for multi-file repositories)."""
    entries: list[ModelEntry] = []
    skipped = 0
    for repo in cached_model_repos():
        try:
            info = inspect_path(repo.snapshot)
        except FewstepError as exc:
            entries.append(ModelEntry(name=repo.repo_id, reference=Path(repo.repo_id), refused=str(exc)))
            continue
        if info.kind is not FileKind.OTHER:
            entries.append(ModelEntry(name=repo.repo_id, reference=Path(repo.repo_id), info=info))
            continue
        try:
            inside = list(scan_models(repo.snapshot))
        except FewstepError:
            inside = []
        if not inside:
            skipped += 1
        for item in inside:
            relative = item.path.relative_to(repo.snapshot).as_posix()
            reference = Path(f"{repo.repo_id}/{relative}")
            entries.append(_entry(item, f"{repo.repo_id}/{relative}", reference))
    return usable_first(entries), skipped


def scan_all(folder: Path) -> ScanResult:
    """The whole scan; runs off the GUI thread and never raises."""
    entries, problem = scan_folder(folder)
    try:
        hub_entries, skipped = scan_hub_cache()
        hub_problem = None
    except Exception as exc:  # a damaged cache must not hide the models folder
        log.exception("scanning the Hugging Face cache failed")
        hub_entries, skipped, hub_problem = (), 0, f"{type(exc).__name__}: {exc}"
    where = cache_dir()
    return ScanResult(
        folder=folder,
        entries=entries,
        folder_problem=problem,
        hub_entries=hub_entries,
        hub_skipped=skipped,
        hub_problem=hub_problem,
        hub_dir=str(where) if where else "default location",
    )
