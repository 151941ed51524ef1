"""Fewstep installs as a plain wheel: the product and its shipped files, and nothing of the developers'.

The wheel is built from this checkout and installed, without its dependencies, into a new virtual
environment whose third-party packages come from the test environment (a path file), so the test
costs seconds, not a 1.5 GB install. The checkout is not on that environment's path: what runs is
what the wheel holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("fewstep-*.whl")
    return built


def test_the_wheel_holds_the_product_and_its_resources_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"engine", "gui", next(n for n in top if n.endswith(".dist-info"))}
    for shipped in (
        "engine/resources/pocket/pocket_model.json",
        "engine/resources/pocket/base/unet/diffusion_pytorch_model.fp16.safetensors",
        "engine/resources/sdxl-base-config/model_index.json",
        "engine/resources/sdxl-base-config/tokenizer_2/merges.txt",
        "engine/resources/icons/fewstep.png",
        "engine/resources/replay/reproduce.py",
    ):
        assert shipped in names, shipped
    assert not [n for n in names if n.startswith(("devtools/", "tests/", "packaging/"))]


def test_every_package_folder_is_listed_for_the_wheel() -> None:
    """pyproject lists the packages by hand (engine.resources lives outside engine/): none forgotten."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("engine", "gui")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert listed == folders | {"engine.resources"}


def test_an_installed_wheel_runs_the_built_in_pocket_model(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # The wheel goes first on the path; the test environment's packages (torch, diffusers, ...) after.
    # Every site folder of this interpreter (a path file's own path files are not read, so all of them).
    folders = [p for p in sys.path if p.endswith("site-packages")] or [sysconfig.get_paths()["purelib"]]
    (site / "zz-test-packages.pth").write_text("".join(f"{folder}\n" for folder in folders))
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
         str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    where = tmp_path / "elsewhere"
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")} | {
        "FEWSTEP_CACHE_DIR": str(tmp_path / "cache"),
        "FEWSTEP_THREADS": "1",
    }
    located = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import engine, engine.resources; print(engine.__file__)"],
        cwd=where,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert Path(located.stdout.strip()).is_relative_to(site)
    out = where / "out"
    prompt = "a large red circle on a blue background"
    run = subprocess.run(
        [str(venv / "bin" / "fewstep"), "compare", "--prompt", prompt, "--modes", "lightning", "--out", str(out)],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "pocket model" in run.stderr and "UNTRAINED" not in run.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["model"].startswith("built-in pocket model")
    assert (out / "lightning.png").is_file()


def test_ray_is_the_cluster_extra_only_and_nothing_imports_it_unasked(wheel: Path) -> None:
    """A plain `pip install fewstep` gets no Ray: it is required under extra == "cluster" alone, and the
    CLI, the bench (its Ray driver and actor modules too) and the window import none of it."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(name).decode("utf-8")
    requires = [
        line.removeprefix("Requires-Dist: ")
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist: ")
    ]
    on_ray = [r for r in requires if r.split(";")[0].strip().startswith("ray")]
    assert on_ray == ['ray==2.60.0; extra == "cluster"'], on_ray
    assert "Provides-Extra: cluster" in metadata
    modules = (
        "engine.cli, engine.cli.bench, engine.cli.bench_ray, engine.cli.bench_actor, gui.launcher, gui.app"
    )
    check = (
        f"import sys, {modules}\n"
        "from engine.cli import main\n"
        "try:\n    main(['bench', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    env = os.environ | {"PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--ray auto|ADDRESS" in done.stdout and done.stdout.strip().splitlines()[-1] == "[]"
