"""Standard infrared/visible fusion quality metrics, computed the same way as the field's reference code.

    from engine.metrics import compute_all, load_gray
    scores = compute_all(load_gray("ir.png"), load_gray("vi.png"), load_gray("fused.png"))

Every metric takes 8-bit grayscale images held as (H, W) float64 grey levels in 0..255 (as read with
``cv2.IMREAD_GRAYSCALE``). Higher is better for all of them except Nabf (fusion artifacts).
Command line: ``python -m engine.metrics IR VI FUSED`` prints one JSON object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..errors import FusionInputError
from ..imageio import read_image
from .gradient import average_gradient, nabf, qabf, qabf_perfect_score, spatial_frequency
from .information import entropy, mutual_information
from .statistical import correlation_coefficient, psnr, scd, standard_deviation
from .structural import ssim, vif

#: metric name -> function(ir, vi, fused) -> float, in the fixed reporting order.
METRICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
    "EN": lambda ir, vi, f: entropy(f),
    "SD": lambda ir, vi, f: standard_deviation(f),
    "SF": lambda ir, vi, f: spatial_frequency(f),
    "AG": lambda ir, vi, f: average_gradient(f),
    "MI": mutual_information,
    "SCD": scd,
    "VIF": vif,
    "Qabf": qabf,
    "SSIM": ssim,
    "PSNR": psnr,
    "CC": correlation_coefficient,
    "Nabf": nabf,
}
METRIC_NAMES: tuple[str, ...] = tuple(METRICS)
#: metrics where a smaller value is better
LOWER_IS_BETTER: frozenset[str] = frozenset({"Nabf"})


def as_gray_levels(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Any (H, W) / (H, W, 3) BGR uint8 image -> (H, W) float64 grey levels 0..255 (OpenCV's BGR2GRAY)."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        image = cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2GRAY)
    if image.ndim != 2:
        raise FusionInputError(f"{name} has unsupported shape {image.shape}")
    if image.dtype != np.uint8:
        raise FusionInputError(f"{name} must be 8-bit for the metrics, got {image.dtype}")
    return image.astype(np.float64)


def load_gray(path: str | Path) -> np.ndarray:
    """Read an image as 8-bit grayscale -> (H, W) float64; FusionInputError naming the file on failure."""
    return read_image(path, cv2.IMREAD_GRAYSCALE).astype(np.float64)


def compute_all(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> dict[str, float]:
    """All 12 metrics of one fused image, keys in :data:`METRIC_NAMES` order.

    Args:
        ir, vi, fused: (H, W) float64 grey levels in 0..255, all the same shape.

    Raises:
        FusionInputError: shapes differ, or the images are not 2-D.
    """
    shapes = {"thermal": ir.shape, "visible": vi.shape, "fused": fused.shape}
    for name, shape in shapes.items():
        if len(shape) != 2:
            raise FusionInputError(f"{name} image must be 2-D grayscale, got shape {shape}")
    if len(set(shapes.values())) != 1:
        sizes = ", ".join(f"{name} {s[1]}x{s[0]}" for name, s in shapes.items())
        raise FusionInputError(f"images must have the same size, got {sizes}")
    if min(ir.shape) < 7:
        raise FusionInputError(f"images must be at least 7x7 for the metrics, got {ir.shape[1]}x{ir.shape[0]}")
    ir, vi, fused = (np.asarray(a, dtype=np.float64) for a in (ir, vi, fused))
    return {name: float(fn(ir, vi, fused)) for name, fn in METRICS.items()}


__all__ = [
    "LOWER_IS_BETTER",
    "METRICS",
    "METRIC_NAMES",
    "as_gray_levels",
    "average_gradient",
    "compute_all",
    "correlation_coefficient",
    "entropy",
    "load_gray",
    "mutual_information",
    "nabf",
    "psnr",
    "qabf",
    "qabf_perfect_score",
    "scd",
    "spatial_frequency",
    "ssim",
    "standard_deviation",
    "vif",
]
