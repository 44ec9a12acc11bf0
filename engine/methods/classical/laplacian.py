"""Laplacian-pyramid fusion (Burt and Adelson, "The Laplacian pyramid as a compact image code",
IEEE Trans. Commun. 1983; applied to fusion by Burt and Adelson 1985 and Toet 1989).

Each source is split into band-pass detail levels and a low-pass base; the fused pyramid takes, per
pixel and level, the detail coefficient of larger magnitude (the more salient edge), averages the bases,
and is collapsed back into an image.
"""

from __future__ import annotations

import cv2
import numpy as np

from ...registry import register_method
from ..base import FusionMethod


def laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """(H, W) float32 -> [L_0 (H, W), L_1 (H/2, W/2), ..., base (H/2^levels, W/2^levels)].

    L_k = G_k - expand(G_{k+1}) with 5x5 Gaussian reduce/expand (cv2.pyrDown / pyrUp); the last entry is
    the Gaussian level G_levels itself.
    """
    pyramid = []
    current = image.astype(np.float32, copy=False)
    for _ in range(levels):
        down = cv2.pyrDown(current)
        up = cv2.pyrUp(down, dstsize=(current.shape[1], current.shape[0]))
        pyramid.append(current - up)
        current = down
    pyramid.append(current)
    return pyramid


def collapse_pyramid(pyramid: list[np.ndarray]) -> np.ndarray:
    """Inverse of :func:`laplacian_pyramid`: exact reconstruction up to float rounding."""
    current = pyramid[-1]
    for detail in reversed(pyramid[:-1]):
        current = cv2.pyrUp(current, dstsize=(detail.shape[1], detail.shape[0])) + detail
    return current


def usable_levels(shape: tuple[int, int], wanted: int, min_size: int = 8) -> int:
    """At most ``wanted`` levels, fewer when the base would get smaller than ``min_size`` pixels."""
    levels = 0
    h, w = shape
    while levels < wanted and min(h, w) // 2 >= min_size:
        h, w = (h + 1) // 2, (w + 1) // 2
        levels += 1
    return levels


@register_method("laplacian", "Laplacian pyramid: max-abs detail, averaged base (Burt & Adelson)")
class LaplacianPyramidFusion(FusionMethod):
    """Laplacian-pyramid fusion with the choose-max-absolute rule on the detail levels.

    Args:
        levels: number of detail levels (fewer on small images).
    """

    def __init__(self, levels: int = 4) -> None:
        if levels < 1:
            raise ValueError("levels must be at least 1")
        self.levels = int(levels)

    def fuse(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """(H, W) float32 IR and VI in [0, 1] -> (H, W) float32 fused in [0, 1]."""
        levels = usable_levels(ir.shape, self.levels)
        pyr_ir = laplacian_pyramid(ir, levels)
        pyr_vi = laplacian_pyramid(vi, levels)
        fused = [np.where(np.abs(a) >= np.abs(b), a, b) for a, b in zip(pyr_ir[:-1], pyr_vi[:-1])]
        fused.append((pyr_ir[-1] + pyr_vi[-1]) * np.float32(0.5))
        return np.clip(collapse_pyramid(fused), 0.0, 1.0)
