"""How well a thermal -> colour homography aligns the two images, and whether it is geometrically plausible.

The score is the normalised correlation of the doubled-angle gradient orientation fields
(:func:`calibration.structure.orientation_field`) of the warped thermal image and the colour image:

    score = Re sum(z_ir * conj(z_rgb)) / sqrt(E_ir * E_rgb)      summed over the overlap and all frames

with fixed normalisers: E_ir, the edge energy of the thermal structure scored (unwarped), and E_rgb,
that of the colour frame (the same share of it). 1 means every edge lies on an edge of the same
orientation, 0 no relation; structure pushed out of the frame counts as unmatched. It uses orientation, which
the fitting (gradient magnitude) does not, and it can be restricted to held-out structure (a tile mask
in thermal coordinates), so it judges a fit instead of repeating what the fit optimised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .structure import orientation_field, to_gray32

SCORE_WIDTH = 480  # working width of the score (colour grid); edges at this scale are what a fusion shows
SCORE_SIGMA = 1.2  # blur (working pixels): tolerant to sub-pixel noise, still sharp to a few pixels of error


class AlignmentScorer:
    """Scores homographies on fixed frame pairs (precomputes the colour side once).

    Args:
        ir_frames: list of (Hi, Wi[, C]) thermal frames.
        rgb_frames: list of (Hc, Wc[, C]) colour frames (same count; pairs by index).
        ir_valid: optional (Hi, Wi) uint8 mask of thermal content (non-zero = content).
        rgb_valid: optional (Hc, Wc) uint8 mask of colour content.
    """

    def __init__(self, ir_frames, rgb_frames, ir_valid: np.ndarray | None = None,
                 rgb_valid: np.ndarray | None = None, width: int = SCORE_WIDTH, sigma: float = SCORE_SIGMA) -> None:
        hc, wc = rgb_frames[0].shape[:2]
        self.f = min(1.0, width / wc)
        self.size = (max(16, round(wc * self.f)), max(16, round(hc * self.f)))
        self.sigma = sigma
        self.ir_size = (ir_frames[0].shape[1], ir_frames[0].shape[0])
        self.rgb_size = (wc, hc)
        # thermal resized to about the working scale (area filter), then warped onto the working grid
        self.fi = self.size[0] / self.ir_size[0]
        ir_small = (max(16, round(self.ir_size[0] * self.fi)), max(16, round(self.ir_size[1] * self.fi)))
        self.ir = [cv2.resize(to_gray32(f), ir_small, interpolation=cv2.INTER_AREA) for f in ir_frames]
        # the knee of each thermal image, measured before warping (an empty border would lower it)
        self.ir_knees = [orientation_field(ir, sigma)[1] for ir in self.ir]
        self.rgb = [orientation_field(cv2.resize(to_gray32(f), self.size, interpolation=cv2.INTER_AREA), sigma)[0]
                    for f in rgb_frames]
        erode = np.ones((2 * math.ceil(3 * sigma) + 1,) * 2, np.uint8)  # keep the mask's own outline out
        self.rgb_valid = None if rgb_valid is None else cv2.erode(
            cv2.resize((rgb_valid > 0).astype(np.uint8), self.size, interpolation=cv2.INTER_NEAREST), erode) > 0
        self.ir_valid = np.full(ir_frames[0].shape[:2], 255, np.uint8) if ir_valid is None else \
            (ir_valid > 0).astype(np.uint8) * 255
        # eroded once in thermal pixels (the same margin as on the working grid), not at every evaluation
        margin = max(1, round((erode.shape[0] // 2) / self.fi))
        self._ir_valid_eroded = cv2.erode(self.ir_valid, np.ones((2 * margin + 1,) * 2, np.uint8)) if ir_valid is not None \
            else self.ir_valid
        self._erode = erode
        # Fixed normalisers: the edge energy of the unwarped thermal structure and of the whole colour frame.
        # A normaliser taken over the overlap would let a mapping raise its score by pushing weakly
        # matching structure out of the frame (shrinking, sliding away); with fixed ones it cannot.
        small_valid = cv2.erode(cv2.resize(self.ir_valid, ir_small, interpolation=cv2.INTER_NEAREST), erode)
        self._ir_small_valid = small_valid > 0
        energy = sum((orientation_field(ir, sigma, knee)[0] ** 2).sum(axis=2) for ir, knee in zip(self.ir, self.ir_knees))
        self._ir_energy = np.where(self._ir_small_valid, energy, 0).astype(np.float64)
        rgb_energy = sum((z ** 2).sum(axis=2) for z in self.rgb)
        self._rgb_energy = float(rgb_energy[self.rgb_valid].sum() if self.rgb_valid is not None else rgb_energy.sum())
        self._ir_small = ir_small
        self._region_energy: dict = {}  # id(region) -> (thermal energy, share, the region kept alive)
        self._regions: dict = {}  # id(region) -> (region within the content, the region kept alive)

    def _normaliser(self, hw: np.ndarray, ir_region: np.ndarray | None) -> float:
        """sqrt(thermal energy of the region, in working-grid area) x (colour energy, same share of the frame))."""
        key = None if ir_region is None else id(ir_region)
        if key not in self._region_energy:  # per region (the same tile masks come back at every evaluation)
            if ir_region is None:
                inside = self._ir_small_valid
            else:
                inside = self._ir_small_valid & (cv2.resize((ir_region > 0).astype(np.uint8), self._ir_small,
                                                            interpolation=cv2.INTER_NEAREST) > 0)
            share = inside.sum() / max(1, self._ir_small_valid.sum())
            self._region_energy[key] = (float(self._ir_energy[inside].sum()), share, ir_region)
        energy, share, _ = self._region_energy[key]
        area = abs(float(np.linalg.det(hw[:2, :2] / hw[2, 2])))  # working pixels per small thermal pixel
        return math.sqrt(energy * area * self._rgb_energy * share)

    def _region(self, ir_region: np.ndarray | None) -> np.ndarray:
        """Thermal content (eroded) within ``ir_region`` (tiles: no edge of the image, so not eroded), cached."""
        if ir_region is None:
            return self._ir_valid_eroded
        key = id(ir_region)
        if key not in self._regions:
            self._regions[key] = (np.where(ir_region > 0, self._ir_valid_eroded, 0).astype(np.uint8), ir_region)
        return self._regions[key][0]

    def fields(self, h: np.ndarray, ir_region: np.ndarray | None = None):
        """Orientation fields of the thermal frames warped by ``h`` onto the working grid, and the mask of
        working pixels to compare: ([(h, w) complex64 per frame], (h, w) bool), or ([], None) when too few."""
        to_work = np.diag([self.f, self.f, 1.0]) @ np.asarray(h, np.float64)  # thermal pixel -> working grid
        region = self._region(ir_region)
        mask = cv2.warpPerspective(region, to_work, self.size, flags=cv2.INTER_NEAREST) > 0
        # the warped frame's own outline (where the thermal image ends inside the colour frame)
        mask &= cv2.erode(cv2.warpPerspective(np.full(self.ir[0].shape, 1, np.uint8), to_work @
                                              np.diag([1 / self.fi, 1 / self.fi, 1.0]), self.size,
                                              flags=cv2.INTER_NEAREST), self._erode) > 0
        if self.rgb_valid is not None:
            mask &= self.rgb_valid
        if mask.sum() < 64:
            return [], None
        hw = to_work @ np.diag([1 / self.fi, 1 / self.fi, 1.0])  # small thermal -> working grid
        fields = [orientation_field(cv2.warpPerspective(ir, hw, self.size, flags=cv2.INTER_LINEAR), self.sigma, knee)[0]
                  for ir, knee in zip(self.ir, self.ir_knees)]
        return fields, mask

    def score(self, h: np.ndarray, ir_region: np.ndarray | None = None) -> float:
        """Score of ``h`` (3x3, thermal pixel -> colour pixel) over ``ir_region`` ((Hi, Wi) mask, thermal pixels)."""
        fields, mask = self.fields(h, ir_region)
        if mask is None:
            return float("nan")
        mask8 = mask.view(np.uint8)
        count = int(cv2.countNonZero(mask8))
        num = 0.0
        for z_ir, z_rgb in zip(fields, self.rgb):
            mean = cv2.mean(cv2.multiply(z_ir, z_rgb), mask8)  # per channel: real*real, imag*imag
            num += (mean[0] + mean[1]) * count
        hw = np.diag([self.f, self.f, 1.0]) @ np.asarray(h, np.float64) @ np.diag([1 / self.fi, 1 / self.fi, 1.0])
        den = self._normaliser(hw, ir_region)
        return num / den if den > 0 else float("nan")


@dataclass
class Bounds:
    """What a thermal -> colour mapping may plausibly do, relative to "thermal resized onto the colour frame".

    Attributes:
        max_scale: largest scale change either way (1.25: between 0.8x and 1.25x).
        max_aspect: largest change of the x/y scale ratio (1.10: 10 %); lenses do not stretch one axis.
        max_shear: largest shear (0.08 = about 4.6 degrees between the image axes).
        max_perspective: largest corner displacement of the projective part, as a fraction of the diagonal.
        max_corner_motion: largest corner motion, as a fraction of the colour frame's diagonal.
    """

    max_scale: float = 1.25
    max_aspect: float = 1.10
    max_shear: float = 0.08
    max_perspective: float = 0.02
    max_corner_motion: float = 0.25


def geometry(h: np.ndarray, ir_size: tuple[int, int], rgb_size: tuple[int, int]) -> dict:
    """Scale, aspect change, shear, rotation, perspective and corner motion of ``h`` relative to a plain resize.

    Returns a dict of floats: scale, aspect, shear, rotation_deg, perspective (fraction of the diagonal),
    corner_motion (fraction of the diagonal), corner_motion_px.
    """
    wc, hc = rgb_size
    base = np.diag([wc / ir_size[0], hc / ir_size[1], 1.0])
    r = np.asarray(h, np.float64) @ np.linalg.inv(base)  # resized thermal pixel -> colour pixel
    r = r / r[2, 2]
    corners = np.array([[0, 0], [wc - 1, 0], [wc - 1, hc - 1], [0, hc - 1]], np.float64)
    diag = math.hypot(wc, hc)

    def through(m, pts):
        p = np.hstack([pts, np.ones((len(pts), 1))]) @ m.T
        return p[:, :2] / p[:, 2:3]

    moved = through(r, corners)
    # the affine mapping closest to the corners' motion; what it leaves is the projective part
    design = np.hstack([corners, np.ones((4, 1))])
    affine_t, *_ = np.linalg.lstsq(design, moved, rcond=None)
    residual = moved - design @ affine_t
    a = affine_t[:2].T  # A = rotation @ [[sx, k], [0, sy]]
    q, upper = np.linalg.qr(a)
    signs = np.sign(np.diag(upper))
    signs[signs == 0] = 1
    q, upper = q * signs, (upper.T * signs).T
    sx, sy, k = upper[0, 0], upper[1, 1], upper[0, 1]
    det = float(np.linalg.det(a))
    scale = math.sqrt(abs(det)) if det > 0 else float("nan")
    return {"scale": scale,
            "aspect": float(sx / sy) if sy != 0 else float("inf"),
            "shear": float(k / math.sqrt(abs(sx * sy))) if sx * sy != 0 else float("inf"),
            "rotation_deg": math.degrees(math.atan2(q[1, 0], q[0, 0])),
            "perspective": float(np.max(np.linalg.norm(residual, axis=1)) / diag),
            "corner_motion": float(np.max(np.linalg.norm(moved - corners, axis=1)) / diag),
            "corner_motion_px": float(np.max(np.linalg.norm(moved - corners, axis=1)))}


def geometry_problems(h: np.ndarray, ir_size: tuple[int, int], rgb_size: tuple[int, int],
                      bounds: Bounds) -> list[str]:
    """What is implausible about ``h`` (empty list = plausible); each item a short phrase with the numbers."""
    g = geometry(h, ir_size, rgb_size)
    problems = []
    if not g["scale"] == g["scale"]:
        problems.append("the mapping mirrors or collapses the image")
        return problems
    if not 1 / bounds.max_scale <= g["scale"] <= bounds.max_scale:
        problems.append(f"scale {g['scale']:.3f} outside {1 / bounds.max_scale:.2f}-{bounds.max_scale:.2f}")
    if not 1 / bounds.max_aspect <= g["aspect"] <= bounds.max_aspect:
        problems.append(f"x/y scale ratio {g['aspect']:.3f} outside {1 / bounds.max_aspect:.2f}-{bounds.max_aspect:.2f}")
    if abs(g["shear"]) > bounds.max_shear:
        problems.append(f"shear {g['shear']:.3f} beyond {bounds.max_shear:g}")
    if g["perspective"] > bounds.max_perspective:
        problems.append(f"perspective moves a corner by {100 * g['perspective']:.1f}% of the diagonal "
                        f"(limit {100 * bounds.max_perspective:g}%)")
    if g["corner_motion"] > bounds.max_corner_motion:
        problems.append(f"a corner moves {g['corner_motion_px']:.0f} px ({100 * g['corner_motion']:.0f}% of the "
                        f"diagonal, limit {100 * bounds.max_corner_motion:g}%)")
    return problems
