"""Before Qt starts: can this machine open a window at all? If not, say what to do instead of letting Qt
abort the process (exit 134) with a message that names the wrong package.

Two checks, both done without importing Qt:

* a display: ``DISPLAY`` or ``WAYLAND_DISPLAY`` set, or ``QT_QPA_PLATFORM`` naming a platform that needs
  none (``offscreen``, ``minimal``, ``vnc``, ...);
* the system libraries of Qt's X11 (xcb) platform plugin: ``ldd`` on the plugin lists what the dynamic
  loader cannot find, and the one library Qt loads by name at run time (libxcb-cursor) is looked up too.
"""

from __future__ import annotations

import ctypes.util
import os
import re
import subprocess
import sys
from pathlib import Path

#: the Debian/Ubuntu packages Qt 6's xcb platform plugin needs (also listed in the README)
XCB_PACKAGES = ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0", "libxcb-render-util0",
                "libxcb-shape0", "libxcb-randr0", "libxcb-xkb1", "libxkbcommon-x11-0", "libegl1", "libfontconfig1",
                "libdbus-1-3")
_HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "linuxfb", "eglfs", "vkkhrdisplay")


def package_for(soname: str) -> str:
    """The Debian package that usually ships ``soname``: ``libxcb-icccm.so.4`` -> ``libxcb-icccm4``,
    ``libxkbcommon-x11.so.0`` -> ``libxkbcommon-x11-0``, ``libEGL.so.1`` -> ``libegl1``."""
    match = re.match(r"(.+?)\.so\.(\d+)", soname)
    if not match:
        return soname
    name, version = match.group(1).lower(), match.group(2)
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def xcb_plugin() -> Path | None:
    """Qt's xcb platform plugin inside the installed PyQt6, or None when PyQt6 is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("PyQt6")
    if spec is None or not spec.submodule_search_locations:
        return None
    plugin = Path(list(spec.submodule_search_locations)[0]) / "Qt6" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def unresolved_libraries(library: Path) -> list[str]:
    """Shared libraries ``library`` needs that the dynamic loader cannot find (from ``ldd``), in order."""
    try:
        out = subprocess.run(["ldd", str(library)], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []  # no ldd: nothing to report, Qt will say what it thinks
    missing = []
    for line in out.splitlines():
        name, _, where = line.strip().partition(" => ")
        if where.strip() == "not found" and name not in missing:
            missing.append(name)
    return missing


def missing_xcb_libraries() -> list[str]:
    """System libraries the xcb platform plugin cannot load here (empty when it can, or off Linux)."""
    plugin = xcb_plugin()
    if plugin is None or not sys.platform.startswith("linux"):
        return []
    missing = unresolved_libraries(plugin)
    if ctypes.util.find_library("xcb-cursor") is None:  # loaded by name at run time, so ldd cannot see it
        missing.append("libxcb-cursor.so.0")
    return missing


def display_problem(environ: dict | None = None) -> str | None:
    """One line saying why the viewer cannot open a window here and what to do, or None when it can."""
    env = os.environ if environ is None else environ
    platform = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip()
    if platform in _HEADLESS_PLATFORMS or not sys.platform.startswith("linux"):
        return None
    if platform.startswith("wayland"):
        if env.get("WAYLAND_DISPLAY"):
            return None
        return ("QT_QPA_PLATFORM asks for Wayland but WAYLAND_DISPLAY is not set: run with --headless, "
                "or set QT_QPA_PLATFORM=offscreen to draw the window off screen (--screenshot)")
    if not env.get("DISPLAY"):
        if env.get("WAYLAND_DISPLAY") and not platform:
            return None  # Qt picks its Wayland plugin
        return ("no display (DISPLAY is not set): run with --headless for no window, or set "
                "QT_QPA_PLATFORM=offscreen to draw the window off screen (e.g. with --screenshot)")
    missing = missing_xcb_libraries()
    if missing:
        packages = " ".join(dict.fromkeys(package_for(lib) for lib in missing))
        return (f"the viewer cannot open an X11 window: Qt's xcb plugin needs {', '.join(missing)}, not installed "
                f"(sudo apt-get install {packages}); or run with --headless")
    return None
