"""How `fewstep bench --ray` shares a cluster out (engine.cli.bench_ray.plan_share), from Ray's resource
counts alone: one engine per GPU, else the CPUs shared evenly; what cannot be placed is refused. And
`--ray` without the cluster extra."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engine.cli import EXIT_BAD_INPUT, main
from engine.cli.arguments import UsageError
from engine.cli.bench_ray import INSTALL_HINT, Share, plan_share


def test_one_engine_per_gpu_each_reserving_one_cpu_with_its_share_of_threads() -> None:
    share = plan_share({"GPU": 8.0, "CPU": 64.0}, nodes=2, actors=None, threads=None)
    assert share == Share(actors=8, gpus=1, cpus=1, threads=8)
    assert share.describe() == "8 Ray actors, each with 1 GPU and 1 CPU, 8 torch threads"
    assert plan_share({"GPU": 8.0, "CPU": 64.0}, nodes=2, actors=4, threads=2) == Share(4, 1, 1, 2)


def test_without_gpus_one_engine_per_node_or_as_asked_sharing_the_cpus() -> None:
    assert plan_share({"CPU": 32.0}, nodes=2, actors=None, threads=None) == Share(2, 0, 16, 16)
    share = plan_share({"CPU": 7.0}, nodes=1, actors=3, threads=None)
    assert share == Share(3, 0, 2, 2)  # the odd CPU left to the driver
    assert share.describe() == "3 Ray actors, each with 2 CPUs, 2 torch threads"
    assert plan_share({"CPU": 2.0}, nodes=1, actors=2, threads=1) == Share(2, 0, 1, 1)


def test_device_cpu_leaves_the_gpus_alone_and_device_cuda_needs_some() -> None:
    gpus = {"GPU": 8.0, "CPU": 64.0}
    assert plan_share(gpus, nodes=2, actors=None, threads=None, device="cpu") == Share(2, 0, 32, 32)
    assert plan_share(gpus, nodes=2, actors=None, threads=None, device="cuda") == Share(8, 1, 1, 8)
    with pytest.raises(UsageError, match="--device cuda: the Ray cluster has no GPUs"):
        plan_share({"CPU": 8.0}, nodes=1, actors=None, threads=None, device="cuda")


@pytest.mark.parametrize(
    ("resources", "actors", "message"),
    [
        ({"GPU": 2.0, "CPU": 16.0}, 3, "--ray-actors 3: the cluster has 2 GPUs"),
        ({"CPU": 2.0}, 3, "--ray-actors 3: the cluster has 2 CPUs"),
    ],
)
def test_more_engines_than_the_cluster_holds_are_refused(
    resources: dict[str, float], actors: int, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        plan_share(resources, nodes=1, actors=actors, threads=None)


def test_without_the_cluster_extra_ray_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as where fewstep[cluster] is not installed: the bundle
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["bench", "--prompts", str(prompts), "--out", str(out), "--ray", "auto"]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.strip() == f"fewstep: error: {INSTALL_HINT}"
    assert not out.exists()
