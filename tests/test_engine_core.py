"""FusionEngine plumbing: colour handling, input validation, batching, the registry."""

import numpy as np
import pytest

from engine import FusionEngine, FusionInputError, UnknownMethodError, create_method, register_method
from engine.color import merge_luma, split_luma, to_float01
from engine.methods.base import FusionMethod


@register_method("_test_take_ir", "test-only: returns the thermal image")
class TakeIR(FusionMethod):
    def fuse(self, ir, vi):
        return ir


def test_ycbcr_round_trip_restores_colour(rng):
    bgr = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    y, crcb = split_luma(bgr)
    back = merge_luma(y, crcb)
    assert np.abs(back * 255 - bgr).max() < 1.0


def test_luma_method_keeps_visible_chroma(rng):
    vis = rng.integers(100, 156, (16, 20, 3), dtype=np.uint8)  # mild colours: in gamut at any Y near 0.5
    ir = np.full((16, 20), 128, np.uint8)
    out = FusionEngine("_test_take_ir").fuse(ir, vis)
    assert out.shape == (16, 20, 3) and out.dtype == np.uint8
    y, crcb_out = split_luma(out)
    _, crcb_in = split_luma(vis)
    assert np.allclose(y, 128 / 255, atol=1.5 / 255)
    # chroma survives where the colour is inside the gamut at Y=0.5
    assert np.median(np.abs(crcb_out - crcb_in)) < 2 / 255


def test_gray_visible_gives_gray_output():
    out = FusionEngine("_test_take_ir").fuse(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8))
    assert out.shape == (8, 8)


@pytest.mark.parametrize(
    "ir, vis, message",
    [
        (np.zeros((8, 8), np.uint8), np.zeros((9, 8), np.uint8), "register them"),
        (np.zeros((0, 8), np.uint8), np.zeros((0, 8), np.uint8), "empty"),
        (np.zeros((8, 8), np.uint16), np.zeros((8, 8), np.uint8), "16-bit"),
        (np.zeros((8, 8), np.int32), np.zeros((8, 8), np.uint8), "dtype"),
    ],
)
def test_bad_input_raises_clear_error(ir, vis, message):
    with pytest.raises(FusionInputError, match=message):
        FusionEngine("_test_take_ir").fuse(ir, vis)


def test_batch_groups_mixed_sizes():
    irs = [np.full((4, 5), 10, np.uint8), np.full((6, 3), 20, np.uint8), np.full((4, 5), 30, np.uint8)]
    viss = [np.zeros((4, 5), np.uint8), np.zeros((6, 3), np.uint8), np.zeros((4, 5), np.uint8)]
    outs = FusionEngine("_test_take_ir").fuse_batch(irs, viss)
    assert [o.shape for o in outs] == [(4, 5), (6, 3), (4, 5)]
    assert [int(o[0, 0]) for o in outs] == [10, 20, 30]


def test_unknown_method_lists_known_names():
    with pytest.raises(UnknownMethodError, match="_test_take_ir"):
        create_method("no-such-method")


def test_float_input_is_clipped_not_rescaled():
    assert to_float01(np.array([[1.5, -0.2]], np.float32)).tolist() == [[1.0, 0.0]]


def test_uint8_colour_fast_path_matches_the_float_path_within_two_levels(rng):
    from engine.color import merge_luma_uint8, split_luma_uint8, to_uint8

    vis = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    y_fast, ycrcb = split_luma_uint8(vis)
    y_float, crcb = split_luma(vis)
    assert np.abs(y_fast - y_float).max() <= 1.0 / 255 + 1e-6
    # Putting the visible Y back unchanged must give the visible frame back (up to rounding).
    assert np.abs(merge_luma_uint8(y_fast, ycrcb).astype(int) - vis.astype(int)).max() <= 2
    fused_y = np.clip(y_float * 0.5 + 0.3, 0, 1)
    fast = merge_luma_uint8(fused_y, ycrcb).astype(int)
    slow = to_uint8(merge_luma(fused_y, crcb)).astype(int)
    assert np.abs(fast - slow).max() <= 2  # Y and Cr/Cb each rounded to 8 bits before the inverse transform
    # The engine takes the fast path for uint8 colour frames and still returns uint8 BGR of the input size.
    ir = rng.integers(0, 256, (48, 64), dtype=np.uint8)
    out = FusionEngine("average").fuse(ir, vis)
    assert out.dtype == np.uint8 and out.shape == vis.shape
    expected = to_uint8(merge_luma((to_float01(ir) + y_float) / 2, crcb)).astype(int)
    assert np.abs(out.astype(int) - expected).max() <= 2
