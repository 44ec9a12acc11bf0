"""Thermal -> colour alignment by maximising the correlation of gradient orientation fields.

The measure is the one of :mod:`calibration.score` (doubled-angle orientation, contrast-sign invariant,
saturating edge weight): it peaks at the true alignment on thermal/visible pairs where gradient
magnitudes do not correspond (the thermal image is soft, the visible one is textured), which is where
ECC on magnitude maps drifts. Steps:

1. coarse search at 160 px width: for every scale x rotation of a grid, every shift at once by FFT
   cross-correlation of the complex fields (summed over frames); the best distinct candidates are kept;
2. each candidate is refined at 160 px (affine, Nelder-Mead on the displacement of three control
   points, in pixels); the best goes on to 320 px and to the finest level (at most ``max_width``);
   ``motion="homography"`` frees a fourth control point on the finest level.

Works on any number of frames of a fixed rig (the correlations add up). Homographies map thermal pixels
to colour pixels (the calibration file's convention).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import minimize

from .errors import CalibrationError
from .score import AlignmentScorer

COARSE_WIDTH = 160
LEVEL_WIDTHS = (160, 320)   # refinement levels below the finest
FINEST_WIDTH = 480          # finest level (at most the colour width)
SIGMA = 1.2                 # blur in pixels of each level
RESTARTS = 2                # Nelder-Mead runs per level at most


@dataclass
class OrientationFit:
    """Result of :func:`fit_orientation`.

    Attributes:
        homography: (3, 3) thermal pixel -> colour pixel.
        score: orientation correlation on the fitted structure at the finest level.
        seeds: coarse candidates (3, 3, thermal pixel -> colour pixel); chosen: the one refined to the end.
        seconds: wall time.
    """

    homography: np.ndarray
    score: float
    seeds: list[np.ndarray] = field(default_factory=list)
    chosen: int = 0
    seconds: float = 0.0
    levels: list[float] = field(default_factory=list)


def _similarity(scale: float, angle_deg: float, center: tuple[float, float]) -> np.ndarray:
    return np.vstack([cv2.getRotationMatrix2D(center, angle_deg, scale), [0, 0, 1]])


def _coarse(ir_frames, rgb_frames, ir_valid, rgb_valid, ir_region, scales, angles, max_shift_frac: float,
            keep: int) -> list[tuple[float, np.ndarray]]:
    """Best ``keep`` distinct (score, homography) over scales x angles x all shifts (FFT correlation)."""
    scorer = AlignmentScorer(ir_frames, rgb_frames, ir_valid, rgb_valid, width=COARSE_WIDTH, sigma=SIGMA)
    w, h = scorer.size
    wc, hc = scorer.rgb_size
    wi, hi = scorer.ir_size
    base = np.diag([wc / wi, hc / hi, 1.0])
    to_work = np.diag([scorer.f, scorer.f, 1.0])
    center = ((w - 1) / 2.0, (h - 1) / 2.0)
    pad = (2 * h, 2 * w)  # zero padding: linear, not circular, correlation
    rgb_fft = []
    for field in scorer.rgb:
        z = field[:, :, 0] + 1j * field[:, :, 1]
        rgb_fft.append(np.fft.fft2(z * scorer.rgb_valid if scorer.rgb_valid is not None else z, pad))
    rgb_energy = sum(float((field ** 2).sum()) for field in scorer.rgb)
    mx, my = math.ceil(max_shift_frac * w), math.ceil(max_shift_frac * w)
    found = []
    for s in scales:
        for a in angles:
            sim = _similarity(s, a, center)  # on the working grid
            g = np.linalg.inv(to_work) @ sim @ to_work @ base  # thermal pixel -> colour pixel
            fields, mask = scorer.fields(g, ir_region)
            if mask is None:
                continue
            total = np.zeros(pad, np.float64)
            energy = 0.0
            for field, f_rgb in zip(fields, rgb_fft):
                zi = np.where(mask, field[:, :, 0] + 1j * field[:, :, 1], 0)
                energy += float(np.vdot(zi, zi).real)
                total += np.real(np.fft.ifft2(f_rgb * np.conj(np.fft.fft2(zi, pad))))
            if energy <= 0:
                continue
            # shifts -my..my, -mx..mx (negative ones wrap to the end of the padded array)
            ys = np.r_[0:my + 1, pad[0] - my:pad[0]]
            xs = np.r_[0:mx + 1, pad[1] - mx:pad[1]]
            window = total[np.ix_(ys, xs)] / math.sqrt(energy * rgb_energy)
            iy, ix = np.unravel_index(int(np.argmax(window)), window.shape)
            dy = int(ys[iy]) if ys[iy] <= my else int(ys[iy]) - pad[0]
            dx = int(xs[ix]) if xs[ix] <= mx else int(xs[ix]) - pad[1]
            found.append((float(window[iy, ix]), float(s), float(a), dx, dy, g))
    if not found:
        raise CalibrationError("automatic alignment found no candidate (images too small or featureless)")
    found.sort(key=lambda c: -c[0])
    picked = []
    step_s = (scales[-1] - scales[0]) / max(1, len(scales) - 1)
    step_a = (angles[-1] - angles[0]) / max(1, len(angles) - 1)
    for score, s, a, dx, dy, g in found:
        if any(abs(s - p[1]) <= step_s * 1.01 and abs(a - p[2]) <= step_a * 1.01 and abs(dx - p[3]) <= 3
               and abs(dy - p[4]) <= 3 for p in picked):
            continue  # a neighbour of a picked candidate: same basin
        shift = np.array([[1, 0, dx / scorer.f], [0, 1, dy / scorer.f], [0, 0, 1.0]])
        picked.append((score, s, a, dx, dy, shift @ g))
        if len(picked) == keep:
            break
    return [(p[0], p[5]) for p in picked]


def _control_points(size: tuple[int, int], count: int) -> np.ndarray:
    """(count, 2) colour-grid points the mapping is parametrised by (3: affine, 4: homography)."""
    w, h = size
    pts = np.array([[0.1 * w, 0.1 * h], [0.9 * w, 0.1 * h], [0.5 * w, 0.9 * h], [0.9 * w, 0.9 * h]])
    if count == 4:
        pts = np.array([[0.1 * w, 0.1 * h], [0.9 * w, 0.1 * h], [0.9 * w, 0.9 * h], [0.1 * w, 0.9 * h]])
    return pts[:count]


def _refine(scorer: AlignmentScorer, g0: np.ndarray, ir_region, points: int, step_px: float, xatol: float,
            restarts: int) -> tuple[np.ndarray, float]:
    """Nelder-Mead on the (level-pixel) displacements of ``points`` control points of ``g0``'s output,
    to ``xatol`` level pixels, restarted from a fresh simplex up to ``restarts`` - 1 times while it gains."""
    pts = _control_points(scorer.rgb_size, points)
    src = _apply(np.linalg.inv(g0), pts)  # thermal points that g0 sends to the control points
    f = scorer.f

    def mapping(d: np.ndarray) -> np.ndarray:
        dst = pts + d.reshape(-1, 2) / f
        if points == 3:
            a = np.hstack([src, np.ones((3, 1))])
            m = np.linalg.solve(a, dst).T
            return np.vstack([m, [0, 0, 1]])
        return cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32)).astype(np.float64)

    def cost(d: np.ndarray) -> float:
        v = scorer.score(mapping(d), ir_region)
        return -v if v == v else 1.0

    x, best = np.zeros(2 * points), math.inf
    for _ in range(restarts):  # a fresh simplex after each run: Nelder-Mead's simplex can collapse early
        simplex = np.vstack([x] + [x + step_px * e for e in np.eye(2 * points)])
        res = minimize(cost, x, method="Nelder-Mead",
                       options={"initial_simplex": simplex, "xatol": xatol, "fatol": 1e-6, "maxfev": 100 * points})
        gained = best - float(res.fun)
        x, best = res.x, min(best, float(res.fun))
        if gained < 1e-4:
            break
        step_px = max(0.5, step_px / 2)
    return mapping(x), -best


def _apply(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.hstack([pts, np.ones((len(pts), 1))]) @ h.T
    return p[:, :2] / p[:, 2:3]


def fit_orientation(ir_frames, rgb_frames, ir_valid=None, rgb_valid=None, ir_region=None,
                    motion: str = "affine", seeds: list[np.ndarray] | None = None, candidates: int = 4,
                    max_rotation_deg: float = 8.0, scale_range: tuple[float, float] = (0.85, 1.15),
                    scale_steps: int = 7, angle_steps: int = 9, max_shift_frac: float = 0.13,
                    max_width: int = FINEST_WIDTH) -> OrientationFit:
    """Fit a thermal -> colour homography to lists of (Hi, Wi) thermal and (Hc, Wc) colour frames.

    Args:
        ir_valid, rgb_valid: optional uint8 masks of content (an empty border left out; eroded).
        ir_region: optional (Hi, Wi) mask of the thermal structure to fit on (held-out tiles left out).
        motion: "affine" or "homography" (finest level only).
        seeds: refine these (thermal -> colour) instead of running the coarse search.
    """
    if motion not in ("affine", "homography"):
        raise CalibrationError(f"motion must be 'affine' or 'homography', got {motion!r}")
    t0 = time.perf_counter()
    if seeds is None:
        scales = np.linspace(scale_range[0], scale_range[1], scale_steps)
        angles = np.linspace(-max_rotation_deg, max_rotation_deg, angle_steps)
        seeds = [g for _, g in _coarse(ir_frames, rgb_frames, ir_valid, rgb_valid, ir_region, scales, angles,
                                       max_shift_frac, candidates)]
    widths = [w for w in LEVEL_WIDTHS if w < max_width] + [max_width]
    scorers = [AlignmentScorer(ir_frames, rgb_frames, ir_valid, rgb_valid, width=w, sigma=SIGMA) for w in widths]
    best = None
    for index, seed in enumerate(seeds):
        g, score = _refine(scorers[0], seed, ir_region, 3, 2.0, 0.1, RESTARTS)
        if best is None or score > best[0]:
            best = (score, g, index)
    score, g, chosen = best
    levels = [score]
    for i, scorer in enumerate(scorers[1:], 1):
        finest = i == len(scorers) - 1
        g, score = _refine(scorer, g, ir_region, 4 if finest and motion == "homography" else 3, 1.5,
                           0.02 if finest else 0.05, RESTARTS)
        levels.append(score)
    return OrientationFit(homography=g / g[2, 2], score=score, seeds=list(seeds), chosen=chosen,
                          seconds=time.perf_counter() - t0, levels=levels)
