"""Start-up without a display, or without Qt's X11 libraries: one message saying what to do, exit 2 (not
Qt's abort with exit 134)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.display_check import display_problem, missing_xcb_libraries, package_for, unresolved_libraries, xcb_plugin

REPO = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the X11/xcb checks are Linux-only")


def run_viewer_with(env_changes: dict, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(env_changes)
    return subprocess.run([sys.executable, str(REPO / "run_app.py"), "--frames", "2", *args], capture_output=True,
                          text=True, timeout=120, cwd=REPO, env=env)


@linux_only
def test_no_display_says_how_to_run_and_exits_2():
    proc = run_viewer_with({})
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: no display") and "--headless" in line and "QT_QPA_PLATFORM=offscreen" in line


@linux_only
def test_platforms_that_need_no_display_pass():
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert display_problem({"QT_QPA_PLATFORM": "minimal"}) is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}) is None
    assert "WAYLAND_DISPLAY" in display_problem({"QT_QPA_PLATFORM": "wayland"})


def test_library_names_map_to_debian_packages():
    assert package_for("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert package_for("libxcb-keysyms.so.1") == "libxcb-keysyms1"
    assert package_for("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert package_for("libEGL.so.1") == "libegl1"
    assert package_for("libdbus-1.so.3") == "libdbus-1-3"


@linux_only
def test_ldd_finds_nothing_missing_for_a_complete_library():
    assert unresolved_libraries(Path(sys.executable).resolve()) == []


@linux_only
def test_missing_xcb_libraries_are_named_with_their_packages():
    missing = missing_xcb_libraries()
    if xcb_plugin() is None or not missing:
        pytest.skip("Qt's xcb plugin has every library it needs on this machine")
    proc = run_viewer_with({"DISPLAY": ":99"})
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert all(lib in line for lib in missing) and "sudo apt-get install " + package_for(missing[0]) in line
