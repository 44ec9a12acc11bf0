"""Equation-level tests of the M2PN objective (Eq. 11-17)."""

import numpy as np
import pytest
import torch

from engine.m2pn import M2PN, M2PNConfig
from engine.m2pn.losses import (
    LossConfig, M2PNLoss, decision_map, ir_saliency, modal_contrastive, residual_entropy_weight,
    sobel_magnitude, ssim, structure_loss, weighted_fidelity,
)
from engine.errors import FusionError

TINY = dict(stem_channels=4, dense_growth=4, dense_layers=2, residual_channels=4, decoder_channels=(8, 8, 4),
            prompt_dim=16, graph_heads=2, mgf_heads=2, memory_slots=8)


def hot_target_on_texture(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """IR: cool flat background with a hot square; VIS: fine stripes everywhere, dark where the target is."""
    ir = torch.full((1, 1, size, size), 0.3)
    ir[..., 24:40, 24:40] = 0.95
    x = torch.arange(size, dtype=torch.float32)
    stripes = 0.5 + 0.3 * torch.sin(x * 1.3)[None, :].expand(size, size)
    vi = stripes.clone()[None, None]
    vi[..., 24:40, 24:40] = 0.1
    return ir, vi


def test_saliency_is_high_on_the_hot_target_and_low_on_background():
    ir, _ = hot_target_on_texture()
    s = ir_saliency(ir)
    assert s.shape == ir.shape
    assert float(s[..., 30, 30]) > 0.8 > 0.2 > float(s[..., 5, 5])


def test_residual_entropy_weight_matches_eq12():
    ir, vi = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    p_r, lam = residual_entropy_weight(ir, vi)
    p = torch.sigmoid(ir - vi)
    h = -(p * torch.log(p + 1e-6) + (1 - p) * torch.log(1 - p + 1e-6)).mean(dim=(1, 2, 3))
    assert torch.allclose(p_r, p)
    assert torch.allclose(lam.flatten(), torch.sigmoid(h))


def test_decision_map_prefers_ir_on_hot_target_and_vis_on_texture():
    ir, vi = hot_target_on_texture()
    w_ir = decision_map(ir, vi)
    assert set(torch.unique(w_ir).tolist()) <= {0.0, 1.0}
    assert float(w_ir[..., 26:38, 26:38].mean()) == 1.0     # hot target -> infrared
    assert float(w_ir[..., :16, :16].mean()) == 0.0         # textured cool background -> visible
    # a larger k (Eq. 14) can only widen the infrared region
    assert float(decision_map(ir, vi, k=1.0).sum()) >= float(w_ir.sum())


def test_weighted_fidelity_is_zero_for_the_ideal_decision_fusion():
    ir, vi = hot_target_on_texture()
    w_ir = decision_map(ir, vi)
    ideal = w_ir * ir + (1 - w_ir) * vi
    assert float(weighted_fidelity(ideal, ir, vi, w_ir)) == pytest.approx(0.0, abs=1e-7)
    assert float(weighted_fidelity((ir + vi) / 2, ir, vi, w_ir)) > 0.05


def test_ssim_and_structure_loss():
    x = torch.rand(2, 1, 32, 32)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    assert float(ssim(x, torch.rand(2, 1, 32, 32)).mean()) < 0.2
    # the fused image equal to both sources has no SSIM loss; the gradient term is then zero too
    assert float(structure_loss(x, x, x)) == pytest.approx(0.0, abs=1e-4)


def test_sobel_magnitude_of_a_ramp():
    ramp = torch.arange(16, dtype=torch.float32).repeat(16, 1)[None, None] / 16
    g = sobel_magnitude(ramp)
    # interior: Sobel x response of a unit-per-16 ramp = 8 * (1/16)
    assert torch.allclose(g[..., 2:-2, 2:-2], torch.full_like(g[..., 2:-2, 2:-2], 0.5), atol=1e-5)


def test_modal_contrastive_rewards_separated_modalities():
    model = M2PN(M2PNConfig(**TINY))
    out = model(torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16))
    d = out.g_ir.shape[1]
    e = torch.eye(d)
    out.g_ir, out.f_ir = e[0].repeat(2, 1), e[0].repeat(2, 1)
    out.g_vi, out.f_vi = e[1].repeat(2, 1), e[1].repeat(2, 1)
    assert float(modal_contrastive(out)) == pytest.approx(0.0, abs=1e-6)  # orthogonal across, equal within
    out.g_vi = out.g_ir.clone()
    assert float(modal_contrastive(out)) > 1.0


def test_loss_switches_change_the_objective():
    torch.manual_seed(0)
    model = M2PN(M2PNConfig(**TINY))
    ir, vi = torch.rand(2, 1, 24, 24), torch.rand(2, 1, 24, 24)
    out = model(ir, vi)
    full = M2PNLoss()(out, ir, vi, model)
    assert set(full.terms) >= {"L_w", "L_s", "L_ctr"}
    expected = full.terms["L_w"] + 15 * full.terms["L_s"] + full.terms["L_ctr"]
    assert float(full.total.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    for switch, gone in (("use_ls", "L_s"), ("use_ctr", "L_ctr")):
        ablated = M2PNLoss(LossConfig(**{switch: False}))(out, ir, vi, model)
        assert gone not in ablated.terms
    no_w = M2PNLoss(LossConfig(use_weight_map=False))(out, ir, vi, model)
    plain = (out.fused - ir).abs().mean() + (out.fused - vi).abs().mean()
    assert float(no_w.terms["L_w"].detach()) == pytest.approx(float(plain.detach()), rel=1e-6)


def test_unknown_loss_option_is_a_clear_error():
    with pytest.raises(FusionError, match="unknown loss option"):
        LossConfig.from_dict({"lambda": 3})


def test_residual_prior_changes_the_decision_only_with_nonzero_k():
    # The same IR content in both halves (so S_ir is the same there, up to the border); the visible image
    # is dark on the left and bright on the right, so only the residual M = IR - VIS differs between them.
    g = torch.Generator().manual_seed(3)
    half = torch.rand(1, 1, 48, 40, generator=g)
    ir = torch.cat([half, half], dim=3)
    vi = torch.cat([torch.full_like(half, 0.05), torch.full_like(half, 0.9)], dim=3)
    inner = slice(8, 32)  # away from the seam and the borders, where the local contrast C(IR) is identical

    def halves(k):
        w = decision_map(ir, vi, k=k)
        return w[..., :40][..., inner], w[..., 40:][..., inner]

    # k = 0: E_ir - E_vi = (1 + lambda_c p_R)(1 - 2 S_ir) -> w_ir = [S_ir > 0.5]: the residual cannot matter
    left, right = halves(0.0)
    assert torch.equal(left, right)
    # k < 0: where IR outshines VIS (p_R high) the bar for IR is lower, so the dark half keeps more IR
    left, right = halves(-0.5)
    assert left.sum() > right.sum()
    assert torch.all(left >= right)


def test_multiscale_gradient_term_rewards_large_scale_contrast():
    from engine.m2pn.losses import max_gradient_term

    g = torch.Generator().manual_seed(4)
    texture = 0.05 * torch.rand(1, 1, 64, 64, generator=g)
    square = torch.zeros(1, 1, 64, 64)
    square[..., 16:48, 16:48] = 0.6                       # a large warm object, only in the thermal image
    ir, vi = 0.2 + square, 0.3 + texture
    keeps = 0.25 + texture + square                        # the object at full contrast, the texture kept
    halves = 0.25 + texture + 0.5 * square                 # the same, the object's contrast halved
    # one scale only sees the object's outline; several scales see its whole extent
    single = max_gradient_term(halves, ir, vi, (1,)) - max_gradient_term(keeps, ir, vi, (1,))
    multi = max_gradient_term(halves, ir, vi, (1, 2, 4, 8)) - max_gradient_term(keeps, ir, vi, (1, 2, 4, 8))
    assert single > 0 and multi > single
    # scale 1 alone is the paper's term
    target = torch.maximum(sobel_magnitude(ir), sobel_magnitude(vi))
    assert float(max_gradient_term(keeps, ir, vi, (1,))) == pytest.approx(
        float((sobel_magnitude(keeps) - target).abs().mean()), rel=1e-6)


def test_vector_gradient_term_wants_the_stronger_sources_edge_not_just_its_strength():
    from engine.m2pn.losses import max_gradient_term

    ramp = torch.linspace(0, 1, 48).repeat(48, 1)[None, None]
    ir = 0.2 + 0.6 * ramp                                   # the stronger edge: brightening to the right
    vi = torch.full_like(ir, 0.4)
    flipped = 0.8 - 0.6 * ramp                              # as strong, but darkening to the right
    # a magnitude cannot tell a reversed edge from the real one; the gradient vector can
    assert float(max_gradient_term(flipped, ir, vi, (1,), "magnitude")) == pytest.approx(
        float(max_gradient_term(ir, ir, vi, (1,), "magnitude")), abs=1e-6)
    assert float(max_gradient_term(ir, ir, vi, (1, 2), "vector")) == pytest.approx(0.0, abs=1e-6)
    assert float(max_gradient_term(flipped, ir, vi, (1, 2), "vector")) > 0.01


def test_max_intensity_target_and_loss_options_are_checked():
    from engine.m2pn.losses import intensity_loss

    ir, vi = torch.full((1, 1, 8, 8), 0.7), torch.full((1, 1, 8, 8), 0.2)
    cfg = LossConfig.from_dict({"intensity_target": "max", "gradient_mode": "vector"})
    assert float(intensity_loss(ir, ir, vi, cfg)) == 0.0
    assert float(intensity_loss(vi, ir, vi, cfg)) == pytest.approx(0.5)
    with pytest.raises(FusionError, match="gradient_mode"):
        LossConfig.from_dict({"gradient_mode": "sideways"})
    with pytest.raises(FusionError, match="intensity_target"):
        LossConfig.from_dict({"intensity_target": "min"})
