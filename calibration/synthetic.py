"""Known warps for testing registration on real, already-registered image pairs.

Given a registered pair, a new thermal view whose pixel q shows what the old thermal pixel H q showed
is ``ir_new(q) = ir(H q)``; its thermal -> colour homography is then ``B @ H``, where ``B`` is the pair's
own (ideally identity) registration. Pixels of the new view that fall outside the old image are unknown:
they are returned as a mask instead of being invented (a mirrored border would add false structure).
"""

from __future__ import annotations

import cv2
import numpy as np


def similarity_about_center(size: tuple[int, int], scale: float, angle_deg: float,
                            shift: tuple[float, float]) -> np.ndarray:
    """3x3: scale and rotate about the centre of a (w, h) image, then shift by (dx, dy) pixels."""
    w, h = size
    m = np.vstack([cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle_deg, scale), [0.0, 0.0, 1.0]])
    m[0, 2] += shift[0]
    m[1, 2] += shift[1]
    return m


def random_warp(rng: np.random.Generator, size: tuple[int, int], max_shift_frac: float = 0.10,
                max_angle_deg: float = 5.0, scale_range: tuple[float, float] = (0.9, 1.1)) -> tuple[np.ndarray, dict]:
    """A random similarity within the given ranges, and its parameters."""
    w, _ = size
    params = {"scale": float(rng.uniform(*scale_range)), "angle_deg": float(rng.uniform(-max_angle_deg, max_angle_deg)),
              "dx": float(rng.uniform(-max_shift_frac, max_shift_frac) * w),
              "dy": float(rng.uniform(-max_shift_frac, max_shift_frac) * w)}
    return similarity_about_center(size, params["scale"], params["angle_deg"], (params["dx"], params["dy"])), params


def warp_view(image: np.ndarray, h: np.ndarray, size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(new_image, valid_mask) with ``new_image(q) = image(h q)``; mask is uint8 255 where known."""
    w_out, h_out = size or (image.shape[1], image.shape[0])
    flags = cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR
    new = cv2.warpPerspective(image, h, (w_out, h_out), flags=flags, borderMode=cv2.BORDER_CONSTANT)
    ones = np.full(image.shape[:2], 255, np.uint8)
    mask = cv2.warpPerspective(ones, h, (w_out, h_out), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_NEAREST)
    return new, mask


def mask_in_original(mask_new: np.ndarray, h: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
    """The pixels of the original image that the warped view shows (same content for a fair reference)."""
    return cv2.warpPerspective(mask_new, h, original_size, flags=cv2.INTER_NEAREST)
