"""engine.realtime: the two-guide guided upsampling operator and the m2pn_rt method."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engine.errors import FusionInputError
from engine.m2pn import DEFAULT_WEIGHTS, M2PN, M2PNConfig, load_model
from engine.paths import REPO_ROOT
from engine.realtime import fit_two_guide, guided_upsample
from engine.realtime.method import M2PNRealtimeMethod, work_size
from engine.registry import available_methods, create_method

TINY = dict(stem_channels=4, dense_growth=4, dense_layers=1, residual_channels=4, decoder_channels=(8, 8, 4),
            prompt_dim=16, graph_heads=2, mgf_heads=2, memory_slots=8)


def textured(rng, h, w, blur=1.5):
    """(h, w) float32 in [0, 1]: smoothed noise, so the guides have texture and are not collinear."""
    img = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), blur)
    return (img - img.min()) / (img.max() - img.min())


def downsample(x, w, h):
    return cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA)


# ---- the operator ---------------------------------------------------------------------------------------
def test_recovers_an_exact_global_linear_combination(rng):
    ir, vi = textured(rng, 240, 320), textured(rng, 240, 320)
    target_full = 0.3 * ir + 0.6 * vi + 0.05
    ir_l, vi_l = downsample(ir, 80, 60), downsample(vi, 80, 60)
    fused_l = 0.3 * ir_l + 0.6 * vi_l + 0.05  # what a network would output if it mixed globally
    coeffs = fit_two_guide(ir_l, vi_l, fused_l, radius=2, eps=1e-8)
    assert np.allclose(coeffs.a, 0.3, atol=1e-3) and np.allclose(coeffs.b, 0.6, atol=1e-3)
    assert np.allclose(coeffs.c, 0.05, atol=1e-3)
    out = guided_upsample(ir, vi, ir_l, vi_l, fused_l, radius=2, eps=1e-8)
    assert out.shape == (240, 320) and out.dtype == np.float32
    assert np.abs(out - target_full).max() < 2e-3  # full-resolution detail came back from the sources


def test_recovers_a_local_linear_combination(rng):
    h, w = 240, 320
    ir, vi = textured(rng, h, w), textured(rng, h, w)
    # The mix changes smoothly from mostly-visible on the left to mostly-thermal on the right.
    ramp = np.tile(np.linspace(0.1, 0.9, w, dtype=np.float32), (h, 1))
    target_full = ramp * ir + (1.0 - ramp) * vi
    ir_l, vi_l = downsample(ir, 80, 60), downsample(vi, 80, 60)
    ramp_l = downsample(ramp, 80, 60)
    fused_l = ramp_l * ir_l + (1.0 - ramp_l) * vi_l
    out = guided_upsample(ir, vi, ir_l, vi_l, fused_l, radius=3, eps=1e-6)
    inner = (slice(16, -16), slice(16, -16))  # the bilinear extrapolation at the border is cruder
    err = np.abs(out - target_full)[inner]
    assert err.mean() < 0.01 and err.max() < 0.06
    # ... and much closer than simply upsampling the low-resolution result
    naive = cv2.resize(fused_l, (w, h), interpolation=cv2.INTER_LINEAR)
    assert err.mean() < 0.5 * np.abs(naive - target_full)[inner].mean()


def test_identity_target_gives_unit_thermal_weight(rng):
    ir, vi = textured(rng, 60, 80), textured(rng, 60, 80)
    c = fit_two_guide(ir, vi, ir.copy(), radius=2, eps=1e-8)
    assert np.allclose(c.a, 1, atol=1e-2) and np.allclose(c.b, 0, atol=1e-2) and np.allclose(c.c, 0, atol=1e-2)


def test_flat_regions_stay_finite_and_residual_restores_coarse_content(rng):
    flat = np.full((60, 80), 0.5, np.float32)  # zero variance: only eps keeps the 2x2 solve regular
    target = textured(rng, 60, 80)
    out = guided_upsample(np.full((120, 160), 0.5, np.float32), np.full((120, 160), 0.5, np.float32),
                          flat, flat, target, radius=2, eps=1e-4, residual=True)
    assert np.isfinite(out).all()
    # guides carry nothing, so the residual path must bring the target's coarse content back
    back = downsample(out, 80, 60)
    assert np.corrcoef(back.ravel(), target.ravel())[0, 1] > 0.9


def test_operator_rejects_bad_arguments(rng):
    a = textured(rng, 20, 20)
    with pytest.raises(FusionInputError, match="same shape|one shape"):
        fit_two_guide(a, a[:10], a)
    with pytest.raises(FusionInputError, match="radius"):
        fit_two_guide(a, a, a, radius=0)
    with pytest.raises(FusionInputError, match="eps"):
        fit_two_guide(a, a, a, eps=0)


def test_work_size():
    assert work_size(480, 640, 0.25) == (120, 160)
    assert work_size(720, 1280, 0.25) == (180, 320)
    assert min(work_size(120, 160, 0.125)) >= 32  # never below the minimum working side
    assert work_size(20, 30, 0.25) == (20, 30)     # tiny frames run at full size
    assert work_size(480, 640, 0.25, max_pixels=120 * 90) == (90, 120)   # the pixel budget wins
    assert work_size(720, 1280, 0.25, max_pixels=120 * 90) == (78, 139)  # same budget, same aspect
    assert work_size(240, 320, 0.25, max_pixels=120 * 90) == (60, 80)    # budget not reached: scale wins
    with pytest.raises(FusionInputError, match="scale"):
        work_size(480, 640, 0.0)


# ---- the method -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return M2PN(M2PNConfig(**TINY)).eval()


def test_m2pn_rt_is_registered_and_fuses_batches(tiny_model, rng, tmp_path):
    assert "m2pn_rt" in available_methods()
    method = create_method("m2pn_rt", model=tiny_model, scale=0.25, cache_dir=tmp_path)
    assert isinstance(method, M2PNRealtimeMethod) and not method.produces_color
    assert method.backend.startswith("cpu (")
    ir = np.stack([textured(rng, 120, 160) for _ in range(2)])
    vi = np.stack([textured(rng, 120, 160) for _ in range(2)])
    out = method.fuse_batch(ir, vi)
    assert out.shape == (2, 120, 160) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    single = method.fuse(ir[1], vi[1])
    assert np.allclose(single, out[1], atol=1e-5)
    with pytest.raises(FusionInputError, match="one shape"):
        method.fuse_batch(ir, vi[:, :100])
    method.close()
    with pytest.raises(FusionInputError, match="closed"):
        method.fuse(ir[0], vi[0])


def test_m2pn_rt_keeps_the_network_frozen(tiny_model, rng, tmp_path):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    method = create_method("m2pn_rt", model=tiny_model, cache_dir=tmp_path, cpu_runtime="torch")
    assert not method.model.training
    assert all(not p.requires_grad for p in method.model.parameters())
    ir, vi = textured(rng, 96, 128), textured(rng, 96, 128)
    first = method.fuse(ir, vi)
    second = method.fuse(ir, vi)
    assert np.array_equal(first, second)  # no state carried between frames (memory bank read-only)
    after = tiny_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_m2pn_rt_scale_one_is_the_plain_network(tiny_model, rng, tmp_path):
    method = create_method("m2pn_rt", model=tiny_model, scale=1.0, max_work_pixels=None,
                           cache_dir=tmp_path)
    ir, vi = textured(rng, 48, 64), textured(rng, 48, 64)
    with torch.inference_mode():
        expected = tiny_model(torch.from_numpy(ir)[None, None], torch.from_numpy(vi)[None, None]).fused[0, 0].numpy()
    assert np.abs(method.fuse(ir, vi) - expected).max() < 1e-4


def _trained_weights() -> Path:
    for path in (DEFAULT_WEIGHTS, REPO_ROOT / "runs" / "m2pn_cpu" / "last.pt", REPO_ROOT / "runs" / "m2pn" / "last.pt"):
        if path.is_file():
            return path
    pytest.skip("no trained M2PN weights (engine/weights/m2pn.pt or a runs/*/last.pt checkpoint) yet")


def test_m2pn_rt_agrees_with_the_full_network_on_a_tno_pair(tno_dir, tmp_path):
    weights = _trained_weights()
    model, _ = load_model(weights)
    ir = cv2.imread(str(tno_dir / "ir" / "01.png"), cv2.IMREAD_GRAYSCALE)
    vi = cv2.imread(str(tno_dir / "vi" / "01.png"), cv2.IMREAD_GRAYSCALE)
    # reduced size keeps the full-resolution reference affordable in a test (~0.4 s)
    ir = cv2.resize(ir, (256, 192), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    vi = cv2.resize(vi, (256, 192), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    with torch.inference_mode():
        full = model(torch.from_numpy(ir)[None, None], torch.from_numpy(vi)[None, None]).fused[0, 0].numpy()
    rt = create_method("m2pn_rt", model=model, scale=0.5, cache_dir=tmp_path).fuse(ir, vi)
    err = np.abs(rt - full)
    corr = np.corrcoef(rt.ravel(), full.ravel())[0, 1]
    assert err.mean() < 0.03, f"mean |rt - full| = {err.mean():.4f} with {weights}"
    assert corr > 0.95, f"correlation {corr:.3f} with {weights}"


# ---- streaming (video mode) -------------------------------------------------------------------------------
def test_streaming_applies_the_previous_frames_coefficients_to_the_current_frame(rng):
    torch.manual_seed(0)
    model = M2PN(M2PNConfig(**TINY)).eval()
    plain = M2PNRealtimeMethod(model=model, backend="cpu", cpu_runtime="torch", max_work_pixels=40 * 30)
    streaming = M2PNRealtimeMethod(model=model, backend="cpu", cpu_runtime="torch", max_work_pixels=40 * 30,
                                   streaming=True)
    frames = [(textured(rng, 120, 160), textured(rng, 120, 160)) for _ in range(3)]
    outs = [streaming.fuse(ir, vi) for ir, vi in frames]
    assert np.allclose(outs[0], plain.fuse(*frames[0]), atol=1e-6)  # first frame: its own coefficients
    from engine.realtime.method import reduce_area, work_size as ws
    h, w = ws(120, 160, plain.scale, plain.max_work_pixels)
    for t in (1, 2):
        ir_l, vi_l = (reduce_area(x, h, w)[None] for x in frames[t - 1])
        expected = np.clip(plain._coefficients(ir_l, vi_l).apply_upsampled(*frames[t]), 0, 1)
        assert np.allclose(outs[t], expected, atol=1e-6)
    streaming.reset_stream()  # after a seek: the next frame uses its own coefficients again
    assert np.allclose(streaming.fuse(*frames[0]), plain.fuse(*frames[0]), atol=1e-6)
    streaming.close()
    with pytest.raises(FusionInputError, match="closed"):
        streaming.fuse(*frames[0])
