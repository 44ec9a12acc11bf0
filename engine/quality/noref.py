"""No-reference quality evaluator for the memory bank (the default; CLIP needs weights we cannot download).

FROZEN FORMULA (version ``noref-v1``): the committed M2PN weights were trained with exactly this score.
Change it only under a new version name, and retrain.

The paper's CLIP prompts (appendix A.2) praise texture, contrast, brightness and clarity and blame
blur, noise, artifacts and poor exposure. This evaluator scores the same attributes directly::

    Q = sigmoid( log(std / 0.10)                    contrast: global standard deviation
               + log(grad / 0.155)                  detail: mean Sobel gradient magnitude
               + 0.5 * (H - 0.70) / 0.10            information: soft 32-bin histogram entropy / log 32
               - 0.5 * ((mean - 0.5) / 0.25)^2      exposure: penalises dark or washed-out images
               - max(0, r - 0.25) / 0.10 )          noise: r = mean |Laplacian| / mean gradient, which is
                                                    ~0.19 on natural images and ~0.7 on noisy ones

The reference values are the medians, on 512 random 128x128 RoadScene patches, of the plain average of
IR and VIS, so an average fusion scores about 0.5; the max fusion scores ~0.64, a 5x5 box-blurred
average ~0.32, the average with Gaussian noise (sigma 0.08) < 0.05.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import QualityEvaluator

_LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


class NoReferenceQualityEvaluator(QualityEvaluator):
    """Deterministic, parameter-free score. fused (B, 1, H, W) in [0, 1] -> (B,) in (0, 1)."""

    name = "noref"
    version = "noref-v1"

    def __init__(self, bins: int = 32) -> None:
        super().__init__()
        self.bins = bins
        self.register_buffer("centers", (torch.arange(bins) + 0.5) / bins, persistent=False)

    @torch.no_grad()
    def terms(self, fused: Tensor) -> dict[str, Tensor]:
        """The raw attributes, each (B,): std, grad, entropy, mean, noise ratio."""
        x = fused.float()
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        sobel = torch.stack([_SOBEL_X, _SOBEL_X.T]).unsqueeze(1).to(x)
        grad = (F.conv2d(padded, sobel).pow(2).sum(1) + 1e-12).sqrt().mean(dim=(1, 2))
        lap = F.conv2d(padded, _LAPLACE[None, None].to(x)).abs().mean(dim=(1, 2, 3))
        # soft histogram: Gaussian votes of width half a bin, so the entropy is smooth in the pixel values
        votes = torch.exp(-((x.flatten(1)[:, :, None] - self.centers) ** 2) / (2 * (0.5 / self.bins) ** 2))
        p = votes.sum(1)
        p = p / p.sum(1, keepdim=True)
        entropy = -(p * torch.log(p + 1e-12)).sum(1) / math.log(self.bins)
        return {"std": x.std(dim=(1, 2, 3)), "grad": grad, "entropy": entropy,
                "mean": x.mean(dim=(1, 2, 3)), "noise": lap / (grad + 1e-3)}

    @torch.no_grad()
    def forward(self, fused: Tensor) -> Tensor:
        t = self.terms(fused)
        logit = (torch.log(t["std"].clamp_min(1e-4) / 0.10)
                 + torch.log(t["grad"].clamp_min(1e-4) / 0.155)
                 + 0.5 * (t["entropy"] - 0.70) / 0.10
                 - 0.5 * ((t["mean"] - 0.5) / 0.25) ** 2
                 - F.relu(t["noise"] - 0.25) / 0.10)
        return torch.sigmoid(logit)
