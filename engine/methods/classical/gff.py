"""Guided filtering based fusion, GFF (Li, Kang and Hu, "Image Fusion With Guided Filtering",
IEEE Trans. Image Process. 22(7), 2013).

1. Two-scale decomposition: base B_n = I_n * Z (31x31 mean filter), detail D_n = I_n - B_n.
2. Saliency S_n = |I_n * L| * g (3x3 Laplacian, then an 11x11 Gaussian with sigma 5).
3. Binary weight maps P_n = 1 where source n is the most salient.
4. Weight refinement with the source as guide: W^B_n = G_{r1,eps1}(P_n, I_n), W^D_n = G_{r2,eps2}(P_n, I_n)
   (r1 = 45, eps1 = 0.3: smooth, spatially consistent base weights; r2 = 7, eps2 = 1e-6: sharp detail
   weights), normalised to sum to 1 per pixel.
5. F = sum W^B_n B_n + sum W^D_n D_n.
"""

from __future__ import annotations

import cv2
import numpy as np

from ...registry import register_method
from ..base import FusionMethod
from .guided_filter import guided_filter


def _normalise(w1: np.ndarray, w2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clip negative guided-filter overshoot and scale so w1 + w2 = 1 (0.5/0.5 where both vanish)."""
    w1 = np.maximum(w1, 0.0)
    w2 = np.maximum(w2, 0.0)
    total = w1 + w2
    safe = total > 1e-6
    n1 = np.where(safe, w1 / np.where(safe, total, 1.0), 0.5).astype(np.float32)
    return n1, (1.0 - n1).astype(np.float32)


@register_method("gff", "guided filtering fusion, two-scale with guided weight maps (Li, Kang & Hu 2013)")
class GuidedFilterFusion(FusionMethod):
    """GFF with the paper's parameters as defaults (all keyword options)."""

    def __init__(self, base_size: int = 31, r1: int = 45, eps1: float = 0.3, r2: int = 7, eps2: float = 1e-6,
                 saliency_radius: int = 5, saliency_sigma: float = 5.0) -> None:
        self.base_size = int(base_size)
        self.r1, self.eps1, self.r2, self.eps2 = int(r1), float(eps1), int(r2), float(eps2)
        self.saliency_radius = int(saliency_radius)
        self.saliency_sigma = float(saliency_sigma)

    def saliency(self, image: np.ndarray) -> np.ndarray:
        """(H, W) float32 -> (H, W) float32 local contrast |Laplacian| smoothed by a Gaussian."""
        lap = np.abs(cv2.Laplacian(image, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT))
        k = 2 * self.saliency_radius + 1
        return cv2.GaussianBlur(lap, (k, k), self.saliency_sigma, borderType=cv2.BORDER_REFLECT)

    def fuse(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """(H, W) float32 IR and VI in [0, 1] -> (H, W) float32 fused in [0, 1]."""
        ir = ir.astype(np.float32, copy=False)
        vi = vi.astype(np.float32, copy=False)
        k = (self.base_size, self.base_size)
        base_ir = cv2.blur(ir, k, borderType=cv2.BORDER_REFLECT)
        base_vi = cv2.blur(vi, k, borderType=cv2.BORDER_REFLECT)
        p_ir = (self.saliency(ir) >= self.saliency(vi)).astype(np.float32)
        p_vi = 1.0 - p_ir
        wb_ir, wb_vi = _normalise(guided_filter(ir, p_ir, self.r1, self.eps1),
                                  guided_filter(vi, p_vi, self.r1, self.eps1))
        wd_ir, wd_vi = _normalise(guided_filter(ir, p_ir, self.r2, self.eps2),
                                  guided_filter(vi, p_vi, self.r2, self.eps2))
        fused = wb_ir * base_ir + wb_vi * base_vi + wd_ir * (ir - base_ir) + wd_vi * (vi - base_vi)
        return np.clip(fused, 0.0, 1.0)
