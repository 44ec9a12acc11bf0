"""engine.metrics.halo: the halo measure is zero for per-pixel mixes and catches bands beside thermal edges."""

from __future__ import annotations

import cv2
import numpy as np

from engine.metrics.halo import halo_scores


def step_pair(rng):
    """Thermal: hot block on a cool background (a strong edge); visible: texture."""
    ir = np.full((240, 320), 40.0, np.float32)
    ir[80:160, 120:200] = 200.0
    vi = cv2.GaussianBlur(rng.random((240, 320)).astype(np.float32), (0, 0), 2) * 120 + 60
    return ir, vi


def test_pixelwise_mixes_have_no_halo(rng):
    ir, vi = step_pair(rng)
    for fused in (0.5 * ir + 0.5 * vi, np.maximum(ir, vi), 0.3 * ir + 0.7 * vi):
        s = halo_scores(ir, vi, fused)
        assert s.halo < 0.05 and s.near_fraction > 0.01


def test_a_dark_band_beside_the_edge_is_measured(rng):
    ir, vi = step_pair(rng)
    fused = 0.5 * ir + 0.5 * vi
    dist = cv2.distanceTransform((ir < 120).astype(np.uint8), cv2.DIST_L2, 5)
    band = (dist > 1) & (dist < 5)  # a dark ring just outside the hot block
    haloed = fused.copy()
    haloed[band] -= 30
    s = halo_scores(ir, vi, haloed)
    assert s.halo_dark > 5 * max(s.halo_bright, 0.1) and s.halo > 3.0


def test_black_lift():
    ir = np.full((60, 80), 10.0, np.float32)
    vi = np.full((60, 80), 20.0, np.float32)
    s = halo_scores(ir, vi, np.full((60, 80), 70.0, np.float32))
    assert abs(s.black_lift - 50.0) < 1e-3 and s.dark_fraction == 1.0 and s.halo == 0.0
