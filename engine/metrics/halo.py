"""Halo and black-lift measures: what a viewer notices first in a fused frame.

**Halo** (ring darkening / brightening beside strong thermal edges, relative to both sources). Beside a
strong thermal edge, compare every pixel of a *near band* (``inner < d <= near`` pixels from the edge) with
the mean of the *far band* (``near < d <= far``) on the same side of the edge, inside a
``(2 far + 1)^2`` window. For the fused image F and both sources this gives the ring contrasts
``dF, dIR, dVI``. Any per-pixel fusion with fixed weights (average, max, a fixed linear mix) has
``min(dIR, dVI) <= dF <= max(dIR, dVI)``; a halo is the part of ``dF`` outside that range:

    dark  = max(0, min(dIR, dVI) - dF)        (a band darker than either source makes it)
    bright = max(0, dF - max(dIR, dVI))       (a rim brighter than either source makes it)

``halo`` is the mean of ``dark + bright`` over the near band, in grey levels (0..255); ``halo_dark`` and
``halo_bright`` split it. Contrast enhancement that is a local *mix* of the sources scores 0; a method
whose weights change abruptly near edges (the residual of a coarse fit, a pyramid's ringing, a network's
own bands) does not.

**Black lift**: over pixels where both sources are dark (``max(IR, VI) < dark_level``), the mean of
``F - max(IR, VI)``: how much the fusion lifts the black level above the brighter source (grey levels).

Inputs are (H, W) grey levels in 0..255 (as the other metrics), any float or uint8 dtype. Distances are in
pixels of a 640x480 frame and scale with the image's short side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ..errors import FusionInputError

#: band widths (pixels at a 480-pixel short side): edge core skipped, near band, far band
INNER_PX, NEAR_PX, FAR_PX = 2.0, 8.0, 24.0
#: a "strong" thermal edge: Sobel magnitude of the lightly smoothed thermal image, grey levels per pixel
EDGE_THRESHOLD = 30.0
#: "dark" for the black-lift measure (grey levels)
DARK_LEVEL = 40.0


@dataclass
class HaloScores:
    """Halo measure of one fused image (grey levels, 0..255); see the module docstring."""

    halo: float
    halo_dark: float
    halo_bright: float
    near_fraction: float  # share of the image in the near band (how much edge there is to judge)
    black_lift: float | None  # None when no pixel is dark in both sources
    dark_fraction: float

    def as_dict(self) -> dict:
        return asdict(self)


def _as_levels(image: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim != 2:
        raise FusionInputError(f"halo measure: {name} must be an (H, W) grey image, got shape {a.shape}")
    return a.astype(np.float32)


def strong_thermal_edges(ir: np.ndarray, threshold: float = EDGE_THRESHOLD) -> np.ndarray:
    """(H, W) bool: pixels on strong thermal edges (Sobel magnitude of the 3x3-smoothed thermal image)."""
    s = cv2.GaussianBlur(ir, (3, 3), 0)
    gx = cv2.Sobel(s, cv2.CV_32F, 1, 0, ksize=3) / 4.0  # /4: Sobel's 3x3 weights sum to 4 per side
    gy = cv2.Sobel(s, cv2.CV_32F, 0, 1, ksize=3) / 4.0
    return np.hypot(gx, gy) > threshold


def _masked_mean(x: np.ndarray, mask: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``x`` over ``mask`` in every k x k window -> (mean, covered fraction)."""
    m = mask.astype(np.float32)
    num = cv2.boxFilter(x * m, cv2.CV_32F, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT)
    den = cv2.boxFilter(m, cv2.CV_32F, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT)
    return num / np.maximum(den, 1e-6), den


def halo_maps(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, edge_threshold: float = EDGE_THRESHOLD,
              scale: float | None = None) -> dict[str, np.ndarray]:
    """Per-pixel halo maps (grey levels): ``dark``, ``bright`` (0 outside the near band) and ``near`` (bool).

    Args:
        ir, vi, fused: (H, W) grey levels 0..255.
        edge_threshold: Sobel magnitude (grey levels per pixel) that counts as a strong thermal edge.
        scale: band-width multiplier (default: short side / 480).
    """
    ir, vi, fused = _as_levels(ir, "thermal"), _as_levels(vi, "visible"), _as_levels(fused, "fused")
    if not (ir.shape == vi.shape == fused.shape):
        raise FusionInputError(f"halo measure: images differ in size: {ir.shape}, {vi.shape}, {fused.shape}")
    scale = min(ir.shape) / 480.0 if scale is None else float(scale)
    inner, near, far = (max(1.0, v * scale) for v in (INNER_PX, NEAR_PX, FAR_PX))
    edges = strong_thermal_edges(ir, edge_threshold)
    empty = np.zeros(ir.shape, np.float32)
    if not edges.any():
        return {"dark": empty, "bright": empty, "near": np.zeros(ir.shape, bool)}
    dist = cv2.distanceTransform((~edges).astype(np.uint8), cv2.DIST_L2, 5)
    near_band = (dist > inner) & (dist <= near)
    far_band = (dist > near) & (dist <= far)
    k = 2 * int(round(far)) + 1
    # Side of the edge: brighter or darker than the thermal image's local mean (window of the far band).
    bright_side = ir > cv2.boxFilter(ir, cv2.CV_32F, (k, k), borderType=cv2.BORDER_REFLECT)
    dark = np.zeros(ir.shape, np.float32)
    bright = np.zeros(ir.shape, np.float32)
    judged = np.zeros(ir.shape, bool)
    for side in (bright_side, ~bright_side):
        far_side = far_band & side
        ring = {}
        cover = None
        for name, img in (("f", fused), ("i", ir), ("v", vi)):
            mean, cover = _masked_mean(img, far_side, k)
            ring[name] = img - mean
        sel = near_band & side & (cover > 0.02)  # a near pixel needs some far pixels on its side to compare with
        lo = np.minimum(ring["i"], ring["v"])
        hi = np.maximum(ring["i"], ring["v"])
        dark[sel] = np.maximum(0.0, lo - ring["f"])[sel]
        bright[sel] = np.maximum(0.0, ring["f"] - hi)[sel]
        judged |= sel
    return {"dark": dark, "bright": bright, "near": judged}


def halo_scores(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, edge_threshold: float = EDGE_THRESHOLD,
                dark_level: float = DARK_LEVEL) -> HaloScores:
    """Halo and black-lift of one fused image; (H, W) grey levels 0..255 in, :class:`HaloScores` out."""
    maps = halo_maps(ir, vi, fused, edge_threshold)
    near = maps["near"]
    n = int(near.sum())
    dark = float(maps["dark"][near].mean()) if n else 0.0
    bright = float(maps["bright"][near].mean()) if n else 0.0
    ir32, vi32, f32 = (np.asarray(x, np.float32) for x in (ir, vi, fused))
    top = np.maximum(ir32, vi32)
    dark_px = top < dark_level
    lift = float((f32 - top)[dark_px].mean()) if dark_px.any() else None
    return HaloScores(halo=dark + bright, halo_dark=dark, halo_bright=bright, near_fraction=n / near.size,
                      black_lift=lift, dark_fraction=float(dark_px.mean()))
