"""M2PN training objective (paper sec. 3.4, Eq. 9-17).

``L_total = L_f + L_ctr`` (Eq. 9), ``L_f = L_w + lambda * L_s`` (Eq. 10) with lambda = 15.

Choices the paper leaves open, made here and recorded in the model card:
- ``C(IR)`` of Eq. 11 ("local window convolution for contrast"): the difference between the globally
  normalised IR and its ``contrast_window`` box mean, i.e. how much a pixel stands out of its neighbourhood.
- ``k`` of Eq. 14 defaults to -0.5 and ``sigma`` is read as the standard deviation of ``E_ir - E_vi`` over
  the image. Why not 0: ``E_ir - E_vi = (1 + lambda_c p_R)(1 - 2 S_ir)``, so with k = 0 the decision is
  ``S_ir > 1/2`` whatever the residual, and Eq. 12-13 (the residual prior) could not change training. With
  k < 0 a pixel goes to IR when ``S_ir > 1/2 + |k| sigma / (2 (1 + lambda_c p_R))``: the bar is lower
  where the thermal image outshines the visible one (p_R high), i.e. the residual marks complementary
  thermal content, as the paper intends (tests/test_m2pn_losses.py shows the map changing with p_R).
- Eq. 16 writes ``SSIM(fused, IR) + SSIM(fused, VIS)`` as a quantity to minimise; SSIM is a similarity,
  so the loss uses ``(1 - SSIM)`` for each (Gaussian 11x11 window, sigma 1.5, images in [0, 1]).
  The gradient operator is the Sobel magnitude; norms are means over pixels (scale-free in image size).
- Optionally (``gradient_scales``, ``gradient_weight``; the second run uses scales 1, 2, 4, 8 and weight 2)
  the max-gradient term of Eq. 16 is also taken at coarser scales. Why: optimising the fused image itself
  under the paper's loss on held-out validation pairs gives an optimum that a guided filter still beats on
  6 of the 9 standard metrics (its SD and EN stay low); with the multi-scale term the optimum is higher than
  GFF, choose-max and the Laplacian pyramid on 6 of 9 (docs/model_card.md, "loss study").
- ``L_min(a, b) = relu(cos(a, b))`` (no reward past orthogonality) and ``L_max(a, b) = 1 - cos(a, b)``
  for Eq. 17; ``F_ir / F_vi`` are the flattened encoder features projected to the prompt dimension.
- The memory bank's gate loss (:meth:`DynamicMemoryBank.gate_loss`) is added so that kappa of Eq. 4 learns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import FusionError
from .model import M2PN, M2PNOutput


#: what L_w pulls the fused image towards: the paper's decision map (Eq. 13-15) or the brighter source
INTENSITY_TARGETS = ("decision", "max")
#: how the texture term compares gradients: magnitudes (Eq. 16) or the stronger source's gradient vector
GRADIENT_MODES = ("magnitude", "vector")


@dataclass
class LossConfig:
    """Weights and switches of the objective; the ``use_*`` switches are the paper's loss ablations."""

    fidelity_lambda: float = 15.0   # lambda of Eq. 10
    decision_k: float = -0.5        # k of Eq. 14 (0 would switch the residual prior off, see above)
    contrast_window: int = 11       # C(.) window of Eq. 11
    ssim_window: int = 11
    gradient_scales: tuple[int, ...] = (1,)   # Eq. 16's max-gradient term at these scales (1: the paper)
    gradient_weight: float = 1.0              # weight of that term inside L_s (1: the paper)
    gradient_mode: str = "magnitude"          # "magnitude" (Eq. 16) or "vector" (match the stronger source's gradient)
    gate_weight: float = 1.0        # weight of the kappa gate loss
    intensity_target: str = "decision"   # L_w's target: "decision" (Eq. 15, the paper) or "max" (max(IR, VIS))
    intensity_weight: float = 1.0        # weight of L_w (1: the paper)
    use_ls: bool = True             # Case 6: without L_s
    use_weight_map: bool = True     # Case 7: without w (plain L1 to both sources)
    use_ctr: bool = True            # Case 8: without L_ctr

    @classmethod
    def from_dict(cls, data: dict | None) -> "LossConfig":
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise FusionError(f"unknown loss option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if data.get("gradient_mode", "magnitude") not in GRADIENT_MODES:
            raise FusionError(f"loss.gradient_mode must be one of {', '.join(GRADIENT_MODES)}, "
                              f"not {data['gradient_mode']!r}")
        if data.get("intensity_target", "decision") not in INTENSITY_TARGETS:
            raise FusionError(f"loss.intensity_target must be one of {', '.join(INTENSITY_TARGETS)}, "
                              f"not {data['intensity_target']!r}")
        if "gradient_scales" in data:
            data["gradient_scales"] = tuple(int(v) for v in data["gradient_scales"])
            if not data["gradient_scales"] or min(data["gradient_scales"]) < 1:
                raise FusionError("loss.gradient_scales must be a non-empty list of integers >= 1")
        return cls(**data)


def box_mean(x: Tensor, window: int) -> Tensor:
    """Local mean over a window x window box with reflected borders. (B, 1, H, W) -> same."""
    pad = window // 2
    return F.avg_pool2d(F.pad(x, (pad, pad, pad, pad), mode="reflect"), window, stride=1)


def ir_saliency(ir: Tensor, contrast_window: int = 11) -> Tensor:
    """Dual-level IR saliency ``S_ir = sigma(IR^ + C(IR)) * sigma(IR^)`` (Eq. 11). (B,1,H,W) -> (B,1,H,W) in (0,1)."""
    mean = ir.mean(dim=(2, 3), keepdim=True)
    std = ir.std(dim=(2, 3), keepdim=True).clamp_min(1e-4)
    ir_hat = (ir - mean) / std
    contrast = ir_hat - box_mean(ir_hat, contrast_window)
    return torch.sigmoid(ir_hat + contrast) * torch.sigmoid(ir_hat)


def residual_entropy_weight(ir: Tensor, vi: Tensor, eps: float = 1e-6) -> tuple[Tensor, Tensor]:
    """``p_R = sigma(M)``, ``H_R`` (Eq. 12) per image and ``lambda_c = sigma(H_R)``.

    Returns p_R (B, 1, H, W) and lambda_c (B, 1, 1, 1).
    """
    p_r = torch.sigmoid(ir - vi)
    entropy = -(p_r * torch.log(p_r + eps) + (1 - p_r) * torch.log(1 - p_r + eps)).mean(dim=(1, 2, 3), keepdim=True)
    return p_r, torch.sigmoid(entropy)


def decision_map(ir: Tensor, vi: Tensor, k: float = 0.0, contrast_window: int = 11) -> Tensor:
    """Pixel decision ``w_ir = I(E_ir - E_vi < k * sigma(E_ir - E_vi))`` (Eq. 13-14), a constant (no grad).

    ir, vi: (B, 1, H, W) in [0, 1] -> w_ir (B, 1, H, W) of 0/1 floats; ``w_vi = 1 - w_ir``.
    """
    with torch.no_grad():
        s_ir = ir_saliency(ir, contrast_window)
        p_r, lambda_c = residual_entropy_weight(ir, vi)
        boost = 1 + lambda_c * p_r
        e_ir = -(s_ir * boost)                 # Eq. 13
        e_vi = -((1 - s_ir) * boost)
        diff = e_ir - e_vi
        spread = diff.std(dim=(2, 3), keepdim=True)
        return (diff < k * spread).float()


def sobel_gradient(x: Tensor) -> Tensor:
    """(d/dx, d/dy) with 3x3 Sobel kernels, reflected borders. (B, 1, H, W) -> (B, 2, H, W)."""
    kx = x.new_tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kx, kx.T]).unsqueeze(1)                     # (2, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), kernels)


def sobel_magnitude(x: Tensor) -> Tensor:
    """|grad x| with 3x3 Sobel kernels, reflected borders. (B, 1, H, W) -> (B, 1, H, W)."""
    return (sobel_gradient(x).pow(2).sum(dim=1, keepdim=True) + 1e-12).sqrt()


def _gaussian_taps(size: int, sigma: float, like: Tensor) -> Tensor:
    """(size,) normalised 1-D Gaussian; the 2-D SSIM window is its outer product (separable)."""
    coords = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _local_means(maps: Tensor, window: int, sigma: float) -> Tensor:
    """Gaussian-weighted local means of every channel, reflected borders. (B, K, H, W) -> (B, K, H, W).

    Two 1-D passes over all K maps at once (grouped convs): the same result as the 2-D window at a
    fraction of the cost, which matters since SSIM runs on every training step.
    """
    k = maps.shape[1]
    g = _gaussian_taps(window, sigma, maps)
    pad = window // 2
    x = F.pad(maps, (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, g.view(1, 1, window, 1).expand(k, 1, window, 1), groups=k)
    return F.conv2d(x, g.view(1, 1, 1, window).expand(k, 1, 1, window), groups=k)


def _ssim_from_moments(mu_x: Tensor, mu_y: Tensor, xx: Tensor, yy: Tensor, xy: Tensor) -> Tensor:
    c1, c2 = 0.01**2, 0.03**2
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean(dim=(1, 2, 3))


def ssim(x: Tensor, y: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean SSIM of images in [0, 1] (Gaussian window, C1 = 0.01^2, C2 = 0.03^2). (B,1,H,W) x2 -> (B,)."""
    m = _local_means(torch.cat([x, y, x * x, y * y, x * y], dim=1), window, sigma)
    return _ssim_from_moments(*m.split(1, dim=1))


def ssim_to_both(f: Tensor, a: Tensor, b: Tensor, window: int = 11, sigma: float = 1.5) -> tuple[Tensor, Tensor]:
    """SSIM(f, a) and SSIM(f, b), (B,) each, sharing the statistics of f (one filtering pass for all)."""
    m = _local_means(torch.cat([f, a, b, f * f, a * a, b * b, f * a, f * b], dim=1), window, sigma)
    mf, ma, mb, ff, aa, bb, fa, fb = m.split(1, dim=1)
    return _ssim_from_moments(mf, ma, ff, aa, fa), _ssim_from_moments(mf, mb, ff, bb, fb)


def weighted_fidelity(fused: Tensor, ir: Tensor, vi: Tensor, w_ir: Tensor) -> Tensor:
    """``L_w`` (Eq. 15): L1 to IR where w_ir = 1 and to VIS elsewhere (means over pixels)."""
    return (w_ir * (ir - fused)).abs().mean() + ((1 - w_ir) * (vi - fused)).abs().mean()


def intensity_loss(fused: Tensor, ir: Tensor, vi: Tensor, cfg: LossConfig) -> Tensor:
    """The intensity term L_w under ``cfg``: Eq. 15 with the decision map, L1 to max(IR, VIS) (the target of
    SeAFusion-style losses, which keeps the brighter of hot targets and lit scene), or Case 7's plain L1 to
    both. (B,1,H,W) x3 -> 0-d tensor."""
    if cfg.intensity_target == "max":
        return (fused - torch.maximum(ir, vi)).abs().mean()
    if cfg.use_weight_map:
        return weighted_fidelity(fused, ir, vi, decision_map(ir, vi, cfg.decision_k, cfg.contrast_window))
    return (fused - ir).abs().mean() + (fused - vi).abs().mean()   # Case 7: no decision map


def max_gradient_term(fused: Tensor, ir: Tensor, vi: Tensor, scales: tuple[int, ...] = (1,),
                      mode: str = "magnitude") -> Tensor:
    """``|| |grad f| - max(|grad IR|, |grad VIS|) ||_1`` (Eq. 16's texture term), averaged over scales.

    At scale s the three images are first box-averaged by s x s (``avg_pool2d``), and the term is multiplied
    by s so that an edge counts alike at every scale (pooling divides a step's Sobel response by about s).
    ``scales=(1,)`` is the paper's term. ``mode="vector"`` asks for the stronger source's gradient vector itself
    (direction and sign too), which edge-transfer measures such as Qabf reward and a magnitude cannot pin
    down. Several scales ask the fused image to keep the stronger source's
    structure at coarse scales too, i.e. its large-scale contrast, which the pixel-scale term alone lets the
    SSIM terms average away (docs/model_card.md, "loss study"). (B,1,H,W) x3 -> 0-d tensor.
    """
    total = fused.new_zeros(())
    for s in scales:
        f, a, b = (F.avg_pool2d(t, s) if s > 1 else t for t in (fused, ir, vi))
        if mode == "vector":
            ga, gb = sobel_gradient(a), sobel_gradient(b)
            stronger_a = ga.pow(2).sum(dim=1, keepdim=True) >= gb.pow(2).sum(dim=1, keepdim=True)
            term = (sobel_gradient(f) - torch.where(stronger_a, ga, gb)).abs().sum(dim=1).mean() / 2
        else:
            target = torch.maximum(sobel_magnitude(a), sobel_magnitude(b))
            term = (sobel_magnitude(f) - target).abs().mean()
        total = total + s * term
    return total / len(scales)


def structure_loss(fused: Tensor, ir: Tensor, vi: Tensor, window: int = 11, scales: tuple[int, ...] = (1,),
                   gradient_weight: float = 1.0, gradient_mode: str = "magnitude") -> Tensor:
    """``L_s`` (Eq. 16) = (1 - SSIM(f, IR)) + (1 - SSIM(f, VIS)) + w * max-gradient term (see above)."""
    s_ir, s_vi = ssim_to_both(fused, ir, vi, window)
    ssim_term = (1 - s_ir).mean() + (1 - s_vi).mean()
    return ssim_term + gradient_weight * max_gradient_term(fused, ir, vi, scales, gradient_mode)


def modal_contrastive(out: M2PNOutput) -> Tensor:
    """``L_ctr`` (Eq. 17) on the prompts G and projected features F, (B, D) each -> 0-d tensor."""
    if out.g_ir is None or out.g_vi is None:
        return out.fused.new_zeros(())

    def cos(a: Tensor, b: Tensor) -> Tensor:
        return F.cosine_similarity(a, b, dim=1)

    l_min = lambda a, b: F.relu(cos(a, b)).mean()   # different modalities: push apart
    l_max = lambda a, b: (1 - cos(a, b)).mean()     # same modality: pull together
    return (l_min(out.g_ir, out.g_vi) + l_min(out.g_ir, out.f_vi) + l_min(out.g_vi, out.f_ir)
            + l_max(out.g_ir, out.f_ir) + l_max(out.g_vi, out.f_vi))


@dataclass
class LossTerms:
    """The terms of one step (0-d tensors); ``total`` is what gets back-propagated."""

    total: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)

    def as_floats(self) -> dict[str, float]:
        return {"total": float(self.total.detach()), **{k: float(v.detach()) for k, v in self.terms.items()}}


class M2PNLoss(torch.nn.Module):
    """Computes Eq. 9-17 (+ the kappa gate loss) from the sources and one forward pass of the model."""

    def __init__(self, config: LossConfig | None = None) -> None:
        super().__init__()
        self.config = config or LossConfig()

    def forward(self, out: M2PNOutput, ir: Tensor, vi: Tensor, model: M2PN | None = None) -> LossTerms:
        """ir, vi (B, 1, H, W) in [0, 1]; out from ``model(ir, vi)``."""
        cfg, fused = self.config, out.fused
        l_w = intensity_loss(fused, ir, vi, cfg)
        terms = {"L_w": l_w}
        total = cfg.intensity_weight * l_w
        if cfg.use_ls:
            l_s = structure_loss(fused, ir, vi, cfg.ssim_window, cfg.gradient_scales, cfg.gradient_weight,
                                 cfg.gradient_mode)
            terms["L_s"] = l_s
            total = total + cfg.fidelity_lambda * l_s
        if cfg.use_ctr:
            l_ctr = modal_contrastive(out)
            terms["L_ctr"] = l_ctr
            total = total + l_ctr
        dmb = getattr(model, "dmb", None) if model is not None else None
        if dmb is not None and out.quality is not None:
            l_gate = dmb.gate_loss(out.quality)
            terms["L_gate"] = l_gate
            total = total + cfg.gate_weight * l_gate
        return LossTerms(total=total, terms=terms)
