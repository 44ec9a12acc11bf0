"""Automatic thermal -> colour alignment with no calibration target.

Thermal and visible intensities do not correlate (a warm dark coat is bright in thermal), but their
edges mostly coincide, so both images are turned into gradient-magnitude maps and aligned on those:

1. coarse search: for a grid of scales and rotations about the image centre, the shift is found by phase
   correlation of the gradient maps and the candidate is scored by normalised cross-correlation (NCC);
   this covers shifts up to ~10% of the width, rotations up to ~5 degrees and scales 0.9-1.1;
2. refinement: coarse-to-fine ECC (``cv2.findTransformECC``) on the gradient maps of an image pyramid,
   affine on the coarse levels, full homography on the finest.

The result maps thermal pixels to colour pixels (the calibration file's convention).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from .errors import CalibrationError

COARSE_WIDTH = 192  # working width of the coarse search
MIN_SIZE = 48


@dataclass
class AutoAlignResult:
    """Outcome of :func:`auto_align`.

    Attributes:
        homography: (3, 3) thermal pixel -> colour pixel.
        ecc: final ECC correlation of the gradient maps (0..1; > ~0.5 is usually a good alignment).
        coarse: the chosen coarse candidate (scale, rotation_deg, shift_x_px, shift_y_px, ncc) on full-size pixels.
        seconds: wall time.
        levels: ECC correlation reached at each pyramid level (coarse to fine).
    """

    homography: np.ndarray
    ecc: float
    coarse: tuple[float, float, float, float, float]
    seconds: float
    levels: list[float] = field(default_factory=list)


def _gray32(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    img = img.astype(np.float32)
    span = float(img.max() - img.min())
    return (img - img.min()) / span if span > 0 else np.zeros_like(img)


def gradient_map(gray: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """(H, W) float32 gradient magnitude, normalised so its 99th percentile is 1 and clipped at 1.

    Normalising per image makes the thermal and visible maps comparable; clipping keeps a few very
    strong edges (a hot engine, a lamp) from dominating the correlation.
    """
    smooth = cv2.GaussianBlur(gray, (0, 0), sigma) if sigma > 0 else gray
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    mag = cv2.magnitude(gx, gy)
    top = float(np.percentile(mag, 99))
    if top <= 0:
        return mag
    return np.minimum(mag / top, 1.0)


def _similarity(scale: float, angle_deg: float, center: tuple[float, float], shift=(0.0, 0.0)) -> np.ndarray:
    """3x3: scale + rotate about ``center``, then translate by ``shift``."""
    m = np.vstack([cv2.getRotationMatrix2D(center, angle_deg, scale), [0, 0, 1]])
    m[0, 2] += shift[0]
    m[1, 2] += shift[1]
    return m


def _ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Normalised cross-correlation of ``a`` and ``b`` over ``mask``."""
    if mask.sum() < 100:
        return -1.0
    x, y = a[mask], b[mask]
    x = x - x.mean()
    y = y - y.mean()
    den = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y) / den if den > 0 else -1.0


def coarse_search(ir_edges: np.ndarray, rgb_edges: np.ndarray, scales, angles, max_shift_frac: float = 0.13,
                  keep: int = 3) -> list[tuple[np.ndarray, tuple]]:
    """The ``keep`` best similarities (3x3, thermal -> colour on these maps) over scales x angles x shifts.

    For each scale/rotation (about the centre) the central part of the warped thermal map is slid over
    the colour map (``cv2.matchTemplate``, normalised correlation coefficient), which covers every shift
    up to ``max_shift_frac`` of the width (in x and in y) at once. A fixed template keeps the scores comparable across
    candidates. Returns [(matrix, (scale, angle_deg, dx, dy, score))], best first, mutually distinct.
    """
    h, w = rgb_edges.shape
    mx = max(1, math.ceil(max_shift_frac * w))
    my = max(1, min(math.ceil(max_shift_frac * w), (h - 8) // 3))  # keep a template at least a third high
    center = ((w - 1) / 2.0, (h - 1) / 2.0)
    found = []
    for s in scales:
        for a in angles:
            m = _similarity(s, a, center)
            warped = cv2.warpAffine(ir_edges, m[:2], (w, h))
            template = warped[my:h - my, mx:w - mx]
            if template.std() < 1e-6:
                continue
            result = cv2.matchTemplate(rgb_edges, template, cv2.TM_CCOEFF_NORMED)
            _, score, _, loc = cv2.minMaxLoc(result)
            found.append((float(score), float(s), float(a), loc[0] - mx, loc[1] - my))
    if not found:
        raise CalibrationError("automatic alignment found no candidate (images too small or featureless)")
    found.sort(reverse=True)
    picked: list[tuple] = []
    step_s = (scales[-1] - scales[0]) / max(1, len(scales) - 1)
    step_a = (angles[-1] - angles[0]) / max(1, len(angles) - 1)
    for score, s, a, dx, dy in found:
        # distinct = not a neighbour of an already picked candidate (same basin for the refinement)
        if any(abs(s - p[0]) <= step_s * 1.01 and abs(a - p[1]) <= step_a * 1.01
               and abs(dx - p[2]) <= 3 and abs(dy - p[3]) <= 3 for p in picked):
            continue
        picked.append((s, a, dx, dy, score))
        if len(picked) == keep:
            break
    return [(_similarity(s, a, center, (dx, dy)), (s, a, dx, dy, score)) for s, a, dx, dy, score in picked]


def _scaled(h: np.ndarray, f: float) -> np.ndarray:
    """The same mapping expressed on images scaled by ``f``."""
    d = np.diag([f, f, 1.0])
    return d @ h @ np.linalg.inv(d)


def _ecc(template: np.ndarray, image: np.ndarray, g: np.ndarray, motion: int, iterations: int,
         eps: float, image_mask: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """One ECC refinement. ``g`` maps image (thermal) -> template (colour); returns the refined ``g``."""
    w = np.linalg.inv(g)  # ECC's warp maps template coordinates into the input image
    w = w / w[2, 2]
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, eps)
    if motion == cv2.MOTION_HOMOGRAPHY:
        warp = w.astype(np.float32)
    else:
        warp = w[:2].astype(np.float32)
    score, warp = cv2.findTransformECC(template, image, warp, motion, criteria, image_mask, 3)
    w_new = np.vstack([warp, [0, 0, 1]]) if warp.shape[0] == 2 else warp.astype(np.float64)
    g_new = np.linalg.inv(w_new.astype(np.float64))
    return g_new / g_new[2, 2], float(score)


def auto_align(ir: np.ndarray, rgb: np.ndarray, max_rotation_deg: float = 6.0,
               scale_range: tuple[float, float] = (0.88, 1.12), max_width: int = 1280,
               motion: str = "affine", sigma: float = 0.5, coarse_steps: int = 7,
               ir_mask: np.ndarray | None = None, candidates: int = 3) -> AutoAlignResult:
    """Estimate the thermal -> colour homography of one image pair.

    Args:
        ir: (Hi, Wi) or (Hi, Wi, 3) thermal image (any dtype).
        rgb: (Hc, Wc, 3) or (Hc, Wc) colour image.
        max_rotation_deg, scale_range: the coarse search range (relative to a plain resize of the thermal
            image onto the colour frame).
        max_width: finest ECC level works at most at this width (speed).
        motion: model of the finest level, "affine" (6 parameters, steadier on weak texture) or "homography".
        sigma: Gaussian blur (pixels of each pyramid level) before the gradients; suppresses sensor noise.
        coarse_steps: grid points per axis (scale, rotation) of the coarse search.
        ir_mask: optional (Hi, Wi) mask of thermal pixels to use (non-zero = use): leaves out a burnt-in
            logo or on-screen display, or the empty border of a synthetically warped test image.
        candidates: how many distinct coarse candidates are refined on the coarse ECC levels.
    """
    if motion not in ("affine", "homography"):
        raise CalibrationError(f"motion must be 'affine' or 'homography', got {motion!r}")
    t0 = time.perf_counter()
    ir_g, rgb_g = _gray32(ir), _gray32(rgb)
    if min(ir_g.shape) < MIN_SIZE or min(rgb_g.shape) < MIN_SIZE:
        raise CalibrationError(f"images too small for automatic alignment (need at least {MIN_SIZE} px)")
    hc, wc = rgb_g.shape
    # Start from "thermal resized onto the colour frame"; search the rest around it.
    base = np.diag([wc / ir_g.shape[1], hc / ir_g.shape[0], 1.0])
    ir_on = cv2.resize(ir_g, (wc, hc), interpolation=cv2.INTER_AREA) if ir_g.shape != rgb_g.shape else ir_g
    mask_on = None
    if ir_mask is not None:
        if ir_mask.shape[:2] != ir_g.shape:
            raise CalibrationError(f"ir_mask is {ir_mask.shape[1]}x{ir_mask.shape[0]}, thermal image is "
                                   f"{ir_g.shape[1]}x{ir_g.shape[0]}")
        mask_on = cv2.resize((ir_mask > 0).astype(np.uint8), (wc, hc), interpolation=cv2.INTER_NEAREST)

    def level_mask(size: tuple[int, int]) -> np.ndarray | None:
        """The thermal mask at a pyramid level, eroded so the mask's own edge gives no gradient."""
        if mask_on is None:
            return None
        m = cv2.resize(mask_on, size, interpolation=cv2.INTER_NEAREST)
        return cv2.erode(m, np.ones((7, 7), np.uint8))

    # 1. coarse search on small gradient maps
    f0 = min(1.0, COARSE_WIDTH / wc)
    small = (max(16, round(wc * f0)), max(16, round(hc * f0)))
    ir_s = gradient_map(cv2.resize(ir_on, small, interpolation=cv2.INTER_AREA), sigma)
    if mask_on is not None:
        ir_s = ir_s * level_mask(small)
    rgb_s = gradient_map(cv2.resize(rgb_g, small, interpolation=cv2.INTER_AREA), sigma)
    scales = np.linspace(scale_range[0], scale_range[1], coarse_steps)
    angles = np.linspace(-max_rotation_deg, max_rotation_deg, coarse_steps)
    candidates = coarse_search(ir_s, rgb_s, scales, angles, keep=candidates)

    # 2. coarse-to-fine ECC on gradient maps; every candidate goes through the coarse levels, the one
    #    that correlates best there goes on to the finest level.
    f_top = min(1.0, max_width / wc)
    factors = sorted({min(f_top, f) for f in (f_top / 4, f_top / 2, f_top)})
    pyramid = []
    for f in factors:
        size = (max(16, round(wc * f)), max(16, round(hc * f)))
        pyramid.append((f, size, gradient_map(cv2.resize(ir_on, size, interpolation=cv2.INTER_AREA), sigma),
                        gradient_map(cv2.resize(rgb_g, size, interpolation=cv2.INTER_AREA), sigma), level_mask(size)))

    def refine(g: np.ndarray, levels_to_run) -> tuple[np.ndarray, list[float]]:
        scores = []
        for f, size, ir_l, rgb_l, mask_l in levels_to_run:
            finest = f == factors[-1]
            model = cv2.MOTION_HOMOGRAPHY if finest and motion == "homography" else cv2.MOTION_AFFINE
            try:
                g_l, sc = _ecc(rgb_l, ir_l, _scaled(g, f), model, 200 if finest else 100, 1e-6, mask_l)
            except cv2.error:
                scores.append(float("nan"))  # did not converge at this level: keep the previous estimate
                continue
            g = _scaled(g_l, 1.0 / f)
            scores.append(sc)
        return g, scores

    best = None
    for m_small, info in candidates:
        g, scores = refine(_scaled(m_small, 1.0 / f0), pyramid[:-1])
        last = next((v for v in reversed(scores) if v == v), -1.0)
        if best is None or last > best[0]:
            coarse = (info[0], info[1], info[2] / f0, info[3] / f0, info[4])
            best = (last, g, scores, coarse)
    _, g, levels, coarse = best
    g, final = refine(g, pyramid[-1:])
    levels = levels + final
    score = next((v for v in reversed(levels) if v == v), float("nan"))
    h = g @ base
    return AutoAlignResult(homography=h / h[2, 2], ecc=score, coarse=coarse,
                           seconds=time.perf_counter() - t0, levels=levels)
