"""Thermal palettes, alpha blending and the MSX-style edge overlay."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine import FusionEngine, create_method
from engine.errors import FusionInputError
from engine.methods.display import PALETTES, apply_palette

DISPLAY = ["white_hot", "black_hot", "ironbow", "rainbow", "alpha_blend", "msx"]


@pytest.fixture
def pair(rng):
    ir = rng.uniform(0, 1, (40, 50)).astype(np.float32)
    vi = rng.uniform(0, 1, (40, 50, 3)).astype(np.float32)
    return ir, vi


@pytest.mark.parametrize("name", DISPLAY)
def test_display_methods_paint_bgr_in_range(name, pair):
    method = create_method(name)
    assert method.produces_color
    for vi in (pair[1], pair[1][:, :, 0]):  # colour and gray visible input
        out = method.fuse(pair[0], vi)
        assert out.shape == (40, 50, 3) and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("name", DISPLAY)
def test_display_methods_through_the_engine(name, pair):
    out = FusionEngine(name).fuse((pair[0] * 255).astype(np.uint8), (pair[1] * 255).astype(np.uint8))
    assert out.shape == (40, 50, 3) and out.dtype == np.uint8


def test_palette_luts_are_256_bgr_entries():
    assert list(PALETTES) == ["white_hot", "black_hot", "ironbow", "rainbow"]
    for lut in PALETTES.values():
        assert lut.shape == (256, 3) and lut.dtype == np.uint8


def test_white_hot_is_identity_gray_and_black_hot_its_inverse():
    ramp = np.linspace(0, 1, 256, dtype=np.float32)[None, :]
    white = apply_palette(ramp, "white_hot")
    black = apply_palette(ramp, "black_hot")
    for c in range(3):
        np.testing.assert_allclose(white[..., c], ramp, atol=0.5 / 255)
    np.testing.assert_allclose(black, 1.0 - white, atol=1e-6)


def test_ironbow_luminance_rises_with_temperature():
    lut = PALETTES["ironbow"]
    luma = cv2.cvtColor(lut[None], cv2.COLOR_BGR2GRAY)[0].astype(int)
    assert np.all(np.diff(luma) >= 0)
    assert luma[0] == 0 and luma[-1] == 255
    b, g, r = lut[128].astype(int)
    assert r > b and r > g  # the middle of the range is red/magenta, not gray


def test_unknown_palette_is_named_in_the_error():
    with pytest.raises(FusionInputError, match="unknown palette 'plasma'.*ironbow"):
        apply_palette(np.zeros((2, 2), np.float32), "plasma")
    with pytest.raises(FusionInputError):
        create_method("msx", palette="plasma")


def test_alpha_blend_endpoints(pair):
    ir, vi = pair
    np.testing.assert_allclose(create_method("alpha_blend", alpha=1.0).fuse(ir, vi), apply_palette(ir, "ironbow"))
    np.testing.assert_allclose(create_method("alpha_blend", alpha=0.0).fuse(ir, vi), vi)
    half = create_method("alpha_blend", alpha=0.5, palette="white_hot").fuse(ir, vi)
    np.testing.assert_allclose(half, 0.5 * apply_palette(ir, "white_hot") + 0.5 * vi, atol=1e-6)
    with pytest.raises(FusionInputError):
        create_method("alpha_blend", alpha=1.5)


def test_msx_adds_visible_edges_to_the_palette():
    ir = np.full((64, 64), 0.5, np.float32)  # flat thermal scene: the palette alone shows nothing
    vi = np.full((64, 64), 0.3, np.float32)
    vi[:, 32:] = 0.7  # a visible edge
    plain = apply_palette(ir, "ironbow")
    out = create_method("msx", strength=1.0).fuse(ir, vi)
    np.testing.assert_allclose(out[:, :20], plain[:, :20], atol=1e-3)  # far from the edge: unchanged
    luma = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
    assert luma[32, 33] - luma[32, 30] > 0.1  # the edge now shows, bright side brighter
    # the overlay changes luminance only: chrominance of the palette stays (away from clipping)
    unclipped = ((out > 0) & (out < 1)).all(axis=2)
    assert unclipped[:, 33].all()  # the bright side of the edge is such a place
    crcb = cv2.cvtColor(out, cv2.COLOR_BGR2YCrCb)[..., 1:][unclipped]
    np.testing.assert_allclose(crcb, cv2.cvtColor(plain, cv2.COLOR_BGR2YCrCb)[..., 1:][unclipped], atol=1e-3)
    np.testing.assert_allclose(create_method("msx", strength=0.0).fuse(ir, vi), plain)


def test_apply_palette_clamps_out_of_range_values():
    out = apply_palette(np.array([[-0.5, 0.0, 1.0, 1.5]], np.float32), "white_hot")
    np.testing.assert_allclose(out[0, :, 0], [0.0, 0.0, 1.0, 1.0])
