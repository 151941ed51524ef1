"""Before Qt starts on X11, the libraries its xcb plugin links against are checked: a missing one is
named in one line with the packages that bring it, and the window is not opened (exit 2)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import gui.xcb_libraries
from gui.launcher import main
from gui.xcb_libraries import XCB_LIBRARIES, library_loads, will_use_xcb, xcb_problem


def all_but(missing: str) -> Callable[[str], bool]:
    return lambda soname: soname != missing


def test_one_missing_library_names_its_packages() -> None:
    line = xcb_problem({"DISPLAY": ":0"}, "linux", all_but("libxcb-keysyms.so.1"))
    assert line is not None and "\n" not in line
    assert "libxcb-keysyms.so.1" in line and "libxcb-cursor" not in line
    assert "sudo apt install libxcb-keysyms1;" in line and "sudo dnf install xcb-util-keysyms)" in line
    assert "QT_QPA_PLATFORM=wayland" in line


def test_nothing_said_when_every_library_loads() -> None:
    assert xcb_problem({"DISPLAY": ":0"}, "linux", lambda soname: True) is None


@pytest.mark.parametrize(
    ("environ", "platform", "xcb"),
    [
        ({"DISPLAY": ":0"}, "linux", True),
        ({}, "linux", True),  # no display at all: Qt still tries xcb
        ({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, "linux", False),  # Qt 6 picks wayland
        ({"XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0"}, "linux", False),
        ({"QT_QPA_PLATFORM": "wayland;xcb"}, "linux", False),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
        ({"DISPLAY": ":0"}, "darwin", False),
        ({}, "win32", False),
    ],
)
def test_only_an_x11_start_is_checked(environ: dict[str, str], platform: str, xcb: bool) -> None:
    assert will_use_xcb(environ, platform) is xcb
    said = xcb_problem(environ, platform, lambda soname: False)
    assert (said is not None) is xcb


def test_the_launcher_says_it_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(gui.xcb_libraries, "library_loads", all_but("libxcb-icccm.so.4"))
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "libxcb-icccm4" in err and "xcb-util-wm" in err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sonames are Linux's")
def test_the_real_lookup() -> None:
    assert library_loads("libc.so.6")
    assert not library_loads("libfewstep-no-such-library.so.7")


def test_the_table_is_what_the_plugin_links_against() -> None:
    """Every library the installed PySide6's xcb plugin needs, less Qt's own and the C/C++ runtime."""
    readelf = shutil.which("readelf")
    qt = Path(pytest.importorskip("PySide6").__file__).parent / "Qt"
    files = [qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6"]
    if readelf is None or not all(f.is_file() for f in files):
        pytest.skip("needs readelf and PySide6's Linux xcb plugin")
    needed = set()
    for file in files:
        dynamic = subprocess.run([readelf, "-d", str(file)], capture_output=True, text=True, check=True)
        needed |= {
            line.split("[")[1].rstrip("]") for line in dynamic.stdout.splitlines() if "(NEEDED)" in line
        }
    runtime = {"libstdc++.so.6", "libm.so.6", "libgcc_s.so.1", "libc.so.6"}
    assert {n for n in needed if not n.startswith("libQt6")} - runtime == set(XCB_LIBRARIES)
