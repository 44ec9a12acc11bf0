"""EGMT training objective (paper sec. III-D, Eq. 9-15).

``L_total = lambda_1 L_fus + lambda_2 L_cla`` (Eq. 9), lambda from learnable w by Eq. 10;
``L_fus = 1 * L_int + 15 * L_edge + 5 * L_ssim`` (Eq. 11-14); ``L_cla`` the focal loss (Eq. 15).

Readings of the paper, recorded in the model card:
- Eq. 13 compares ``nabla I_f`` with ``max(|nabla I_ir|, |nabla I_vis|)``; a signed Laplacian against a
  magnitude cannot match on negative responses, so we compare magnitudes, ``|nabla I_f|`` (as SwinFusion,
  which the paper follows). ``nabla`` is the 3x3 Laplacian, as the paper says.
- Eq. 15's ``(1 - p_hat)^gamma`` is the focal term of Lin et al.: ``(1 - p_t)^gamma`` with ``p_t = p`` for a
  positive label and ``1 - p`` for a negative one. The class-balancing weight is ``1 / (2 r_c)`` for
  positives and ``1 / (2 (1 - r_c))`` for negatives, ``r_c`` the share of training samples with class c
  (inversely proportional to the positive ratio; both halves then carry equal expected weight).
- Eq. 10 has no term that stops ``w`` from moving all weight to the smaller loss; the trainer gives ``w``
  the paper's learning rate (1e-4) in its own group so it drifts slowly (see the model card for where it went).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import FusionError


@dataclass
class EGMTLossConfig:
    alpha_int: float = 1.0      # alpha_1 of Eq. 11
    alpha_edge: float = 15.0    # alpha_2
    alpha_ssim: float = 5.0     # alpha_3
    gamma: float = 2.0          # focal focusing parameter (paper: 2)
    tau: float = 1.0            # temperature of Eq. 10 (paper: 1)
    max_class_weight: float = 50.0  # cap of the class-balancing weight (a class seen once would get 1/(2r))
    learn_task_weights: bool = True

    @classmethod
    def from_dict(cls, data: dict | None) -> "EGMTLossConfig":
        data = dict(data or {})
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise FusionError(f"unknown EGMT loss option(s): {', '.join(unknown)}")
        return cls(**data)


def laplacian(x: Tensor) -> Tensor:
    """3x3 Laplacian (4-neighbour), reflected borders. (B, 1, H, W) -> (B, 1, H, W)."""
    k = x.new_tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])[None, None]
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), k)


def _gaussian_1d(size: int, sigma: float, like: Tensor) -> Tensor:
    coords = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(x: Tensor, y: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean SSIM of images in [0, 1]: Gaussian window (11, sigma 1.5) applied as two 1-D passes (same values as
    the 2-D window of ``engine.m2pn.losses.ssim``, a fifth of the cost), reflected borders, C1 = 0.01^2,
    C2 = 0.03^2. (B, 1, H, W) x 2 -> (B,)."""
    g = _gaussian_1d(window, sigma, x)
    pad = window // 2
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)                  # (B, 5, H, W), one filtering pass
    stack = F.pad(stack, (pad,) * 4, mode="reflect")
    stack = F.conv2d(stack, g.view(1, 1, 1, -1).expand(5, 1, 1, window), groups=5)
    stack = F.conv2d(stack, g.view(1, 1, -1, 1).expand(5, 1, window, 1), groups=5)
    mu_x, mu_y, xx, yy, xy = stack.unbind(dim=1)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean(dim=(1, 2))


def intensity_loss(fused: Tensor, ir: Tensor, vi: Tensor) -> Tensor:
    """Eq. 12: mean |I_f - max(I_ir, I_vis)|."""
    return (fused - torch.maximum(ir, vi)).abs().mean()


def edge_loss(fused: Tensor, ir: Tensor, vi: Tensor) -> Tensor:
    """Eq. 13: mean | |lap I_f| - max(|lap I_ir|, |lap I_vis|) |."""
    target = torch.maximum(laplacian(ir).abs(), laplacian(vi).abs())
    return (laplacian(fused).abs() - target).abs().mean()


def ssim_loss(fused: Tensor, ir: Tensor, vi: Tensor) -> Tensor:
    """Eq. 14: (1 - SSIM(I_f, I_ir)) + (1 - SSIM(I_f, I_vis))."""
    return (1 - ssim(fused, ir)).mean() + (1 - ssim(fused, vi)).mean()


def class_balance_weights(positive_ratio: Tensor, cap: float = 50.0) -> tuple[Tensor, Tensor]:
    """(K,) share of positives per class -> (alpha_pos, alpha_neg), each (K,): 1/(2r), 1/(2(1-r)), capped."""
    r = positive_ratio.clamp(1e-6, 1 - 1e-6)
    return (0.5 / r).clamp(max=cap), (0.5 / (1 - r)).clamp(max=cap)


def focal_loss(logits: Tensor, targets: Tensor, alpha_pos: Tensor, alpha_neg: Tensor, gamma: float = 2.0) -> Tensor:
    """Eq. 15: mean over the B*K entries of ``alpha * (1 - p_t)^gamma * BCE(p, y)``. logits, targets (B, K)."""
    p = torch.sigmoid(logits)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = torch.where(targets > 0.5, p, 1 - p)
    alpha = torch.where(targets > 0.5, alpha_pos.expand_as(targets), alpha_neg.expand_as(targets))
    return (alpha * (1 - p_t) ** gamma * bce).mean()


class TaskWeights(nn.Module):
    """Eq. 10: ``lambda_i = exp(-w_i / tau) / sum_j exp(-w_j / tau)`` over the two tasks (w starts at 0)."""

    def __init__(self, tau: float = 1.0, learnable: bool = True) -> None:
        super().__init__()
        self.tau = tau
        self.w = nn.Parameter(torch.zeros(2), requires_grad=learnable)

    def forward(self) -> Tensor:
        return torch.softmax(-self.w / self.tau, dim=0)


@dataclass
class LossTerms:
    total: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)


class EGMTLoss(nn.Module):
    """Eq. 9-15 from one forward pass. ``positive_ratio`` (K,) gives the focal loss's class weights."""

    def __init__(self, config: EGMTLossConfig | None = None, positive_ratio: Tensor | None = None) -> None:
        super().__init__()
        self.config = config or EGMTLossConfig()
        self.task_weights = TaskWeights(self.config.tau, self.config.learn_task_weights)
        ratio = positive_ratio if positive_ratio is not None else torch.full((1,), 0.5)
        a_pos, a_neg = class_balance_weights(ratio.float(), self.config.max_class_weight)
        self.register_buffer("alpha_pos", a_pos)
        self.register_buffer("alpha_neg", a_neg)

    def fusion(self, fused: Tensor, ir: Tensor, vi: Tensor) -> dict[str, Tensor]:
        c = self.config
        l_int, l_edge, l_ssim = intensity_loss(fused, ir, vi), edge_loss(fused, ir, vi), ssim_loss(fused, ir, vi)
        return {"L_fus": c.alpha_int * l_int + c.alpha_edge * l_edge + c.alpha_ssim * l_ssim,
                "L_int": l_int, "L_edge": l_edge, "L_ssim": l_ssim}

    def forward(self, fused: Tensor, ir: Tensor, vi: Tensor, logits: Tensor | None = None,
                targets: Tensor | None = None) -> LossTerms:
        terms = self.fusion(fused, ir, vi)
        if logits is None or targets is None:      # "w/o MT": the fusion loss alone
            return LossTerms(total=terms["L_fus"], terms=terms)
        terms["L_cla"] = focal_loss(logits, targets, self.alpha_pos, self.alpha_neg, self.config.gamma)
        lam = self.task_weights()
        terms["lambda_1"], terms["lambda_2"] = lam[0].detach(), lam[1].detach()
        return LossTerms(total=lam[0] * terms["L_fus"] + lam[1] * terms["L_cla"], terms=terms)
