"""Before Qt starts on X11: are the libraries its xcb platform plugin links against there?

Without one of them Qt prints "Could not load the Qt platform plugin xcb" and names xcb-cursor0 even when
that one is installed and another is missing. This check names the packages that are actually missing,
for Debian/Ubuntu and for Fedora, in one line, before Qt is imported.

Qt-free: it runs before PySide6 is imported, in a checkout, a wheel and the bundle alike.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

# Every library PySide6 6.12's Qt/plugins/platforms/libqxcb.so and Qt/lib/libQt6XcbQpa.so.6 link against
# (their ELF NEEDED entries), less Qt's own and the C/C++ runtime: soname -> (Debian/Ubuntu, Fedora package).
XCB_LIBRARIES: Mapping[str, tuple[str, str]] = {
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
}


def library_loads(soname: str) -> bool:
    """Whether the dynamic linker finds and loads soname, the way Qt's plugin loader will (the bundle's
    own folder included: its launcher puts that on LD_LIBRARY_PATH)."""
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def will_use_xcb(environ: Mapping[str, str], platform: str) -> bool:
    """Whether Qt will start on X11: on Linux, when QT_QPA_PLATFORM names xcb first, or names nothing
    outside a Wayland session (in one, Qt 6 picks its wayland plugin and needs none of these)."""
    if not platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "").split(";")[0].strip()
    if chosen:
        return chosen == "xcb"
    wayland = bool(environ.get("WAYLAND_DISPLAY")) or environ.get("XDG_SESSION_TYPE") == "wayland"
    return not wayland


def missing_xcb_libraries(present: Callable[[str], bool] = library_loads) -> list[str]:
    return [soname for soname in XCB_LIBRARIES if not present(soname)]


def missing_message(missing: list[str]) -> str:
    debian = " ".join(dict.fromkeys(XCB_LIBRARIES[name][0] for name in missing))
    fedora = " ".join(dict.fromkeys(XCB_LIBRARIES[name][1] for name in missing))
    return (
        f"fewstep: the window cannot open: Qt's X11 libraries {', '.join(missing)} are missing; install"
        f" them (Debian/Ubuntu: sudo apt install {debian}; Fedora: sudo dnf install {fedora}),"
        " or on Wayland run QT_QPA_PLATFORM=wayland fewstep"
    )


def xcb_problem(
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    present: Callable[[str], bool] | None = None,
) -> str | None:
    """The one line to print when Qt would start on X11 without its libraries; None when it can start.

    Each argument defaults to the real thing at call time: os.environ, sys.platform, library_loads."""
    if not will_use_xcb(os.environ if environ is None else environ, platform or sys.platform):
        return None
    missing = missing_xcb_libraries(present or library_loads)
    return missing_message(missing) if missing else None
