"""`fewstep bench --ray`'s GPU path, on a machine without a GPU: a local Ray that declares two logical
GPUs (ray.init(num_gpus=2)), so Ray places and numbers them as on a GPU node while torch sees no CUDA.

What it shows: one actor per GPU, each reserving one GPU (Ray gives them GPU 0 and GPU 1, so
CUDA_VISIBLE_DEVICES differs) and one CPU; an actor whose GPU torch cannot see is refused before any
cell, in one line naming its node and GPU (engine.cli.bench_actor.cuda_problem says why it is not run
on the CPU instead); and, past that check, the GPU ids in every cell's record and in the report's
workers, with the engine inside planning the CPU that torch offers and making the local run's images.
What it cannot show: a CUDA kernel, a GPU's memory or its speed (docs/ray.md says what has run)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.tiny_model import TinyModelSet
from engine.cli import EXIT_BAD_INPUT, EXIT_OK, bench_ray, main
from engine.cli.bench_actor import BenchActor
from tests.engine.cli.local_ray import local_ray

ray = pytest.importorskip("ray")  # the cluster extra, which the test extra (and so CI) installs

PROMPTS = ("a red circle",)
FAST = ["--modes", "ddim,lightning", "--steps", "ddim=4", "--seeds", "2", "--threads", "1"]


@pytest.fixture(scope="module")
def gpu_cluster(pytestconfig: pytest.Config) -> Iterator[None]:
    """A local Ray of 2 CPUs and 2 logical GPUs, no dashboard, no token under ~/.ray."""
    with local_ray(pytestconfig, cpus=2, gpus=2):
        yield


def _bench(tmp_path: Path, out: Path, models: TinyModelSet, *more: str) -> list[str]:
    listing = tmp_path / "prompts.txt"
    listing.write_text("".join(f"{p}\n" for p in PROMPTS), encoding="utf-8")
    files = ["--base", str(models.base), "--lightning-unet", str(models.lightning_unet)]
    return ["bench", "--prompts", str(listing), "--out", str(out), *FAST, *files, *more]


def test_an_actor_given_a_gpu_torch_cannot_see_is_refused_naming_node_and_gpu(
    gpu_cluster: None, tiny_models: TinyModelSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(_bench(tmp_path, out, tiny_models, "--ray", "auto")) == EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0, error
    # One actor per GPU, each given its own: actor 0 GPU 0 and actor 1 GPU 1 (or the other way round).
    found = re.findall(r"actor (\d+) on node (\S+) has GPU (\S+) from Ray", error)
    assert sorted((actor, gpu) for actor, _, gpu in found) in (
        [("0", "0"), ("1", "1")],
        [("0", "1"), ("1", "0")],
    ), error
    assert "torch there sees no CUDA device" in error and "give --device cpu" in error
    assert f"on node {os.uname().nodename} has GPU" in error
    assert not out.exists()  # refused before the folder was touched


def test_past_the_check_each_actor_s_gpu_id_is_in_the_report_and_the_engine_plans_the_cpu(
    gpu_cluster: None,
    tiny_models: TinyModelSet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    class SeesCuda(BenchActor):  # local, so Ray ships it by value: the check passed, as on a GPU node
        def check_device(self) -> str | None:
            return None

    monkeypatch.setattr(bench_ray, "BenchActor", SeesCuda)
    assert main(_bench(tmp_path, tmp_path / "ray", tiny_models, "--ray", "auto")) == EXIT_OK
    assert "2 Ray actors, each with 1 GPU and 1 CPU, 1 torch threads" in capsys.readouterr().err
    report = json.loads((tmp_path / "ray" / "report.json").read_text())
    workers = report["workers"]
    assert sorted((w["actor"], w["gpus"], w["cpus"], w["threads"]) for w in workers) == [
        (0, 1, 1, 1),
        (1, 1, 1, 1),
    ]
    assert sorted(id for w in workers for id in w["gpu_ids"]) == ["0", "1"]
    assert all(len(w["gpu_ids"]) == 1 for w in workers)
    # torch saw no CUDA, so the engine planned the CPU, and said so in every record and the report.
    assert {w["device"] for w in workers} == {"cpu float32, 1 CPU threads"}
    assert report["device_type"] == "cpu" and sum(w["cells"] for w in workers) == 4
    page = (tmp_path / "ray" / "index.html").read_text()
    assert "1 GPU (0)" in page and "1 GPU (1)" in page
    # The same images as a local run at the same thread count.
    assert main(_bench(tmp_path, tmp_path / "local", tiny_models)) == EXIT_OK
    for image in (tmp_path / "local" / "cells").glob("*.png"):
        assert (tmp_path / "ray" / "cells" / image.name).read_bytes() == image.read_bytes()
