"""Build Fewstep's one-folder bundle with PyInstaller, and on Linux its tarball (and AppDir).

    .venv/bin/python packaging/build.py [--source CHECKOUT] [--out dist] [--no-tarball] [--appimage]
    .venv/bin/python packaging/build.py --torch cuda|cpu [--torch-index URL] [...]

Flavours: without --torch the bundle carries the torch of the Python that runs this script. With
--torch cuda or cpu, the script first makes (or reuses) a virtual environment WORK/venv-FLAVOUR,
installs the pinned torch of that flavour into it and Fewstep with PyInstaller, checks that the
torch it got is the one asked for, and builds from there; the archive's name ends in -FLAVOUR.
- cuda, Linux: the registry's default Linux torch wheel is the CUDA build (torch plus nvidia-*
  wheels, several GB). A machine whose pip configuration points at a folder of CPU wheels would
  hand out the CPU wheel instead (2.13.0+cpu sorts above 2.13.0), so pip runs without the machine's
  configuration (PIP_CONFIG_FILE set to the null device, PIP_FIND_LINKS and PIP_INDEX_URL unset).
- cuda, Windows: CUDA builds come only from PyTorch's own wheel index: pass it as --torch-index.
- cpu: the pip configuration as it is (on Linux give PyTorch's CPU index as --torch-index where the
  machine has no CPU wheel at hand: the registry's Linux wheel is the CUDA one).
- macOS arm64 has one torch wheel, with MPS: build it without --torch.

Run it with a Python that has Fewstep's dependencies and PyInstaller (pip install -c
packaging/constraints.txt -e '.[packaging]'). --source builds another checkout, e.g. a clean clone
(packaging/smoke_test.py does that); its engine/ and gui/ are bundled, not those of the checkout
installed in the environment. Writes OUT/fewstep/ (the bundle; Fewstep.app beside it on macOS) and,
on Linux, OUT/fewstep-VERSION-linux-ARCH.tar.gz with the .desktop file, the icon and an install
script. --appimage also lays out OUT/Fewstep.AppDir and packs it with appimagetool when that is on
PATH (it is on neither PyPI nor Debian: CI downloads it; see .github/workflows/installers.yml).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIB = 1024 * 1024

INSTALL_SH = """#!/bin/sh
# Install Fewstep for the current user: the bundle under ~/.local/share/fewstep, a `fewstep` command
# in ~/.local/bin, and a menu entry with its icon. Run it again to update; remove those three to uninstall.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
dest=$data/fewstep
rm -rf "$dest.new" && mkdir -p "$data" "$HOME/.local/bin" "$data/applications" "$data/icons/hicolor/512x512/apps"
cp -R "$here/fewstep" "$dest.new" && rm -rf "$dest" && mv "$dest.new" "$dest"
ln -sf "$dest/fewstep" "$HOME/.local/bin/fewstep"
cp "$here/fewstep.png" "$data/icons/hicolor/512x512/apps/fewstep.png"
sed "s|^Exec=fewstep|Exec=$dest/fewstep|" "$here/fewstep.desktop" > "$data/applications/fewstep.desktop"
echo "Fewstep installed in $dest; start it from the menu or with: $dest/fewstep"
"""

APPRUN = """#!/bin/sh
here=$(dirname "$(readlink -f "$0")")
exec "$here/usr/lib/fewstep/fewstep" "$@"
"""

README_TXT = """Fewstep {version} for Linux ({arch})

Start it without installing:   ./fewstep/fewstep
Check this copy works:         ./fewstep/fewstep --self-test
Install it for your user:      ./install.sh   (menu entry, icon, ~/.local/bin/fewstep)

No Python is needed. The first start opens on the built-in model; the window says where to put
real SDXL weights (the Models tab or Settings) and which files each mode needs.
"""


FLAVOURS = ("cuda", "cpu")
# pip's own settings that would make it pick a machine's local CPU wheel over the registry's.
PIP_MACHINE_SETTINGS = ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT")


def torch_pin(source: Path) -> str:
    """The torch requirement of packaging/constraints.txt, e.g. torch==2.13.0."""
    for line in (source / "packaging" / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("torch=="):
            return line.strip()
    raise SystemExit("packaging/constraints.txt pins no torch version")


def pip_environment(flavour: str) -> dict[str, str]:
    env = dict(os.environ)
    if flavour == "cuda":
        env["PIP_CONFIG_FILE"] = os.devnull  # pip then reads no configuration file at all
        for name in PIP_MACHINE_SETTINGS:
            env.pop(name, None)
    return env


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def prepare_flavour(source: Path, work: Path, flavour: str, torch_index: str | None) -> Path:
    """A virtual environment with the flavour's torch, Fewstep and PyInstaller; its Python."""
    venv = work / f"venv-{flavour}"
    python = venv_python(venv)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = pip_environment(flavour)
    constraints = str(source / "packaging" / "constraints.txt")
    torch_command = [str(python), "-m", "pip", "install", "-c", constraints, torch_pin(source)]
    if torch_index:
        torch_command += ["--index-url", torch_index]
    started = time.perf_counter()
    print("$ " + " ".join(torch_command), flush=True)
    subprocess.run(torch_command, check=True, env=env)
    project = [str(python), "-m", "pip", "install", "-c", constraints, f"{source}[packaging]"]
    print("$ " + " ".join(project), flush=True)
    subprocess.run(project, check=True, env=env)
    probe = "import torch; print(torch.__version__, torch.version.cuda or 'none')"
    version, cuda = subprocess.run(
        [str(python), "-c", probe], check=True, capture_output=True, text=True
    ).stdout.split()
    print(f"{venv}: torch {version}, CUDA {cuda} ({time.perf_counter() - started:.0f} s)", flush=True)
    if flavour == "cuda" and cuda == "none":
        raise SystemExit(
            f"{venv} got torch {version}, a CPU build: pip found a CPU wheel first (a local wheel"
            " folder or index); on Windows pass PyTorch's CUDA index as --torch-index"
        )
    if flavour == "cpu" and cuda != "none":
        raise SystemExit(f"{venv} got torch {version} with CUDA {cuda}: pass a CPU index as --torch-index")
    return python


@dataclass(frozen=True)
class BuildResult:
    bundle: Path
    seconds: float
    size_bytes: int
    archives: tuple[Path, ...]


def project_version(source: Path) -> str:
    data = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))
    version = data["project"]["version"]
    assert isinstance(version, str)
    return version


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def largest_parts(bundle: Path, count: int = 12) -> list[tuple[int, str]]:
    """The biggest entries two levels down (inside _internal/ when present), largest first."""
    inner = bundle / "_internal" if (bundle / "_internal").is_dir() else bundle
    sizes = []
    for entry in inner.iterdir():
        size = folder_size(entry) if entry.is_dir() else entry.stat().st_size
        sizes.append((size, entry.name))
    return sorted(sizes, reverse=True)[:count]


def run_pyinstaller(source: Path, out: Path, work: Path) -> None:
    env = dict(os.environ)
    # The checkout being built comes first on the module path (see the check in fewstep.spec).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        str(out),
        "--workpath",
        str(work),
        str(source / "packaging" / "fewstep.spec"),
    ]
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, cwd=source, env=env, check=True)


def linux_arch() -> str:
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine())


def make_tarball(source: Path, out: Path, version: str, label: str = "") -> Path:
    """fewstep-VERSION/ with the bundle, the .desktop file, the icon, install.sh and README.txt."""
    arch = linux_arch()
    top = f"fewstep-{version}"
    suffix = f"-{label}" if label else ""
    tarball = out / f"fewstep-{version}-linux-{arch}{suffix}.tar.gz"
    extras = {
        "fewstep.desktop": (source / "resources" / "fewstep.desktop").read_bytes(),
        "fewstep.png": (source / "resources" / "icons" / "fewstep.png").read_bytes(),
        "install.sh": INSTALL_SH.encode(),
        "README.txt": README_TXT.format(version=version, arch=arch).encode(),
    }
    staging = out / f".{top}.extras"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for name, data in extras.items():
            path = staging / name
            path.write_bytes(data)
            path.chmod(0o755 if name == "install.sh" else 0o644)
        partial = tarball.with_name(tarball.name + ".part")
        # compresslevel 6: nearly the size of 9 (torch's libraries barely compress) in half the time.
        with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
            tar.add(out / "fewstep", arcname=f"{top}/fewstep")
            for name in extras:
                tar.add(staging / name, arcname=f"{top}/{name}")
        partial.replace(tarball)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tarball


def make_appdir(source: Path, out: Path) -> Path:
    """The AppDir that appimagetool packs: AppRun, the .desktop file, the icon, the bundle in usr/lib."""
    appdir = out / "Fewstep.AppDir"
    shutil.rmtree(appdir, ignore_errors=True)
    (appdir / "usr" / "lib").mkdir(parents=True)
    shutil.copytree(out / "fewstep", appdir / "usr" / "lib" / "fewstep", symlinks=True)
    apprun = appdir / "AppRun"
    apprun.write_text(APPRUN, encoding="utf-8")
    apprun.chmod(0o755)
    shutil.copy2(source / "resources" / "fewstep.desktop", appdir / "fewstep.desktop")
    shutil.copy2(source / "resources" / "icons" / "fewstep.png", appdir / "fewstep.png")
    (appdir / ".DirIcon").symlink_to("fewstep.png")
    return appdir


def make_appimage(appdir: Path, out: Path, version: str) -> Path | None:
    tool = shutil.which("appimagetool")
    if tool is None:
        print(f"appimagetool is not on PATH: the AppDir is ready at {appdir}, no AppImage made", flush=True)
        return None
    image = out / f"Fewstep-{version}-{linux_arch()}.AppImage"
    env = dict(os.environ, ARCH=linux_arch())
    subprocess.run([tool, "--no-appstream", str(appdir), str(image)], check=True, env=env)
    return image


def build(
    source: Path, out: Path, work: Path, *, tarball: bool = True, appimage: bool = False, label: str = ""
) -> BuildResult:
    source, out, work = source.resolve(), out.resolve(), work.resolve()
    started = time.perf_counter()
    run_pyinstaller(source, out, work)
    bundle = out / "fewstep"
    seconds = time.perf_counter() - started
    version = project_version(source)
    archives: list[Path] = []
    if sys.platform.startswith("linux"):
        if tarball:
            archives.append(make_tarball(source, out, version, label))
        if appimage:
            image = make_appimage(make_appdir(source, out), out, version)
            if image is not None:
                archives.append(image)
    return BuildResult(
        bundle=bundle, seconds=seconds, size_bytes=folder_size(bundle), archives=tuple(archives)
    )


def print_report(result: BuildResult) -> None:
    print(f"bundle: {result.bundle}", flush=True)
    print(f"bundle size: {result.size_bytes / MIB:.0f} MiB; PyInstaller took {result.seconds:.0f} s")
    for size, name in largest_parts(result.bundle):
        print(f"  {size / MIB:8.1f} MiB  {name}")
    for archive in result.archives:
        print(f"archive: {archive} ({archive.stat().st_size / MIB:.0f} MiB)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source", type=Path, default=HERE.parent, help="checkout to build (default: %(default)s)"
    )
    parser.add_argument("--out", type=Path, help="output folder (default: SOURCE/dist)")
    parser.add_argument(
        "--work", type=Path, help="PyInstaller's work folder (default: SOURCE/build/pyinstaller)"
    )
    parser.add_argument("--no-tarball", action="store_true", help="Linux: skip the .tar.gz")
    parser.add_argument(
        "--appimage", action="store_true", help="Linux: lay out an AppDir and pack it if possible"
    )
    parser.add_argument(
        "--torch", choices=FLAVOURS, help="build in a virtual environment with this torch (see above)"
    )
    parser.add_argument("--torch-index", metavar="URL", help="the index pip takes torch from")
    parser.add_argument("--label", default="", help=argparse.SUPPRESS)  # the flavour, in archive names
    args = parser.parse_args(argv)
    source: Path = args.source.resolve()
    out = (args.out or source / "dist").resolve()
    work = (args.work or source / "build" / "pyinstaller").resolve()
    if args.torch:
        python = prepare_flavour(source, work.parent, args.torch, args.torch_index)
        command = [str(python), str(Path(__file__).resolve()), "--source", str(source), "--out", str(out)]
        command += ["--work", str(work), "--label", args.torch]
        command += ["--no-tarball"] * args.no_tarball + ["--appimage"] * args.appimage
        return subprocess.run(command, check=False).returncode
    result = build(source, out, work, tarball=not args.no_tarball, appimage=args.appimage, label=args.label)
    print_report(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
