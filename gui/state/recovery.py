"""Recovery at start: what a crashed or killed run left in the output folder is put right.

A run saves each image as it finishes and writes its history record last (engine.outputs.run_writer),
so a kill in between leaves images that no history entry names. At start they are adopted: a record
is written for their run from their sidecars (or, where the kill came before the sidecar, from the
PNG's own `parameters` text), with status "recovered". Temporary `.part` files of writers that are
no longer running are removed.

Another window may be saving into the same folder right now, its record not yet written: each window
holds a shared flock on the folder's claim file while it uses the folder, and recovery runs only
under an exclusive one, so only when no other window is there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.files.safe_paths import open_regular
from engine.outputs.atomic import remove_stale_parts
from engine.outputs.png_info import read_settings
from engine.outputs.png_text import InfotextError
from engine.outputs.run_writer import HISTORY_FOLDER, RECORD_FORMAT, json_bytes, write_new_file
from gui.state.image_store import RecordError, read_run_record, run_record_from_json

log = logging.getLogger(__name__)

RECOVERED = "recovered"
_RUN_ID = re.compile(r"(\d{8}-\d{6}-j\d+)")
_DAY_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}")
_MAX_SIDECAR_BYTES = 1 << 20
CLAIM_FILE = ".fewstep-in-use"

try:
    import fcntl
except ImportError:  # Windows: no claims; recovery runs at every start
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Recovery:
    removed_parts: int = 0
    adopted_images: int = 0
    unreadable_images: int = 0  # orphans whose settings could not be read: left where they are


def _run_of(name: str) -> str | None:
    match = _RUN_ID.match(name)
    return match.group(1) if match else None


def _image_entry(png: Path, root: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(the record's image entry, the run's request fields) from the sidecar, else the PNG text."""
    sidecar = png.with_suffix(".json")
    try:
        with open_regular(sidecar) as handle:
            data = json.loads(handle.read(_MAX_SIDECAR_BYTES).decode("utf-8"))
        request: dict[str, Any] = {
            "prompt": str(data["prompt"]),
            "negative_prompt": str(data["negative_prompt"]),
            "size": list(data["size"]),
        }
        image = {k: data[k] for k in ("mode", "seed", "steps", "guidance")}
        if data.get("eta") is not None:  # only the modes that pass one (TCD's gamma) carry it
            image["eta"] = float(data["eta"])
    except (OSError, ValueError, KeyError, TypeError):
        try:
            settings = read_settings(png)
        except InfotextError:
            return None
        if settings.mode is None or settings.seed is None or settings.steps is None:
            return None
        request = {
            "prompt": settings.prompt,
            "negative_prompt": settings.negative_prompt,
            "size": [settings.width, settings.height] if settings.width else None,
        }
        image = {"mode": settings.mode, "seed": settings.seed, "steps": settings.steps}
        image["guidance"] = settings.guidance if settings.guidance is not None else 0.0
    image.update(png=str(png.relative_to(root)), styles=[])
    return image, request


def _adopt(root: Path, run_id: str, pngs: list[Path]) -> tuple[int, int]:
    entries = [entry for png in sorted(pngs) if (entry := _image_entry(png, root)) is not None]
    if not entries:
        return 0, len(pngs)
    images = [image for image, _ in entries]
    request = entries[0][1]
    modes = list(dict.fromkeys(image["mode"] for image in images))
    steps = {image["mode"]: image["steps"] for image in images}
    guidance = {image["mode"]: image["guidance"] for image in images}
    eta = {image["mode"]: {"eta": image.pop("eta")} for image in images if "eta" in image}
    created = datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S").isoformat(timespec="seconds")
    data = {
        "format": RECORD_FORMAT,
        "run": run_id,
        "created": created,
        "status": RECOVERED,
        **request,
        "seeds": list(dict.fromkeys(image["seed"] for image in images)),
        "modes": [{"mode": m, "steps": steps[m], "guidance": guidance[m], **eta.get(m, {})} for m in modes],
        "model": "unknown (recovered after an interrupted run)",
        "styles": None,
        "images": images,
    }
    path = root / HISTORY_FOLDER / f"{run_id}.json"
    try:
        # Checked as the history will read it before it is written: a bad record is never left.
        run_record_from_json(path, root, data)
    except (RecordError, ValueError) as exc:
        log.warning("images of run %s were not adopted: %s", run_id, exc)
        return 0, len(pngs)
    written = write_new_file(path, json_bytes(data))
    read_run_record(written, root)
    return len(images), len(pngs) - len(images)


class _NamedImages:
    """Whether a history record names a PNG, reading records only where the file times leave doubt.

    A run's images are all written before its record, so an image no newer than its run's record
    is named by it. Only a newer one (another process's run of the same id, in the same second) has
    its run's records read.
    """

    def __init__(self, root: Path, records: dict[str, list[Path]]) -> None:
        self._root = root
        self._records = records
        self._newest: dict[str, int] = {}
        self._named: dict[str, set[Path]] = {}

    def names(self, run: str, png: Path) -> bool:
        paths = self._records.get(run)
        if not paths:
            return False
        if run not in self._newest:
            self._newest[run] = max(p.stat().st_mtime_ns for p in paths)
        if png.stat().st_mtime_ns <= self._newest[run]:
            return True
        if run not in self._named:
            named: set[Path] = set()
            for path in paths:
                try:
                    named.update(image.png for image in read_run_record(path, self._root).images)
                except RecordError:
                    continue
            self._named[run] = named
        return png.resolve() in self._named[run]


def recover_output_folder(root: Path) -> Recovery:
    """Remove dead writers' temporary files, and adopt images that no history entry names."""
    if not root.is_dir():
        return Recovery()
    history = root / HISTORY_FOLDER
    removed = remove_stale_parts(history) if history.is_dir() else 0
    records: dict[str, list[Path]] = {}
    if history.is_dir():
        for path in history.glob("*.json"):
            if (run := _run_of(path.name)) is not None:
                records.setdefault(run, []).append(path)
    named = _NamedImages(root, records)
    orphans: dict[str, list[Path]] = {}
    for day in sorted(root.iterdir()):
        if not _DAY_FOLDER.fullmatch(day.name) or not day.is_dir() or day.is_symlink():
            continue
        removed += remove_stale_parts(day)
        for png in day.glob("*.png"):
            run = _run_of(png.name)
            if run is not None and png.is_file() and not named.names(run, png):
                orphans.setdefault(run, []).append(png)
    adopted = unreadable = 0
    for run_id, pngs in sorted(orphans.items()):
        try:
            done, failed = _adopt(root, run_id, pngs)
        except OSError as exc:
            log.warning("images of run %s were not adopted: %s", run_id, exc)
            done, failed = 0, len(pngs)
        adopted += done
        unreadable += failed
    return Recovery(removed_parts=removed, adopted_images=adopted, unreadable_images=unreadable)


def _recover_quietly(root: Path) -> Recovery:
    """Recovery must never stop the application from starting: a failure is logged, not raised."""
    try:
        return recover_output_folder(root)
    except OSError as exc:
        log.warning("recovery of %s stopped: %s", root, exc)
        return Recovery()


class OutputClaim:
    """This window's use of an output folder: shared with other windows, exclusive for recovery."""

    def __init__(self) -> None:
        self._fd: int | None = None

    def take(self, root: Path) -> Recovery | None:
        """Claim `root` (releasing any earlier folder); recover it first when no other window uses it.

        None when another window holds it (nothing was recovered), or the folder cannot be used.
        """
        self.release()
        try:
            root.mkdir(parents=True, exist_ok=True)
            fd = os.open(root / CLAIM_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            log.warning("cannot claim %s: %s", root, exc)
            return None
        self._fd = fd
        if fcntl is None:  # pragma: no cover - Windows
            return _recover_quietly(root)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(fd, fcntl.LOCK_SH)  # another window is here: share, recover nothing
            return None
        try:
            return _recover_quietly(root)
        finally:
            fcntl.flock(fd, fcntl.LOCK_SH)  # a downgrade: other windows may join from now on

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
