"""Classical fusion baselines and the guided filter."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine import FusionEngine, available_methods, create_method
from engine.methods.classical import box_mean, guided_filter
from engine.methods.classical.laplacian import collapse_pyramid, laplacian_pyramid

CLASSICAL = ["average", "max", "laplacian", "gff", "tif"]


@pytest.fixture
def pair(rng):
    """(60, 80) float32 IR and VI in [0, 1] with structure at several scales."""
    ir = cv2.GaussianBlur(rng.uniform(0, 1, (60, 80)).astype(np.float32), (0, 0), 3.0)
    vi = np.clip(rng.uniform(0, 1, (60, 80)).astype(np.float32) * 0.6 + 0.2, 0, 1)
    return np.clip((ir - ir.min()) / (ir.max() - ir.min()), 0, 1), vi


def test_all_classical_methods_are_registered():
    assert set(CLASSICAL) <= set(available_methods())


@pytest.mark.parametrize("name", CLASSICAL)
def test_output_shape_dtype_and_range(name, pair):
    out = create_method(name).fuse(*pair)
    assert out.shape == pair[0].shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("name", CLASSICAL)
def test_identical_sources_give_back_the_source(name, pair):
    img = pair[1]
    # GFF's guided filters and TIF's weights are exact for equal inputs up to float rounding
    np.testing.assert_allclose(create_method(name).fuse(img, img), img, atol=1e-5)


@pytest.mark.parametrize("name", CLASSICAL)
def test_batch_and_engine_paths(name, pair):
    method = create_method(name)
    batch = method.fuse_batch(np.stack([pair[0]] * 2), np.stack([pair[1]] * 2))
    assert batch.shape == (2, *pair[0].shape)
    np.testing.assert_allclose(batch[0], method.fuse(*pair), atol=1e-6)
    colour = np.dstack([pair[1]] * 3)
    assert FusionEngine(name).fuse(pair[0], colour).shape == (*pair[0].shape, 3)


def test_average_and_max_rules(pair):
    ir, vi = pair
    np.testing.assert_allclose(create_method("average").fuse(ir, vi), (ir + vi) / 2, atol=1e-7)
    out = create_method("max").fuse(ir, vi)
    np.testing.assert_array_equal(out, np.maximum(ir, vi))
    assert np.array_equal(out[ir > vi], ir[ir > vi])


def test_laplacian_pyramid_reconstructs_exactly(pair):
    pyr = laplacian_pyramid(pair[1], 3)
    assert [p.shape for p in pyr] == [(60, 80), (30, 40), (15, 20), (8, 10)]
    np.testing.assert_allclose(collapse_pyramid(pyr), pair[1], atol=1e-5)


def test_laplacian_fusion_keeps_the_stronger_detail():
    ir = np.full((64, 64), 0.5, np.float32)
    vi = ir.copy()
    vi[:, 32:] = 0.9  # an edge only the visible image has
    out = create_method("laplacian").fuse(ir, vi)
    # the edge itself keeps (nearly) its full visible height: detail is chosen, not averaged to 0.2
    assert out[32, 32] - out[32, 31] > 0.35


@pytest.fixture
def hot_target_pair():
    """Crafted night scene, (96, 128) float32: IR is a cool flat background with a hot square on the right;
    VI has fine texture on the left half and is flat (nothing visible) where the target is."""
    ir = np.full((96, 128), 0.2, np.float32)
    ir[36:60, 84:108] = 0.95
    texture = np.sign(np.sin(np.arange(128) * 1.3))[None, :] * np.sign(np.sin(np.arange(96) * 1.7))[:, None]
    vi = np.full((96, 128), 0.4, np.float32)
    vi[:, :64] += np.float32(0.15) * texture[:, :64].astype(np.float32)
    return ir, vi


TARGET = (slice(40, 56), slice(88, 104))
TEXTURE = (slice(10, 86), slice(10, 54))


def _high_pass(img):
    return img - cv2.blur(img, (5, 5))


@pytest.mark.parametrize("name", ["gff", "tif"])
def test_two_scale_methods_keep_hot_target_from_ir_and_texture_from_vi(name, hot_target_pair):
    ir, vi = hot_target_pair
    out = create_method(name).fuse(ir, vi)
    average = (ir + vi) / 2
    # the hot target stays well above what plain averaging leaves of it (0.675), close to its IR level
    assert out[TARGET].mean() > average[TARGET].mean() + 0.15
    # the visible texture survives at full contrast (averaging would halve it)
    hp_out, hp_vi = _high_pass(out)[TEXTURE], _high_pass(vi)[TEXTURE]
    assert np.corrcoef(hp_out.ravel(), hp_vi.ravel())[0, 1] > 0.99
    assert hp_out.std() > 0.9 * hp_vi.std()


def test_guided_filter_with_constant_guide_is_a_box_mean_of_box_means(rng):
    src = rng.uniform(0, 1, (40, 50)).astype(np.float32)
    guide = np.full_like(src, 0.3)
    out = guided_filter(guide, src, radius=3, eps=0.01)
    # a = 0 in every window, so q = mean over windows of b = mean(mean(src))
    np.testing.assert_allclose(out, box_mean(box_mean(src, 3), 3), atol=1e-5)


def test_guided_filter_preserves_a_step_edge_that_a_box_blurs():
    step = np.zeros((32, 64), np.float32)
    step[:, 32:] = 1.0
    noisy = step + np.float32(0.05) * np.sin(np.arange(64, dtype=np.float32))[None, :]
    out = guided_filter(step, noisy, radius=4, eps=1e-4)
    np.testing.assert_allclose(out[:, 30:34], step[:, 30:34], atol=0.05)  # edge kept sharp
    assert np.abs(box_mean(noisy, 4)[:, 30:34] - step[:, 30:34]).max() > 0.3  # a box filter smears it


def test_guided_filter_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        guided_filter(np.zeros((4, 4), np.float32), np.zeros((4, 5), np.float32), 1, 0.1)
