"""Pixel-wise baselines: the average and the choose-max rules (the classical reference points of
pixel-level fusion, e.g. Piella, "A general framework for multiresolution image fusion", Inf. Fusion 2003)."""

from __future__ import annotations

import numpy as np

from ...registry import register_method
from ..base import FusionMethod


@register_method("average", "pixel-wise mean of thermal and visible luminance")
class AverageFusion(FusionMethod):
    """F = (IR + VI) / 2: keeps both sources but halves the contrast of whatever only one of them shows."""

    def fuse(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """(H, W) float32 IR and VI in [0, 1] -> (H, W) float32 mean."""
        return ((ir.astype(np.float32, copy=False) + vi) * np.float32(0.5)).astype(np.float32, copy=False)

    def fuse_batch(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        return self.fuse(ir, vi)  # elementwise: the whole (B, H, W) batch at once


@register_method("max", "pixel-wise maximum (choose-max): the brighter source wins")
class MaxFusion(FusionMethod):
    """F = max(IR, VI): hot targets (bright in IR) stand out, but dark visible detail is lost."""

    def fuse(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """(H, W) float32 IR and VI in [0, 1] -> (H, W) float32 maximum."""
        return np.maximum(ir, vi).astype(np.float32, copy=False)

    def fuse_batch(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        return self.fuse(ir, vi)
