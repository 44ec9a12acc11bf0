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


def normalized_dlt(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Least-squares (algebraic) homography src -> dst from >= 4 pairs, normalised DLT, float64."""
    t_src, t_dst = _normalizer(src), _normalizer(dst)
    a = np.hstack([src, np.ones((len(src), 1))]) @ t_src.T
    b = np.hstack([dst, np.ones((len(dst), 1))]) @ t_dst.T
    rows = []
    for (x, y, w), (u, v, z) in zip(a, b):
        rows.append([0, 0, 0, -z * x, -z * y, -z * w, v * x, v * y, v * w])
        rows.append([z * x, z * y, z * w, 0, 0, 0, -u * x, -u * y, -u * w])
    _, sing, vt = np.linalg.svd(np.asarray(rows))
    h = vt[-1].reshape(3, 3)
    h = np.linalg.inv(t_dst) @ h @ t_src
    if abs(h[2, 2]) < 1e-15 or not np.all(np.isfinite(h)):
        return None
    return h / h[2, 2]


def fit_homography(ir_pts: np.ndarray, rgb_pts: np.ndarray, ransac_px: float = 3.0) -> HomographyFit:
    """RANSAC homography (cv2.findHomography) from >= 4 point pairs, refined on the inliers."""
    ir_pts = np.asarray(ir_pts, np.float64).reshape(-1, 2)
    rgb_pts = np.asarray(rgb_pts, np.float64).reshape(-1, 2)
    if len(ir_pts) != len(rgb_pts):
        raise CalibrationError(f"{len(ir_pts)} thermal points but {len(rgb_pts)} colour points")
    if len(ir_pts) < 4:
        raise CalibrationError(f"a homography needs at least 4 point pairs, got {len(ir_pts)}")
    h, mask = cv2.findHomography(ir_pts, rgb_pts, cv2.RANSAC, ransac_px, maxIters=5000, confidence=0.999)
    if h is None:
        raise CalibrationError("no homography fits these points (are they collinear or duplicated?)")
    inliers = mask.ravel().astype(bool)
    if inliers.sum() >= 4:
        # Refit on all inliers (RANSAC's model comes from a minimal sample), in float64 with normalised
        # coordinates: exact points give the homography to ~1e-12, OpenCV's fit stops near 1e-7.
        refined = normalized_dlt(ir_pts[inliers], rgb_pts[inliers])
        if refined is not None:
            h = refined
    h = h / h[2, 2]
    err = np.linalg.norm(apply_homography(h, ir_pts[inliers]) - rgb_pts[inliers], axis=1)
    return HomographyFit(homography=h, rms_px=float(math.sqrt(np.mean(err ** 2))) if len(err) else math.inf,
                         max_px=float(err.max()) if len(err) else math.inf, inliers=inliers)
