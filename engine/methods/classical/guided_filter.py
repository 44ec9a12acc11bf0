"""The guided filter (He, Sun and Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013), built from box filters.

Edge-preserving smoothing in O(1) per pixel whatever the radius: the output is locally a linear
transform of the guide, q = a * I + b, so it keeps the guide's edges while averaging ``src``. Used by
GFF here and reusable by the real-time methods.
"""

from __future__ import annotations

import cv2
import numpy as np


def box_mean(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1) x (2r+1) window around each pixel (mirrored borders).

    Args:
        image: (H, W) float32/float64.
        radius: r >= 0.

    Returns:
        (H, W) array of the same dtype.
    """
    k = 2 * int(radius) + 1
    return cv2.boxFilter(image, -1, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Filter ``src`` with the gray-scale guided filter steered by ``guide``.

    Per window w_k: a_k = cov_w(I, p) / (var_w(I) + eps), b_k = mean_w(p) - a_k mean_w(I), and the output
    q = mean(a) * I + mean(b) averages the coefficients of all windows covering a pixel. Where the guide
    is flat (var << eps) a -> 0 and q is a box mean of box means of ``src``; across strong guide edges
    (var >> eps) q follows the guide.

    Args:
        guide: (H, W) float32 guide image I, typically in [0, 1].
        src: (H, W) float32 image p to filter, same shape.
        radius: window radius r (window (2r+1)^2).
        eps: regularisation; larger smooths more (compare with the guide's local variance).

    Returns:
        (H, W) float32 filtered image.
    """
    if guide.shape != src.shape:
        raise ValueError(f"guide {guide.shape} and src {src.shape} must have the same shape")
    guide = guide.astype(np.float32, copy=False)
    src = src.astype(np.float32, copy=False)
    mean_i = box_mean(guide, radius)
    mean_p = box_mean(src, radius)
    var_i = box_mean(guide * guide, radius) - mean_i * mean_i
    cov_ip = box_mean(guide * src, radius) - mean_i * mean_p
    a = cov_ip / (np.maximum(var_i, 0.0) + np.float32(eps))
    b = mean_p - a * mean_i
    return box_mean(a, radius) * guide + box_mean(b, radius)
