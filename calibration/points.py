"""Homography from hand-picked point pairs (thermal pixel -> colour pixel), robust to a few bad clicks."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .calibration_file import apply_homography
from .errors import CalibrationError

CSV_COLUMNS = ("ir_x", "ir_y", "rgb_x", "rgb_y")


@dataclass
class HomographyFit:
    """A fitted homography and how well it explains its points.

    Attributes:
        homography: (3, 3) thermal -> colour.
        rms_px, max_px: reprojection error over the inliers (colour pixels).
        inliers: (N,) bool mask of the points RANSAC kept.
    """

    homography: np.ndarray
    rms_px: float
    max_px: float
    inliers: np.ndarray

    @property
    def inlier_count(self) -> int:
        return int(self.inliers.sum())


def read_point_pairs(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) thermal and (N, 2) colour points from a CSV with columns ir_x,ir_y,rgb_x,rgb_y."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"point pairs file not found: {path}")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in CSV_COLUMNS if c not in header]
        if missing:
            raise CalibrationError(f"{path}: missing column(s) {', '.join(missing)} "
                                   f"(the header must be {','.join(CSV_COLUMNS)})")
        rows = []
        for line, row in enumerate(reader, 2):
            row = {k.strip(): v for k, v in row.items() if k is not None}
            try:
                rows.append([float(row[c]) for c in CSV_COLUMNS])
            except (TypeError, ValueError):
                raise CalibrationError(f"{path}, line {line}: not four numbers: {row}") from None
    pts = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return pts[:, :2], pts[:, 2:]


def _normalizer(pts: np.ndarray) -> np.ndarray:
    """Similarity moving the points' centroid to 0 and their mean distance to sqrt(2) (Hartley)."""
    center = pts.mean(axis=0)
    dist = np.mean(np.linalg.norm(pts - center, axis=1))
    s = math.sqrt(2.0) / dist if dist > 0 else 1.0
    return np.array([[s, 0, -s * center[0]], [0, s, -s * center[1]], [0, 0, 1.0]])


def _dlt_svd(src: np.ndarray, dst: np.ndarray):
    """SVD of the normalised DLT system of (N, 2) src -> dst pairs -> (singular values, vt, t_src, t_dst)."""
    t_src, t_dst = _normalizer(src), _normalizer(dst)
    a = np.hstack([src, np.ones((len(src), 1))]) @ t_src.T
    b = np.hstack([dst, np.ones((len(dst), 1))]) @ t_dst.T
    rows = []
    for (x, y, w), (u, v, z) in zip(a, b):
        rows.append([0, 0, 0, -z * x, -z * y, -z * w, v * x, v * y, v * w])
        rows.append([z * x, z * y, z * w, 0, 0, 0, -u * x, -u * y, -u * w])
    _, sing, vt = np.linalg.svd(np.asarray(rows))
    return sing, vt, t_src, t_dst


def normalized_dlt(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Least-squares (algebraic) homography src -> dst from >= 4 pairs, normalised DLT, float64."""
    _, vt, t_src, t_dst = _dlt_svd(src, dst)
    h = vt[-1].reshape(3, 3)
    h = np.linalg.inv(t_dst) @ h @ t_src
    if abs(h[2, 2]) < 1e-15 or not np.all(np.isfinite(h)):
        return None
    return h / h[2, 2]


COLLINEAR_RATIO = 0.02   # spread across the best-fit line / spread along it below this: collinear
DUPLICATE_PX = 0.5       # two clicks closer than this are the same point
DLT_RATIO = 1e-4         # 8th / 1st singular value of the DLT system (9 unknowns): below, not unique
MAX_CONDITION = 1e7      # condition number of the (normalised) homography: above, it nearly collapses a direction


def check_point_set(pts: np.ndarray, what: str) -> None:
    """Raise CalibrationError when (N, 2) points cannot define a homography: non-finite, repeated, collinear."""
    if not np.all(np.isfinite(pts)):
        raise CalibrationError(f"the {what} points contain non-finite numbers")
    dist = np.linalg.norm(pts[:, None, :] - pts[None, :, :], axis=2)
    i, j = np.nonzero(np.triu(dist < DUPLICATE_PX, k=1))
    if len(i):
        raise CalibrationError(f"{what} points {i[0] + 1} and {j[0] + 1} are the same point "
                               f"({pts[i[0], 0]:g}, {pts[i[0], 1]:g}); each pair must be a different place")
    spread = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False)
    if spread[0] == 0 or spread[1] / spread[0] < COLLINEAR_RATIO:
        raise CalibrationError(f"the {what} points lie (nearly) on one line; a homography needs points spread "
                               f"over the image, at least 4 with no 3 on a line")


def _dlt_determined(src: np.ndarray, dst: np.ndarray) -> bool:
    """Whether the points determine one homography (the normalised DLT system has a 1-D null space only)."""
    sing = _dlt_svd(src, dst)[0]
    return len(sing) >= 8 and sing[7] / sing[0] > DLT_RATIO  # rank 8 of 9 columns: one solution up to scale


def _check_fitted(h: np.ndarray, ir_pts: np.ndarray) -> None:
    """Raise CalibrationError when ``h`` is near-singular or folds the area the points span."""
    t = _normalizer(ir_pts)
    hn = h @ np.linalg.inv(t)  # conditioning measured on normalised input coordinates
    if not np.all(np.isfinite(hn)) or np.linalg.cond(hn / np.abs(hn).max()) > MAX_CONDITION:
        raise CalibrationError("the fitted homography is near-singular (it would collapse the image); "
                               "add points spread over the image")
    lo, hi = ir_pts.min(axis=0), ir_pts.max(axis=0)
    hull = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    w = np.hstack([hull, np.ones((4, 1))]) @ h[2]
    if np.any(w <= 0) or np.any(np.sign(w) != np.sign(w[0])):
        raise CalibrationError("the fitted homography folds the area the points span (points behind the camera "
                               "or in the wrong order); check the clicks")


def fit_homography(ir_pts: np.ndarray, rgb_pts: np.ndarray, ransac_px: float = 3.0) -> HomographyFit:
    """RANSAC homography (cv2.findHomography) from >= 4 point pairs, refined on the inliers.

    Degenerate input is an error (CalibrationError, one line): fewer than 4 pairs, repeated or collinear
    points, points that do not determine one homography (3 of 4 on a line), fewer than 4 or fewer than
    half of the pairs agreeing with one homography, or a result that folds or collapses the point area.
    """
    ir_pts = np.asarray(ir_pts, np.float64).reshape(-1, 2)
    rgb_pts = np.asarray(rgb_pts, np.float64).reshape(-1, 2)
    if len(ir_pts) != len(rgb_pts):
        raise CalibrationError(f"{len(ir_pts)} thermal points but {len(rgb_pts)} colour points")
    if len(ir_pts) < 4:
        raise CalibrationError(f"a homography needs at least 4 point pairs, got {len(ir_pts)}")
    check_point_set(ir_pts, "thermal")
    check_point_set(rgb_pts, "colour")
    h, mask = cv2.findHomography(ir_pts, rgb_pts, cv2.RANSAC, ransac_px, maxIters=5000, confidence=0.999)
    if h is None:
        raise CalibrationError("no homography fits these points (are they collinear or duplicated?)")
    inliers = mask.ravel().astype(bool)
    if inliers.sum() < max(4, (len(ir_pts) + 1) // 2):
        raise CalibrationError(f"only {int(inliers.sum())} of {len(ir_pts)} point pairs agree with one homography "
                               f"(RANSAC {ransac_px:g} px); check the clicks")
    if not _dlt_determined(ir_pts[inliers], rgb_pts[inliers]):
        raise CalibrationError("the point pairs do not determine one homography (3 of 4 points on a line?); "
                               "add points spread over the image")
    if inliers.sum() >= 4:
        # Refit on all inliers (RANSAC's model comes from a minimal sample), in float64 with normalised
        # coordinates: exact points give the homography to ~1e-12, OpenCV's fit stops near 1e-7.
        refined = normalized_dlt(ir_pts[inliers], rgb_pts[inliers])
        if refined is not None:
            h = refined
    h = h / h[2, 2]
    _check_fitted(h, ir_pts[inliers])
    err = np.linalg.norm(apply_homography(h, ir_pts[inliers]) - rgb_pts[inliers], axis=1)
    return HomographyFit(homography=h, rms_px=float(math.sqrt(np.mean(err ** 2))) if len(err) else math.inf,
                         max_px=float(err.max()) if len(err) else math.inf, inliers=inliers)
