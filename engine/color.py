"""Colour and dtype handling shared by every fusion method.

All fusion happens on luminance: the visible image is split into Y/Cb/Cr (ITU-R BT.601, full range,
as OpenCV's ``COLOR_BGR2YCrCb``), Y is fused with the thermal image, and the visible Cb/Cr are put back.
Colour images use OpenCV's BGR channel order throughout the project.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import FusionInputError


def to_float01(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Convert uint8 or float input to float32 in [0, 1].

    Args:
        image: (H, W) or (H, W, C) uint8 (0..255) or float (already 0..1).
        name: used in error messages ("thermal image", "visible image", ...).

    Returns:
        float32 array of the same shape, values in [0, 1].

    Raises:
        FusionInputError: empty array, 16-bit data (needs an explicit gain control first), or other dtypes.
    """
    if not isinstance(image, np.ndarray):
        raise FusionInputError(f"{name} must be a NumPy array, got {type(image).__name__}")
    if image.size == 0 or image.ndim < 2 or image.shape[0] == 0 or image.shape[1] == 0:
        raise FusionInputError(f"{name} is empty (shape {image.shape})")
    if image.dtype == np.uint8:
        return image.astype(np.float32) * (1.0 / 255.0)
    if image.dtype in (np.float32, np.float64, np.float16):
        if not np.isfinite(image).all():
            raise FusionInputError(f"{name} contains NaN or infinite values")
        return np.clip(image.astype(np.float32, copy=False), 0.0, 1.0)
    if image.dtype == np.uint16:
        raise FusionInputError(
            f"{name} is 16-bit; normalise raw thermal counts with a gain control "
            "(app.gain, e.g. percentile stretch) before fusing"
        )
    raise FusionInputError(f"{name} has unsupported dtype {image.dtype}; use uint8 or float in [0, 1]")


def to_gray(image: np.ndarray, name: str = "image") -> np.ndarray:
    """(H, W) or (H, W, 1|3|4) image -> (H, W) float32 luminance in [0, 1].

    Thermal images stored as 3 equal channels (TNO) come back unchanged in value.
    """
    img = to_float01(image, name)
    if img.ndim == 2:
        return img
    if img.ndim == 3 and img.shape[2] == 1:
        return img[:, :, 0]
    if img.ndim == 3 and img.shape[2] in (3, 4):
        return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)
    raise FusionInputError(f"{name} has unsupported shape {image.shape}")


def split_luma(visible: np.ndarray, name: str = "visible image") -> tuple[np.ndarray, np.ndarray | None]:
    """Split a visible image into luminance and chrominance.

    Args:
        visible: (H, W) gray or (H, W, 3) BGR, uint8 or float in [0, 1].

    Returns:
        y: (H, W) float32 in [0, 1].
        crcb: (H, W, 2) float32 Cr/Cb planes in [0, 1], or None for a gray input.
    """
    img = to_float01(visible, name)
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        return (img if img.ndim == 2 else img[:, :, 0]), None
    if img.ndim == 3 and img.shape[2] in (3, 4):
        ycrcb = cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_BGR2YCrCb)
        return np.ascontiguousarray(ycrcb[:, :, 0]), np.ascontiguousarray(ycrcb[:, :, 1:])
    raise FusionInputError(f"{name} has unsupported shape {visible.shape}")


def merge_luma(y: np.ndarray, crcb: np.ndarray | None) -> np.ndarray:
    """Inverse of :func:`split_luma`: (H, W) Y and (H, W, 2) CrCb -> (H, W, 3) BGR float32 in [0, 1].

    With ``crcb=None`` the luminance is returned as the (H, W) gray image.
    """
    y = np.clip(y.astype(np.float32, copy=False), 0.0, 1.0)
    if crcb is None:
        return y
    ycrcb = np.dstack([y, crcb])
    return np.clip(cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2BGR), 0.0, 1.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float in [0, 1] -> uint8 with rounding (uint8 passes through)."""
    if image.dtype == np.uint8:
        return image
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def split_luma_uint8(visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fast path of :func:`split_luma` for (H, W, 3|4) uint8 BGR frames (every camera frame).

    The conversion runs on uint8 (about 7x faster than on float32 at 640x480), so the chrominance is kept
    as 8-bit Cr/Cb; after the merge this differs from the float path by at most 2 levels per BGR channel
    (Y and Cr/Cb are each rounded to 8 bits), invisible in a video frame.

    Returns:
        y: (H, W) float32 luminance in [0, 1].
        ycrcb: (H, W, 3) uint8 Y/Cr/Cb planes; :func:`merge_luma_uint8` replaces its Y.
    """
    ycrcb = cv2.cvtColor(np.ascontiguousarray(visible[:, :, :3]), cv2.COLOR_BGR2YCrCb)
    return ycrcb[:, :, 0].astype(np.float32) * (1.0 / 255.0), ycrcb


def merge_luma_uint8(y: np.ndarray, ycrcb: np.ndarray) -> np.ndarray:
    """Inverse of :func:`split_luma_uint8`: fused (H, W) float Y in [0, 1] + uint8 Cr/Cb -> (H, W, 3) uint8 BGR."""
    planes = ycrcb.copy()
    planes[:, :, 0] = to_uint8(np.clip(y, 0.0, 1.0))
    return cv2.cvtColor(planes, cv2.COLOR_YCrCb2BGR)
