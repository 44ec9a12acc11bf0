"""No-reference quality evaluator for the memory bank (the default; CLIP needs weights we cannot download).

FROZEN FORMULA (version ``noref-v1``): the committed M2PN weights were trained with exactly this score.
Change it only under a new version name, and retrain.

The paper's CLIP prompts (appendix A.2) praise texture, contrast, brightness and clarity and blame
blur, noise, artifacts and poor exposure. This evaluator scores the same attributes directly::

    Q = sigmoid( log(std / 0.10)                    contrast: global standard deviation
               + log(grad / 0.155)                  detail: mean Sobel gradient magnitude
               + 0.5 * (H - 0.70) / 0.10            information: soft 32-bin histogram entropy / log 32
               - 0.5 * ((mean - 0.5) / 0.25)^2      exposure: penalises dark or washed-out images
               - max(0, r - 0.25) / 0.10 )          noise: r = mean |Laplacian| / (mean gradient + 1e-3),
                                                    ~0.19 on natural images and >0.5 on noisy ones

The reference values are the medians, on 512 random 128x128 RoadScene patches, of the plain average of
IR and VIS, so an average fusion scores about 0.5; the max fusion scores ~0.62, a 5x5 box-blurred
average ~0.31, the average with Gaussian noise (sigma 0.08) ~0.04 (``python -m engine.quality.calibrate``
reproduces these numbers and plots the distributions).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import QualityEvaluator, check_fused_batch

_LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])

# Soft-histogram votes reach this many bins either side of a pixel's own bin. A vote 3.5 bins away
# weighs exp(-2 * 3.5^2) ~ 2e-11 of the nearest one, so the result equals the all-bins sum in float32
# while costing 7 instead of `bins` exponentials per pixel (about 25x faster for 32 bins).
_VOTE_RADIUS = 3


def soft_histogram(x: Tensor, bins: int) -> Tensor:
    """Gaussian-vote histogram: x (B, N) in [0, 1] -> (B, bins) vote mass (each pixel sums to ~1).

    Bin k has centre (k + 0.5) / bins; a pixel votes exp(-d^2 / (2 s^2)) with d its distance to a centre
    and s half a bin width, so the histogram (and its entropy) changes smoothly with the pixel values.
    """
    batch = x.shape[0]
    u = x * bins                               # position in bin units; bin k covers [k, k+1)
    k0 = u.floor()
    offset = u - k0 - 0.5                       # distance to the own bin's centre, in bins
    k0 = k0.long()
    row = (torch.arange(batch, device=x.device) * bins)[:, None]
    hist = torch.zeros(batch * bins, dtype=x.dtype, device=x.device)
    for step in range(-_VOTE_RADIUS, _VOTE_RADIUS + 1):
        target = k0 + step
        inside = (target >= 0) & (target < bins)  # votes for centres that do not exist are dropped
        d = offset - step                       # distance to the centre of bin k0 + step; 1/(2 s^2) = 2
        votes = torch.exp(-2.0 * d * d) * inside
        hist.index_add_(0, (target.clamp(0, bins - 1) + row).flatten(), votes.flatten())
    return hist.view(batch, bins)


class NoReferenceQualityEvaluator(QualityEvaluator):
    """Deterministic, parameter-free score. fused (B, 1, H, W) in [0, 1] -> (B,) in (0, 1).

    See the module docstring for the formula and docs/quality_evaluator.md for its calibration.
    """

    name = "noref"
    version = "noref-v1"

    def __init__(self, bins: int = 32) -> None:
        super().__init__()
        self.bins = bins

    @torch.no_grad()
    def terms(self, fused: Tensor) -> dict[str, Tensor]:
        """The raw attributes, each (B,): std, grad, entropy, mean, noise ratio."""
        check_fused_batch(fused)
        x = fused.float()
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        sobel = torch.stack([_SOBEL_X, _SOBEL_X.T]).unsqueeze(1).to(x)
        grad = (F.conv2d(padded, sobel).pow(2).sum(1) + 1e-12).sqrt().mean(dim=(1, 2))
        lap = F.conv2d(padded, _LAPLACE[None, None].to(x)).abs().mean(dim=(1, 2, 3))
        p = soft_histogram(x.flatten(1), self.bins)
        p = p / p.sum(1, keepdim=True)
        entropy = -(p * torch.log(p + 1e-12)).sum(1) / math.log(self.bins)
        return {"std": x.std(dim=(1, 2, 3)), "grad": grad, "entropy": entropy,
                "mean": x.mean(dim=(1, 2, 3)), "noise": lap / (grad + 1e-3)}

    @torch.no_grad()
    def logit_terms(self, fused: Tensor) -> dict[str, Tensor]:
        """Each term's (B,) contribution to the logit; their sum is the logit of the score."""
        t = self.terms(fused)
        return {
            "contrast": torch.log(t["std"].clamp_min(1e-4) / 0.10),
            "detail": torch.log(t["grad"].clamp_min(1e-4) / 0.155),
            "information": 0.5 * (t["entropy"] - 0.70) / 0.10,
            "exposure": -0.5 * ((t["mean"] - 0.5) / 0.25) ** 2,
            "noise": -F.relu(t["noise"] - 0.25) / 0.10,
        }

    @torch.no_grad()
    def forward(self, fused: Tensor) -> Tensor:
        return torch.sigmoid(sum(self.logit_terms(fused).values()))
