"""Automatic thermal -> colour alignment with no calibration target: the plain fit.

``auto_align`` fits (see :mod:`calibration.orientation_fit`: gradient orientation correlation, coarse
search over scale x rotation x shift, then affine refinement coarse to fine) and returns the result
without judging it. ``python -m calibration auto`` uses :func:`calibration.auto_verified.auto_calibrate`,
which fits the same way and refuses what does not pass its checks.

Thermal and visible intensities do not correlate (a warm dark coat is bright in thermal), but their
edges mostly coincide and so do the edges' orientations, up to the sign of the contrast.
"""

from __future__ import annotations

import numpy as np

from .errors import CalibrationError
from .orientation_fit import OrientationFit, fit_orientation
from .structure import empty_border, to_gray32

MIN_SIZE = 48
AutoAlignResult = OrientationFit  # the name this package exported before the orientation fit


def gray_frames(images, what: str) -> list[np.ndarray]:
    """One image or a sequence of images -> list of (H, W) float32 gray frames of one size."""
    if isinstance(images, np.ndarray):
        images = [images]
    frames = [to_gray32(f) for f in images]
    if not frames:
        raise CalibrationError(f"no {what} frames given")
    if any(f.shape != frames[0].shape for f in frames):
        raise CalibrationError(f"the {what} frames differ in size")
    if min(frames[0].shape) < MIN_SIZE:
        raise CalibrationError(f"images too small for automatic alignment (need at least {MIN_SIZE} px)")
    return frames


def content_masks(ir_frames, rgb_frames) -> tuple[np.ndarray, np.ndarray]:
    """(thermal, colour) uint8 masks of content: pixels on an empty border in every frame are left out."""
    ir_valid = np.maximum.reduce([empty_border(f) for f in ir_frames])
    rgb_valid = np.maximum.reduce([empty_border(f) for f in rgb_frames])
    return ir_valid, rgb_valid


def prepare_frames(ir, rgb, ir_mask: np.ndarray | None = None, rgb_mask: np.ndarray | None = None):
    """Gray frames and content masks for a fit -> (ir_frames, rgb_frames, ir_valid, rgb_valid).

    ``ir``/``rgb``: an image each or equally long lists of frames; the masks (non-zero = use) are combined
    with the automatically found empty borders.
    """
    ir_frames, rgb_frames = gray_frames(ir, "thermal"), gray_frames(rgb, "colour")
    if len(ir_frames) != len(rgb_frames):
        raise CalibrationError(f"{len(ir_frames)} thermal frames but {len(rgb_frames)} colour frames")
    ir_valid, rgb_valid = content_masks(ir_frames, rgb_frames)
    for name, mask, frame in (("ir_mask", ir_mask, ir_frames[0]), ("rgb_mask", rgb_mask, rgb_frames[0])):
        if mask is not None and mask.shape[:2] != frame.shape:
            raise CalibrationError(f"{name} is {mask.shape[1]}x{mask.shape[0]}, the image is "
                                   f"{frame.shape[1]}x{frame.shape[0]}")
    if ir_mask is not None:
        ir_valid = np.where(ir_mask > 0, ir_valid, 0).astype(np.uint8)
    if rgb_mask is not None:
        rgb_valid = np.where(rgb_mask > 0, rgb_valid, 0).astype(np.uint8)
    return ir_frames, rgb_frames, ir_valid, rgb_valid


def auto_align(ir, rgb, ir_mask: np.ndarray | None = None, rgb_mask: np.ndarray | None = None,
               motion: str = "affine") -> OrientationFit:
    """The thermal -> colour homography of one image pair, or of many frames of a fixed rig, unchecked.

    Args:
        ir: (Hi, Wi) or (Hi, Wi, C) thermal image (any dtype), or a list of such frames.
        rgb: (Hc, Wc, 3) or (Hc, Wc) colour image, or a list of frames taken at the same moments.
        ir_mask, rgb_mask: optional masks of usable pixels (non-zero = use), combined with the
            automatically found empty borders: a burnt-in logo, the border of a synthetically warped image.
        motion: "affine" or "homography" (finest level).
    Returns an :class:`OrientationFit` (``homography`` maps thermal pixels to colour pixels).
    """
    ir_frames, rgb_frames, ir_valid, rgb_valid = prepare_frames(ir, rgb, ir_mask, rgb_mask)
    return fit_orientation(ir_frames, rgb_frames, ir_valid, rgb_valid, motion=motion)
