"""GainControl: 16-bit thermal -> 8 bit, fixed stretch identical across frames, CLAHE, auto adaptation."""

from __future__ import annotations

import numpy as np
import pytest

from app.gain import GainControl


def _thermal(rng, base: int, hot: int | None = None) -> np.ndarray:
    """(120, 160) uint16 raw counts around ``base`` with a gradient; optionally a hot blob."""
    y, x = np.mgrid[0:120, 0:160]
    img = base + 8 * x + 4 * y + rng.normal(0, 20, (120, 160))
    if hot is not None:
        img[40:60, 50:80] = hot
    return np.clip(img, 0, 65535).astype(np.uint16)


def test_fixed_stretch_is_identical_across_frames(rng):
    gain = GainControl(mode="percentile", low=1, high=99)
    first = _thermal(rng, 20000)
    out1 = gain.apply(first)
    assert out1.dtype == np.uint8 and out1.shape == first.shape
    assert out1.min() == 0 and out1.max() == 255  # the percentiles span the 8-bit range
    limits = gain.limits
    hot = _thermal(rng, 20000, hot=40000)  # a hot object enters: the mapping must not change
    out2 = gain.apply(hot)
    assert gain.limits == limits
    background = np.ones(hot.shape, bool)
    background[40:60, 50:80] = False
    ref = GainControl(mode="fixed", low=limits[0], high=limits[1]).apply(hot)
    assert np.array_equal(out2, ref)
    assert abs(float(out1[background].mean()) - float(out2[background].mean())) < 2.0  # no flicker
    assert out2[45, 60] == 255


def test_explicit_counts_and_8bit_input(rng):
    raw = np.array([[1000, 2000, 3000]], np.uint16)
    assert GainControl(mode="fixed", low=1000, high=3000).apply(raw).tolist() == [[0, 128, 255]]
    img8 = rng.integers(50, 200, (32, 32), dtype=np.uint8)
    out = GainControl(mode="minmax").apply(np.dstack([img8] * 3))  # 3 equal channels (TNO PNGs)
    assert out.ndim == 2 and out.min() == 0 and out.max() == 255
    assert np.array_equal(GainControl(mode="none").apply(img8), img8)


def test_clahe_raises_local_contrast(rng):
    low_contrast = _thermal(rng, 30000)
    low_contrast[:, :80] = 30000 + rng.normal(0, 10, (120, 80))  # a flat, noisy half
    plain = GainControl().apply(low_contrast)
    local = GainControl(clahe=True, clip_limit=3.0).apply(low_contrast)
    assert local.dtype == np.uint8
    assert local[:, :80].std() > 1.5 * plain[:, :80].std()


def test_auto_mode_adapts_smoothly_and_lock_reset(rng):
    gain = GainControl(auto=True, smoothing=0.5)
    gain.apply(_thermal(rng, 10000))
    lo0 = gain.limits[0]
    warmer = _thermal(rng, 30000)
    gain.apply(warmer)
    lo1 = gain.limits[0]
    assert lo0 < lo1 < lo0 + 20000  # moved toward the new scene, smoothed (not all the way)
    for _ in range(12):
        out = gain.apply(warmer)
    assert gain.limits[0] - lo0 > 19000  # converged to the warmer scene
    assert out.min() == 0 and out.max() == 255
    gain.lock()
    frozen = gain.limits
    gain.apply(_thermal(rng, 5000))
    assert gain.limits == frozen
    gain.reset()
    assert gain.limits is None
    gain.apply(_thermal(rng, 5000))
    assert gain.limits[0] < 6000


def test_bad_settings_are_rejected_with_the_reason():
    with pytest.raises(ValueError, match="gain mode"):
        GainControl(mode="magic")
    with pytest.raises(ValueError, match="percentiles"):
        GainControl(low=90, high=10)
    with pytest.raises(ValueError, match="smoothing"):
        GainControl(auto=True, smoothing=1.5)
