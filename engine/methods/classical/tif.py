"""Two-scale image fusion with visual saliency, TIF (Bavirisetti and Dhuli, "Two-scale image fusion of
visible and infrared images using saliency detection", Infrared Physics & Technology 76, 2016).

1. Two-scale decomposition with a 35x35 mean filter: base B_n = I_n * mu, detail D_n = I_n - B_n.
2. Visual saliency xi_n = |I_n^mu - I_n^eta|: the distance between the mean-filtered image (35x35) and
   the 3x3 median-filtered image, large on small salient structures and edges.
3. Detail weights psi_1 = xi_1 / (xi_1 + xi_2), psi_2 = 1 - psi_1; bases are averaged.
4. F = (B_1 + B_2) / 2 + psi_1 D_1 + psi_2 D_2.
"""

from __future__ import annotations

import cv2
import numpy as np

from ...registry import register_method
from ..base import FusionMethod


@register_method("tif", "two-scale fusion with mean/median visual saliency (Bavirisetti & Dhuli 2016)")
class TwoScaleSaliencyFusion(FusionMethod):
    """TIF. Options: ``mean_size`` (35, the decomposition and saliency mean filter), ``median_size`` (3)."""

    def __init__(self, mean_size: int = 35, median_size: int = 3) -> None:
        if median_size not in (3, 5):
            raise ValueError("median_size must be 3 or 5 (OpenCV's float median filter)")
        self.mean_size = int(mean_size)
        self.median_size = int(median_size)

    def fuse(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """(H, W) float32 IR and VI in [0, 1] -> (H, W) float32 fused in [0, 1]."""
        k = (self.mean_size, self.mean_size)
        bases, details, saliencies = [], [], []
        for img in (ir.astype(np.float32, copy=False), vi.astype(np.float32, copy=False)):
            base = cv2.blur(img, k, borderType=cv2.BORDER_REFLECT)
            bases.append(base)
            details.append(img - base)
            saliencies.append(np.abs(base - cv2.medianBlur(img, self.median_size)))
        total = saliencies[0] + saliencies[1]
        psi_ir = np.divide(saliencies[0], total, out=np.full_like(total, 0.5), where=total > 1e-12)
        fused = (bases[0] + bases[1]) * 0.5 + psi_ir * details[0] + (1.0 - psi_ir) * details[1]
        return np.clip(fused, 0.0, 1.0).astype(np.float32, copy=False)
