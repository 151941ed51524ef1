"""Two writers to one output folder: one writes, the other is told at once that another run is
writing there; the folder is always one whole comparison, never a mix of two."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli.folder_lock import lock_path_for
from tests.conftest import REPO_ROOT
from tests.soak.conftest import COUNTS, report
from tests.soak.test_kills import check_comparison_folder

LIMIT_S = 120


def writer(kind: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.soak.writers", kind, str(out), *extra],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_writers_in_a_loop_never_mix_their_files(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    rounds = max(COUNTS.kills, 10)
    first, second = writer("locked", out, str(rounds)), writer("locked", out, str(rounds))
    busy = []
    for child in (first, second):
        stdout, stderr = child.communicate(timeout=LIMIT_S)
        assert child.returncode == 0, stderr
        busy.append(int(stdout.split("busy")[-1]))
    assert check_comparison_folder(out) == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp"]  # no lock file, no temporary folder
    report(
        f"two writers, {rounds} rounds each into one folder: {sum(busy)} of {2 * rounds} writes told"
        " another run was writing; the folder whole at the end"
    )


def test_the_cli_refuses_while_another_run_writes_there(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
         "from engine.cli.folder_lock import folder_lock\n"
         f"with folder_lock(Path({str(out)!r})):\n    print('ready', flush=True)\n    time.sleep(600)\n"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "engine.cli", "compare", "--prompt", "x", "--out", str(out)],
            capture_output=True, text=True, timeout=LIMIT_S,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    finally:
        holder.kill()
        holder.communicate(timeout=LIMIT_S)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "another Fewstep run is writing" in done.stderr
    assert not out.exists()
    report(f"second CLI writer refused in {seconds:.2f} s, in one line")


@pytest.mark.skipif(not COUNTS.full, reason="two real model runs: FEWSTEP_SOAK=full only")
def test_two_real_compare_runs_into_one_folder(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    argv = [
        sys.executable,
        "-m",
        "engine.cli",
        "compare",
        "--prompt",
        "x",
        "--modes",
        "ddim",
        "--out",
        str(out),
    ]
    first = subprocess.Popen(
        [*argv, "--steps", "ddim=2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + LIMIT_S
    while not lock_path_for(out).exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    second = subprocess.run(argv, capture_output=True, text=True, timeout=LIMIT_S)
    _stdout, stderr = first.communicate(timeout=LIMIT_S)
    assert first.returncode == 0, stderr
    assert second.returncode == 2 and "another Fewstep run is writing" in second.stderr
    assert check_comparison_folder(out) == "whole"
    report("two real `fewstep compare` runs into one --out: the second refused, the first whole")
