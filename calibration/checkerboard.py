"""Homography from a checkerboard seen by both cameras.

A board in thermal shows up only if its squares differ in temperature or emissivity: heated boards
are often brighter where the printed board is dark (inverted), and reflective boards have weak contrast.
So the thermal search tries the image, its inverse, and both after CLAHE. An inverted board can also
be detected starting from another corner, so the corner order of each thermal view is matched to the
colour view by choosing, among the board's symmetries, the one giving an orientation-preserving
mapping with the smallest rotation (the two cameras are mounted side by side, upright).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import cv2
import numpy as np

from .calibration_file import apply_homography
from .errors import CalibrationError
from .points import HomographyFit, fit_homography


def parse_pattern(text: str) -> tuple[int, int]:
    """"9x6" -> (9, 6): inner corners per row and per column."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match:
        raise CalibrationError(f"board pattern must look like COLSxROWS (inner corners), e.g. 9x6; got {text!r}")
    cols, rows = int(match.group(1)), int(match.group(2))
    if cols < 2 or rows < 2:
        raise CalibrationError(f"board pattern needs at least 2x2 inner corners, got {cols}x{rows}")
    return cols, rows


def to_gray8(image: np.ndarray) -> np.ndarray:
    """Any image (8/16-bit, 1/3 channels) -> (H, W) uint8, 16-bit stretched between its 0.5/99.5 percentiles."""
    img = np.asarray(image)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    if img.dtype == np.uint8:
        return img
    lo, hi = np.percentile(img, [0.5, 99.5])
    return np.clip((img.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1e-6)), 0, 255).astype(np.uint8)


def _detect(gray: np.ndarray, pattern: tuple[int, int]) -> np.ndarray | None:
    """(rows*cols, 2) float32 corners, or None."""
    found, corners = cv2.findChessboardCornersSB(gray, pattern, flags=cv2.CALIB_CB_NORMALIZE_IMAGE)
    if found:
        return corners.reshape(-1, 2)
    found, corners = cv2.findChessboardCorners(gray, pattern, flags=cv2.CALIB_CB_ADAPTIVE_THRESH |
                                               cv2.CALIB_CB_NORMALIZE_IMAGE)
    if not found:
        return None
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 0.01)
    return cv2.cornerSubPix(gray, corners, (5, 5), (-1, -1), criteria).reshape(-1, 2)


def find_board(image: np.ndarray, pattern: tuple[int, int], thermal: bool = False) -> tuple[np.ndarray | None, str]:
    """Board corners in ``image`` and which variant found them ("plain", "inverted", "clahe", ...)."""
    gray = to_gray8(image)
    variants = [("plain", gray)]
    if thermal:
        clahe = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(gray)
        variants += [("inverted", 255 - gray), ("clahe", clahe), ("inverted+clahe", 255 - clahe)]
    for name, candidate in variants:
        corners = _detect(candidate, pattern)
        if corners is not None:
            return corners, name
    return None, "not found"


def _grid_orderings(corners: np.ndarray, pattern: tuple[int, int]) -> list[np.ndarray]:
    """The corner list re-ordered by every symmetry of the board grid (4, or 8 for a square grid)."""
    cols, rows = pattern
    grid = corners.reshape(rows, cols, 2)
    out = [grid, grid[::-1, ::-1], grid[::-1, :], grid[:, ::-1]]
    if rows == cols:
        t = grid.transpose(1, 0, 2)
        out += [t, t[::-1, ::-1], t[::-1, :], t[:, ::-1]]
    return [g.reshape(-1, 2) for g in out]


def _rotation_and_orientation(h: np.ndarray, at: np.ndarray) -> tuple[float, float]:
    """(rotation in degrees, Jacobian determinant) of the mapping ``h`` near the point ``at``."""
    p = apply_homography(h, np.array([at, at + [1.0, 0.0], at + [0.0, 1.0]]))
    jac = np.column_stack([p[1] - p[0], p[2] - p[0]])
    return math.degrees(math.atan2(jac[1, 0], jac[0, 0])), float(np.linalg.det(jac))


def match_corner_order(ir_corners: np.ndarray, rgb_corners: np.ndarray, pattern: tuple[int, int]) -> np.ndarray:
    """``ir_corners`` re-ordered so that corner i is the same board corner as ``rgb_corners[i]``."""
    center = ir_corners.mean(axis=0)
    best = None
    for ordering in _grid_orderings(ir_corners, pattern):
        h, _ = cv2.findHomography(ordering.astype(np.float64), rgb_corners.astype(np.float64), 0)
        if h is None:
            continue
        angle, det = _rotation_and_orientation(h, center)
        if det <= 0:  # a mirror image: two upright cameras never see that
            continue
        if best is None or abs(angle) < best[0]:
            best = (abs(angle), ordering)
    if best is None:
        raise CalibrationError("could not match the thermal and colour board corners")
    return best[1]


@dataclass
class BoardCalibration:
    """Result of :func:`calibrate_from_boards`."""

    fit: HomographyFit
    views_used: list[str]
    views_skipped: dict[str, str] = field(default_factory=dict)  # name -> why
    thermal_variants: dict[str, str] = field(default_factory=dict)  # name -> how the thermal board was found


def calibrate_from_boards(pairs, pattern: tuple[int, int]) -> BoardCalibration:
    """Fit thermal -> colour from board views.

    Args:
        pairs: iterable of (name, thermal image, colour image).
        pattern: (cols, rows) inner corners.
    """
    ir_all, rgb_all, used, skipped, variants = [], [], [], {}, {}
    for name, ir, rgb in pairs:
        rgb_corners, _ = find_board(rgb, pattern)
        if rgb_corners is None:
            skipped[name] = "board not found in the colour image"
            continue
        ir_corners, how = find_board(ir, pattern, thermal=True)
        if ir_corners is None:
            skipped[name] = "board not found in the thermal image (tried plain, inverted, CLAHE)"
            continue
        ir_all.append(match_corner_order(ir_corners, rgb_corners, pattern))
        rgb_all.append(rgb_corners)
        used.append(name)
        variants[name] = how
    if not used:
        detail = "; ".join(f"{k}: {v}" for k, v in list(skipped.items())[:5])
        raise CalibrationError(f"no usable board view (pattern {pattern[0]}x{pattern[1]} inner corners): {detail}")
    fit = fit_homography(np.vstack(ir_all), np.vstack(rgb_all))
    return BoardCalibration(fit=fit, views_used=used, views_skipped=skipped, thermal_variants=variants)
