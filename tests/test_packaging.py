"""The installed command's self-test, and the packaging files that cannot be built here (installers).

The bundle itself is built and smoke-tested by packaging/smoke_test.py: it takes minutes, not a test.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from engine.contract.modes import MODES
from engine.pocket.model import BUILTIN_ROLES
from tests.conftest import REPO_ROOT

PACKAGING = REPO_ROOT / "packaging"
ICONS = REPO_ROOT / "resources" / "icons"


def load_script(name: str) -> ModuleType:
    """A script of packaging/ (a folder of scripts, not a package) as a module."""
    spec = importlib.util.spec_from_file_location(f"packaging_{name}", PACKAGING / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def fewstep_command() -> list[str]:
    script = Path(sys.executable).parent / ("fewstep.exe" if os.name == "nt" else "fewstep")
    # Without the installed entry point (an environment without `pip install -e .`), the same main().
    return [str(script)] if script.exists() else [sys.executable, "-m", "gui.launcher"]


def test_self_test_passes_every_check_through_the_worker(tmp_path: Path) -> None:
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700)
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        FEWSTEP_CACHE_DIR=str(tmp_path / "cache"),
        FEWSTEP_SETTINGS=str(tmp_path / "settings.json"),
        FEWSTEP_THREADS="1",
        XDG_RUNTIME_DIR=str(runtime),
    )
    done = subprocess.run(
        [*fewstep_command(), "--self-test", "--timeout", "300"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    assert not [line for line in lines if line.startswith("FAIL")]
    expected = [
        "PASS  version torch: ",
        "PASS  version diffusers: ",
        "PASS  version transformers: ",
        "PASS  version peft: ",
        "PASS  version PySide6: ",
        "PASS  qt: platform offscreen",
        "PASS  backend torch: ",
        "PASS  backend transformers: ",
        "PASS  backend peft: ",
        "PASS  backend peft-lora: ",
        "PASS  torch build: torch ",
        "PASS  gpu",  # "gpu 0: NVIDIA ..." on a GPU machine; here, that it runs on the CPU
        "PASS  engine: ",
        "PASS  device: cpu",
        "PASS  resources reproduce.py: ",
        "PASS  trilemma metrics: SSIM ",
        # The modes the built-in model's files allow (the rest of the field needs the user's files).
        *(
            f"PASS  generate {mode}: 2 steps"
            for mode in MODES
            if set(MODES[mode].required_roles) <= set(BUILTIN_ROLES)
        ),
    ]
    for start in expected:
        assert any(line.startswith(start) for line in lines), f"no line starting {start!r}:\n{done.stdout}"
    assert lines[-1].startswith("self-test PASSED")
    # No image or history written: the self-test keeps its generations in memory.
    assert not list(tmp_path.glob("*.png"))


def test_self_test_is_listed_in_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    from gui.launcher import main

    assert main(["--help"]) == 0
    assert "--self-test" in capsys.readouterr().out


def test_spec_is_python_and_names_the_bundle_parts() -> None:
    text = (PACKAGING / "fewstep.spec").read_text(encoding="utf-8")
    compile(text, "fewstep.spec", "exec")
    for needed in (
        'copy_metadata("fewstep", recursive=True)',
        '"diffusers.schedulers"',
        '"diffusers.loaders"',
        '"peft"',
        '"resources"',
        '"QtQml"',
        '"QtQuick"',
        '"QtWebEngineCore"',
        '"QtMultimedia"',
        '"QtPdf"',
        '"ray"',
        "org.fewstep.Fewstep",
        "fewstep.icns",
        "fewstep.ico",
    ):
        assert needed in text, needed


def test_desktop_entry_is_valid_and_points_at_the_icon() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment, method-assign]
    entry.read(REPO_ROOT / "resources" / "fewstep.desktop", encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application"
    assert section["Exec"].split()[0] == "fewstep"
    assert (ICONS / f"{section['Icon']}.png").is_file()
    assert section["Categories"].endswith(";")


def test_icons_exist_in_every_platform_format() -> None:
    with Image.open(ICONS / "fewstep.png") as png:
        assert png.size == (512, 512)
        assert png.mode == "RGBA"
    with Image.open(ICONS / "fewstep.ico") as ico:
        assert (256, 256) in ico.info["sizes"] and (16, 16) in ico.info["sizes"]
    with Image.open(ICONS / "fewstep.icns") as icns:
        assert icns.format == "ICNS"


def test_linux_tarball_holds_bundle_desktop_entry_icon_and_installer(tmp_path: Path) -> None:
    build = load_script("build")
    out = tmp_path / "dist"
    bundle = out / "fewstep"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "fewstep").write_bytes(b"#!/bin/sh\n")
    (bundle / "fewstep").chmod(0o755)
    tarball = build.make_tarball(REPO_ROOT, out, "9.9.9")
    assert tarball.name.startswith("fewstep-9.9.9-linux-") and tarball.name.endswith(".tar.gz")
    with tarfile.open(tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
    for name in ("fewstep/fewstep", "fewstep.desktop", "fewstep.png", "install.sh", "README.txt"):
        assert f"fewstep-9.9.9/{name}" in members, name
    assert members["fewstep-9.9.9/install.sh"].mode & 0o111
    assert members["fewstep-9.9.9/fewstep/fewstep"].mode & 0o111


def test_flavour_archive_is_named_after_its_torch(tmp_path: Path) -> None:
    build = load_script("build")
    out = tmp_path / "dist"
    (out / "fewstep").mkdir(parents=True)
    (out / "fewstep" / "fewstep").write_bytes(b"#!/bin/sh\n")
    tarball = build.make_tarball(REPO_ROOT, out, "9.9.9", "cuda")
    assert tarball.name.startswith("fewstep-9.9.9-linux-") and tarball.name.endswith("-cuda.tar.gz")


def test_cuda_flavour_runs_pip_without_the_machines_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    build = load_script("build")
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    monkeypatch.setenv("PIP_INDEX_URL", "file:///opt/pypi/simple")
    cuda = build.pip_environment("cuda")
    assert cuda["PIP_CONFIG_FILE"] == os.devnull
    assert "PIP_FIND_LINKS" not in cuda and "PIP_INDEX_URL" not in cuda
    assert build.pip_environment("cpu") == dict(os.environ)  # the machine's CPU wheel is the right one
    assert build.torch_pin(REPO_ROOT) == "torch==2.13.0"


def test_appdir_layout(tmp_path: Path) -> None:
    build = load_script("build")
    out = tmp_path / "dist"
    (out / "fewstep").mkdir(parents=True)
    (out / "fewstep" / "fewstep").write_bytes(b"#!/bin/sh\n")
    appdir = build.make_appdir(REPO_ROOT, out)
    assert os.access(appdir / "AppRun", os.X_OK)
    assert (appdir / "fewstep.desktop").is_file() and (appdir / "fewstep.png").is_file()
    assert (appdir / ".DirIcon").resolve() == (appdir / "fewstep.png").resolve()
    assert (appdir / "usr" / "lib" / "fewstep" / "fewstep").is_file()


def test_installers_workflow_builds_on_every_system() -> None:
    text = (REPO_ROOT / ".github" / "workflows" / "installers.yml").read_text(encoding="utf-8")
    for runner in ("ubuntu-", "windows-", "macos-"):
        assert runner in text
    assert "packaging/constraints.txt" in text
    assert "packaging/build.py" in text
    assert "--self-test" in text
    # The Windows CUDA flavour comes from PyTorch's CUDA wheel index; macOS builds its MPS wheel.
    assert "download.pytorch.org/whl/cu" in text and "flavour: cuda" in text


def fake_bundle(folder: Path, *, stderr_line: str = "") -> Path:
    """A bundle whose `fewstep` prints what a healthy one prints (and optionally one line on stderr)."""
    lines = [
        "usage: fewstep [gui]",
        "PASS  qt: platform offscreen",
        *(f"PASS  backend {b}: ok" for b in ("torch", "transformers", "peft", "accelerate", "safetensors")),
        "PASS  backend peft-lora: ok",
        "PASS  engine: built-in model loaded",
        *(f"PASS  generate {mode}: 2 steps" for mode in MODES),
        "self-test PASSED: all checks",
    ]
    script = "#!/bin/sh\n" + "".join(f"echo '{line}'\n" for line in lines)
    if stderr_line:
        script += f"echo '{stderr_line}' >&2\n"
    folder.mkdir(parents=True)
    (folder / "fewstep").write_text(script, encoding="utf-8")
    (folder / "fewstep").chmod(0o755)
    return folder


@pytest.mark.skipif(os.name == "nt", reason="the fake bundle is a shell script")
def test_smoke_test_passes_a_clean_bundle_and_fails_on_any_stderr_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    smoke = load_script("smoke_test")
    assert smoke.main(["--bundle", str(fake_bundle(tmp_path / "clean"))]) == 0
    assert "smoke test PASSED" in capsys.readouterr().out
    noisy = fake_bundle(tmp_path / "noisy", stderr_line="QStandardPaths: XDG_RUNTIME_DIR not set")
    assert smoke.main(["--bundle", str(noisy)]) == 1
    out = capsys.readouterr().out
    assert "unexpected stderr: QStandardPaths: XDG_RUNTIME_DIR not set" in out
    assert "smoke test FAILED" in out
