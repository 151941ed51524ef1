"""kill -9 at random moments around saves, and from inside the atomic write: after the next start
nothing is corrupt, nothing half-written, nothing orphaned."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from PIL import Image

from engine.cli.folder_lock import folder_lock
from engine.outputs.atomic import remove_stale_parts, restore_interrupted_swap
from engine.outputs.png_info import read_settings
from gui.state.image_store import load_history
from gui.state.recovery import recover_output_folder
from tests.conftest import REPO_ROOT
from tests.soak.conftest import COUNTS, report

POINTS = ("fsync", "before", "after")
CHILD_LIMIT_S = 180  # a child saves within seconds; only a hang reaches this


def start_writer(kind: str, target: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.soak.writers", kind, str(target), *extra],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_at_random(child: subprocess.Popen[str], rng: random.Random) -> None:
    assert child.stdout is not None
    line = child.stdout.readline()  # "ready": its first save is done, saving goes on
    if line.strip() != "ready":
        _out, err = child.communicate(timeout=CHILD_LIMIT_S)
        raise AssertionError(f"the writer did not start: {err}")
    time.sleep(rng.uniform(0.0, 0.4))
    child.kill()
    child.communicate(timeout=CHILD_LIMIT_S)


def kill_from_inside(child: subprocess.Popen[str]) -> None:
    try:
        _out, err = child.communicate(timeout=CHILD_LIMIT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise
    assert child.returncode == -9, err


def check_comparison_folder(out: Path) -> str:
    """Either no folder, or one whole comparison: its report, its grid and its images, one run."""
    if not out.exists():
        return "none"
    report_data = json.loads((out / "report.json").read_text())
    files = {r["file"] for r in report_data["results"]}
    assert {p.name for p in out.iterdir()} - {"reproduce.py"} == files | {"report.json", "grid.png"}
    seed = report_data["seeds"][0]
    for name in files:
        restored = read_settings(out / name)
        assert restored.seed == seed, f"{name} is of another run than report.json"
    with Image.open(out / "grid.png") as grid:
        grid.verify()
    return "whole"


def check_output_root(root: Path) -> tuple[int, int]:
    """After recovery: no temporary file, every PNG whole and named by a history record."""
    assert not list(root.rglob("*.part")), "temporary files left"
    records, damaged = load_history(root, limit=100_000)
    assert damaged == 0
    named = {image.png for record in records for image in record.images}
    pngs = {p.resolve() for p in root.glob("*/*.png")}
    assert pngs == named, f"orphans: {sorted(pngs - named)}"
    for png in pngs:
        with Image.open(png) as image:
            image.verify()
    for sidecar in root.glob("*/*.json"):
        json.loads(sidecar.read_text())
    return len(records), len(pngs)


def test_kill_9_during_comparison_writes_leaves_a_whole_folder_or_none(tmp_path: Path) -> None:
    rng = random.Random(14)
    out = tmp_path / "cmp"
    outcomes: Counter[str] = Counter()
    for index in range(COUNTS.kills):
        if index % 2 == 0:
            kill_at_random(start_writer("compare", out), rng)
        else:
            point = POINTS[index // 2 % len(POINTS)]
            kill_from_inside(start_writer("compare", out, "--inject", point, str(rng.randint(1, 12))))
        with folder_lock(out):  # the next run: its lock, then what the killed one left is put right
            outcomes["restored"] += restore_interrupted_swap(out)
            outcomes["removed"] += remove_stale_parts(out.parent, out.name)
        # The first writer finished a comparison before its kill, so there is one from then on.
        assert check_comparison_folder(out) == "whole"
    report(
        f"compare kills: {COUNTS.kills}; the folder whole after every one ({outcomes['restored']} put back"
        f" from an interrupted swap, {outcomes['removed']} leftovers removed), 0 corrupt, 0 lost"
    )


def test_kill_9_during_gui_saves_leaves_nothing_corrupt_or_orphaned(tmp_path: Path) -> None:
    rng = random.Random(41)
    root = tmp_path / "pictures"
    adopted = removed = 0
    for index in range(COUNTS.kills):
        if index % 2 == 0:
            kill_at_random(start_writer("store", root), rng)
        else:
            point = POINTS[index // 2 % len(POINTS)]
            kill_from_inside(start_writer("store", root, "--inject", point, str(rng.randint(1, 20))))
        recovery = recover_output_folder(root)  # what the next start does
        adopted += recovery.adopted_images
        removed += recovery.removed_parts
        assert recovery.unreadable_images == 0
        check_output_root(root)
    runs, pngs = check_output_root(root)
    report(
        f"GUI-save kills: {COUNTS.kills}; {pngs} PNGs in {runs} runs, {adopted} adopted after a kill,"
        f" {removed} temporary files removed, 0 corrupt, 0 orphaned"
    )
