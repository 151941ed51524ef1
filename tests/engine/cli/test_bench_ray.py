"""`fewstep bench --ray` on a local Ray of two CPUs, two actors, the tiny model set: the same images as a
local run at the same thread count, byte for byte; an actor killed mid-run costs no cell and writes none
twice; a node without a model file stops the bench, naming the node and the file, before any cell."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.tiny_model import TinyModelSet
from engine.cli import EXIT_BAD_INPUT, EXIT_OK, bench_ray, main
from engine.cli import bench as bench_command
from engine.cli.bench_actor import ActorSetup, BenchActor
from engine.cli.bench_ray import ACTOR_PREFIX, RayPool
from engine.outputs.bench_folder import BenchFolder
from tests.conftest import REPO_ROOT
from tests.engine.cli.local_ray import local_ray

ray = pytest.importorskip("ray")  # the cluster extra, which the test extra (and so CI) installs

PROMPTS = ("a red circle", "a small blue square", "a green triangle at the top")
# DDIM at 4 steps and the full Lightning UNet: two modes, two seeds, a quarter of a second a cell.
FAST = ["--modes", "ddim,lightning", "--steps", "ddim=4", "--seeds", "2", "--threads", "1"]


def _raylets() -> set[int]:
    found = subprocess.run(["pgrep", "-f", "raylet"], capture_output=True, text=True)
    return {int(pid) for pid in found.stdout.split()}


def test_auto_without_a_cluster_starts_a_local_one_and_stops_it(
    tiny_models: TinyModelSet, tmp_path: Path
) -> None:
    """No RAY_ADDRESS and no cluster on this machine: `--ray auto` starts one, and leaves no process of it
    behind, here where the command then refuses more actors than the machine has CPUs."""
    before = _raylets()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env |= {"PYTHONPATH": str(REPO_ROOT), "RAY_AUTH_MODE": "disabled"}
    command = _bench(
        tmp_path, tmp_path / "out", _models(tiny_models), "--ray", "auto", "--ray-actors", "100000"
    )
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", *command], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == EXIT_BAD_INPUT, done.stderr[-2000:]
    assert "--ray-actors 100000: the cluster has" in done.stderr.strip().splitlines()[-1]
    deadline = time.monotonic() + 10  # ray.shutdown has signalled them; give them a moment to go
    while not _raylets() <= before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _raylets() <= before and not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def cluster(pytestconfig: pytest.Config) -> Iterator[None]:
    """A local Ray of 2 CPUs, no dashboard, no token under ~/.ray; shut down whatever the tests did."""
    with local_ray(pytestconfig, cpus=2):
        yield


def _models(models: TinyModelSet, lightning_unet: Path | None = None) -> list[str]:
    return ["--base", str(models.base), "--lightning-unet", str(lightning_unet or models.lightning_unet)]


def _bench(tmp_path: Path, out: Path, models: list[str], *more: str, prompts: int = 2) -> list[str]:
    listing = tmp_path / "prompts.txt"
    listing.write_text("".join(f"{p}\n" for p in PROMPTS[:prompts]), encoding="utf-8")
    return ["bench", "--prompts", str(listing), "--out", str(out), *FAST, *models, *more]


def _images(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "cells").glob("*.png"))}


def _writes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times the driver's one writer saved each cell."""
    counts: Counter[str] = Counter()
    write = BenchFolder.write_cell

    def counted(self: BenchFolder, cell: Any, *args: Any) -> dict[str, Any]:
        counts[cell.id] += 1
        return write(self, cell, *args)

    monkeypatch.setattr(BenchFolder, "write_cell", counted)
    return counts


def test_ray_actors_make_the_local_run_s_images_byte_for_byte_and_resume(
    cluster: None, tiny_models: TinyModelSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = _models(tiny_models)
    assert main(_bench(tmp_path, tmp_path / "local", models)) == EXIT_OK
    assert main(_bench(tmp_path, tmp_path / "ray", models, "--ray", "auto", "--ray-actors", "2")) == EXIT_OK
    local, remote = _images(tmp_path / "local"), _images(tmp_path / "ray")
    assert len(local) == 2 * 2 * 2 and remote == local  # the PNGs whole: pixels and parameters
    assert "2 Ray actors, each with 1 CPUs, 1 torch threads" in capsys.readouterr().err
    report = json.loads((tmp_path / "ray" / "report.json").read_text())
    workers = report["workers"]
    assert {(w["runner"], w["actor"], w["cpus"], w["threads"]) for w in workers} == {
        ("ray", 0, 1, 1),
        ("ray", 1, 1, 1),
    }
    assert sum(w["cells"] for w in workers) == 8 and all(w["cells"] for w in workers)
    assert "Ray: actor 0 on " in (tmp_path / "ray" / "index.html").read_text()
    # Resuming as locally: three cells lost, the same command runs those three and no other.
    for name in ("p00000-ddim-s1", "p00001-lightning-s0", "p00001-lightning-s1"):
        (tmp_path / "ray" / "cells" / f"{name}.json").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ray" / "cells").glob("*.json")}
    assert main(_bench(tmp_path, tmp_path / "ray", models, "--ray", "auto", "--ray-actors", "2")) == EXIT_OK
    assert "5 of 8 cells already done" in capsys.readouterr().err
    assert _images(tmp_path / "ray") == local
    assert {n: (tmp_path / "ray" / "cells" / n).stat().st_mtime_ns for n in before} == before
    # Refused as locally: other settings into the same folder, one line, nothing touched.
    changed = [*_bench(tmp_path, tmp_path / "ray", models, "--ray", "auto"), "--seeds", "3"]
    assert main(changed) == EXIT_BAD_INPUT
    assert "other settings (seeds)" in capsys.readouterr().err.strip().splitlines()[-1]
    assert _images(tmp_path / "ray") == local


@pytest.mark.parametrize("restart", [True, False], ids=["restarted", "dead-for-good"])
def test_a_killed_actor_s_cells_run_again_and_every_cell_is_written_once(
    cluster: None, tiny_models: TinyModelSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restart: bool
) -> None:
    """Killed at once, mid-cell, as the kernel's OOM killer would: Ray restarts it and runs its cells
    again there (restarted), or, its restarts spent, the driver hands them to the other actor."""
    writes = _writes(monkeypatch)
    out = tmp_path / "out"
    killed: list[tuple[int, int]] = []  # (cells written by then, the victim's process id)
    at_close: list[dict[int, int | None]] = []
    close = RayPool.close

    def noting_processes(pool: RayPool) -> None:
        pids: dict[int, int | None] = {}
        for actor in pool.actors:
            try:
                pids[actor.index] = ray.get(actor.handle.hello.remote(), timeout=60)["pid"]
            except ray.exceptions.RayActorError:
                pids[actor.index] = None
        at_close.append(pids)
        close(pool)

    monkeypatch.setattr(RayPool, "close", noting_processes)

    def kill_one_actor_mid_run() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and sum(writes.values()) < 2:
            time.sleep(0.02)
        names = [n["name"] for n in ray.util.list_named_actors(all_namespaces=True)]
        victim = ray.get_actor(
            sorted(n for n in names if n.startswith(ACTOR_PREFIX))[-1],
            namespace=ray.get_runtime_context().namespace,
        )
        pid = ray.get(victim.hello.remote())["pid"]
        killed.append((sum(writes.values()), pid))
        ray.kill(victim, no_restart=not restart)

    killer = threading.Thread(target=kill_one_actor_mid_run, daemon=True)
    killer.start()
    command = _bench(tmp_path, out, _models(tiny_models), "--ray", "auto", "--ray-actors", "2", prompts=3)
    assert main(command) == EXIT_OK
    killer.join(timeout=10)
    assert killed and killed[0][0] < 12, "the kill came after the last cell"
    expected = {f"p{p:05d}-{m}-s{s}" for p in range(3) for m in ("ddim", "lightning") for s in (0, 1)}
    assert set(writes) == expected and set(writes.values()) == {1}
    assert {p.stem for p in (out / "cells").glob("*.json")} == expected
    assert json.loads((out / "report.json").read_text())["cells"] == 12
    (pids,) = at_close
    if restart:  # a new process in its place, which Ray gave its cells again
        assert pids[1] is not None and pids[1] != killed[0][1]
    else:
        assert pids[1] is None and pids[0] is not None


def test_a_node_without_a_model_file_stops_the_bench_before_any_cell(
    cluster: None,
    tiny_models: TinyModelSet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    unet = tmp_path / "models" / tiny_models.lightning_unet.name
    unet.parent.mkdir()
    shutil.copyfile(tiny_models.lightning_unet, unet)
    job_of = bench_command.job_of

    def driver_sees_it_the_node_does_not(args: Any) -> Any:
        job = job_of(args)  # the driver checked the file; the actors' node (here, later) has none
        unet.unlink()
        return job

    monkeypatch.setattr(bench_command, "job_of", driver_sees_it_the_node_does_not)
    out = tmp_path / "out"
    assert main(_bench(tmp_path, out, _models(tiny_models, unet), "--ray", "auto")) == EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("fewstep: error: --ray: node ") and f"lacks {unet}: every node needs" in error
    assert not out.exists()  # before any cell: the folder was not even made
    assert not [
        n for n in ray.util.list_named_actors(all_namespaces=True) if n["name"].startswith(ACTOR_PREFIX)
    ]


def test_an_actor_that_cannot_start_is_one_line_before_any_cell(
    cluster: None,
    tiny_models: TinyModelSet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    class WithoutFewstep(BenchActor):  # local, so Ray ships it by value, whatever the workers' path
        def __init__(self, setup: ActorSetup) -> None:
            raise ImportError("No module named 'engine'")  # as on a node where Fewstep is not installed

    monkeypatch.setattr(bench_ray, "BenchActor", WithoutFewstep)
    out = tmp_path / "out"
    assert main(_bench(tmp_path, out, _models(tiny_models), "--ray", "auto")) == EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "an actor could not start (ImportError: No module named 'engine')" in error
    assert "every node needs fewstep[cluster] installed" in error and not out.exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ray-actors", "2"], "--ray-actors 2 needs --ray"),
        (["--ray", "auto", "--ray-actors", "3"], "the cluster has 2 CPUs"),
        (["--ray", " "], "--ray is empty"),
        (["--ray", "auto", "--device", "cuda:1"], "each actor uses the GPU Ray gives it"),
    ],
)
def test_ray_flags_that_cannot_work_are_one_line_and_write_nothing(
    cluster: None,
    tiny_models: TinyModelSet,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    out = tmp_path / "out"
    assert main(_bench(tmp_path, out, _models(tiny_models), *flags)) == EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and message in error
    assert not out.exists()
