"""Temporal measures of a fused video: flicker (against the sources' own change) and lag of moving things.

**Flicker**: the mean absolute frame-to-frame change of the fused video (grey levels), divided by

* the mean of the two sources' mean frame-to-frame changes (``ratio_mean``), and
* the larger of the two (``ratio_max``).

A fusion that only passes on what the sources do stays near or below 1 on ``ratio_max``; above it, the
fusion adds change of its own (flicker, or a thermal gain jump shown at full strength).

**Lag** (ghosting of moving things): over the pixels where a source changed by more than
``motion_level`` grey levels since the previous frame, fit ``out_t ~= alpha * ref_t + beta * ref_{t-1} + c``
where ``ref`` is the per-frame fusion (no temporal processing); ``lag = beta / (alpha + beta)`` is the share
of the previous frame in what is shown where things move (0: none, 1: the previous frame). The
correlations of ``out_t`` with ``ref_t`` and with ``ref_{t-1}`` there are reported beside it.

Frames are (H, W) or (H, W, 3) uint8 (colour is reduced to grey) or float grey levels 0..255.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ..errors import FusionInputError

MOTION_LEVEL = 10.0


def _gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 3:
        frame = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGR2GRAY)
    return np.asarray(frame, np.float32)


def mean_change(frames: Sequence[np.ndarray]) -> float:
    """Mean over consecutive pairs of the mean absolute grey-level difference."""
    if len(frames) < 2:
        raise FusionInputError("a temporal measure needs at least two frames")
    g = [_gray(f) for f in frames]
    return float(np.mean([np.abs(b - a).mean() for a, b in zip(g, g[1:])]))


def flicker(fused: Sequence[np.ndarray], ir: Sequence[np.ndarray], vi: Sequence[np.ndarray]) -> dict[str, float]:
    """Flicker figures of one clip: ``fused``, ``ir``, ``vi`` change (grey levels), ``ratio_mean``, ``ratio_max``."""
    if not (len(fused) == len(ir) == len(vi)):
        raise FusionInputError(f"flicker: {len(fused)} fused, {len(ir)} thermal and {len(vi)} visible frames differ")
    f, i, v = mean_change(fused), mean_change(ir), mean_change(vi)
    return {"fused": f, "ir": i, "vi": v, "ratio_mean": f / max((i + v) / 2.0, 1e-9), "ratio_max": f / max(i, v, 1e-9)}


def motion_lag(out: Sequence[np.ndarray], ref: Sequence[np.ndarray], ir: Sequence[np.ndarray],
               vi: Sequence[np.ndarray], motion_level: float = MOTION_LEVEL) -> dict[str, float | None]:
    """Lag of moving things in ``out`` against the per-frame fusion ``ref`` (see the module docstring).

    Returns ``lag``, ``corr_now``, ``corr_prev`` (None when no pixel moved) and ``motion_pixels`` (share).
    """
    n = len(out)
    if not (n == len(ref) == len(ir) == len(vi)) or n < 2:
        raise FusionInputError("motion lag: need equally long sequences of at least two frames")
    rows, share = [], []
    for t in range(1, n):
        moving = np.maximum(np.abs(_gray(ir[t]) - _gray(ir[t - 1])), np.abs(_gray(vi[t]) - _gray(vi[t - 1])))
        mask = moving > motion_level
        share.append(float(mask.mean()))
        if mask.sum() < 50:
            continue
        rows.append((_gray(out[t])[mask], _gray(ref[t])[mask], _gray(ref[t - 1])[mask]))
    if not rows:
        return {"lag": None, "corr_now": None, "corr_prev": None, "motion_pixels": float(np.mean(share))}
    o = np.concatenate([r[0] for r in rows]).astype(np.float64)
    now = np.concatenate([r[1] for r in rows]).astype(np.float64)
    prev = np.concatenate([r[2] for r in rows]).astype(np.float64)
    design = np.stack([now, prev, np.ones_like(now)], axis=1)
    (alpha, beta, _), *_ = np.linalg.lstsq(design, o, rcond=None)
    total = alpha + beta
    lag = float(beta / total) if abs(total) > 1e-6 else None
    return {"lag": lag, "corr_now": float(np.corrcoef(o, now)[0, 1]), "corr_prev": float(np.corrcoef(o, prev)[0, 1]),
            "motion_pixels": float(np.mean(share))}
