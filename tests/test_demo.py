"""The built-in demo scene: deterministic, any size, synchronised sources, and it shows why fusion matters."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from app.demo import DemoRgbSource, DemoScene, DemoThermalSource, open_demo_pair
from app.errors import SourceError
from app.sources.base import FrameSource


@pytest.fixture(scope="module")
def scene():
    return DemoScene(320, 240, 25.0, seed=3)


def test_frames_are_deterministic_given_the_seed(scene):
    other = DemoScene(320, 240, 25.0, seed=3)
    assert np.array_equal(scene.render_visible(17), other.render_visible(17))
    assert np.array_equal(scene.render_thermal(17), other.render_thermal(17))
    different = DemoScene(320, 240, 25.0, seed=4)
    assert not np.array_equal(scene.render_visible(17), different.render_visible(17))


@pytest.mark.parametrize("size", [(64, 48), (333, 201), (1280, 720)])
def test_any_resolution(size):
    s = DemoScene(*size, seed=0)
    vis, ir = s.render_visible(5), s.render_thermal(5)
    assert vis.shape == (size[1], size[0], 3) and vis.dtype == np.uint8
    assert ir.shape == (size[1], size[0]) and ir.dtype == np.uint8


def test_too_small_scene_is_a_clear_error():
    with pytest.raises(SourceError, match="too small"):
        DemoScene(10, 10)


def test_scene_moves_over_time(scene):
    a, b = scene.render_thermal(0), scene.render_thermal(25)
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 1.0


def test_pedestrians_stand_out_in_thermal_but_hide_in_colour():
    s = DemoScene(640, 480, seed=0)
    for index in (0, 40, 120):
        mask = s.pedestrian_mask(index)
        assert mask.sum() > 500, "the pedestrians are in the frame"
        gray = cv2.cvtColor(s.render_visible(index), cv2.COLOR_BGR2GRAY).astype(float)
        gray_bg = cv2.cvtColor(s.static_visible, cv2.COLOR_BGR2GRAY).astype(float)
        ir = s.render_thermal(index).astype(float)
        ir_bg = s.static_thermal.astype(float)
        vis_change = abs((gray - gray_bg)[mask].mean())
        ir_change = (ir - ir_bg)[mask].mean()
        # Warm bodies are ~100 levels above the background in thermal; dark clothes in shadow change the
        # colour view by a few levels only, below its sensor noise (sigma 8).
        assert ir_change > 60
        assert vis_change < 8


def test_sources_share_one_clock_and_end_after_n_frames():
    ir_src, rgb_src = open_demo_pair(160, 120, fps=25, seed=1, frames=5, realtime=False)
    assert isinstance(ir_src, FrameSource) and isinstance(rgb_src, FrameSource)
    with ir_src, rgb_src:
        irs = [ir_src.read() for _ in range(6)]
        rgbs = [rgb_src.read() for _ in range(6)]
    assert irs[-1] is None and rgbs[-1] is None
    for a, b in zip(irs[:5], rgbs[:5]):
        assert a.index == b.index
        assert abs(a.timestamp - b.timestamp) < 0.020  # within the pairer's default tolerance
        assert a.timestamp != b.timestamp  # but not identical: two real sensors are never triggered together
    assert [f.index for f in rgbs[:5]] == [0, 1, 2, 3, 4]
    assert np.all(np.diff([f.timestamp for f in rgbs[:5]]) > 0)
    assert "demo" in ir_src.description and "160x120" in rgb_src.description


def test_raw16_thermal_keeps_counts():
    scene = DemoScene(160, 120, seed=2)
    src = DemoThermalSource(scene, raw16=True, frames=1, realtime=False)
    frame = src.read()
    assert frame.image.dtype == np.uint16
    assert 7000 <= frame.image.min() and frame.image.max() <= 7000 + 255 * 8


def test_realtime_sources_pace_at_the_frame_rate():
    scene = DemoScene(96, 72, fps=50.0, seed=0)
    src = DemoRgbSource(scene, frames=6, realtime=True)
    src.open()
    t0 = time.monotonic()
    while src.read() is not None:
        pass
    assert time.monotonic() - t0 >= 5 / 50.0 * 0.9


def test_rendering_is_fast():
    s = DemoScene(640, 480, seed=0)
    s.render_visible(0), s.render_thermal(0)
    t0 = time.perf_counter()
    for i in range(20):
        s.render_visible(i)
        s.render_thermal(i)
    per_pair_ms = (time.perf_counter() - t0) / 20 * 1000
    assert per_pair_ms < 40, f"{per_pair_ms:.1f} ms per pair (target: a few ms; generous on a loaded machine)"
