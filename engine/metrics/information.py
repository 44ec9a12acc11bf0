"""Information-theoretic fusion metrics: entropy (EN) and mutual information (MI).

Images are 8-bit grayscale held as float64 (as read with ``IMREAD_GRAYSCALE``); histograms use the
256 levels of the rounded image, clipped to 0..255.
"""

from __future__ import annotations

import numpy as np

LEVELS = 256


def _levels(image: np.ndarray) -> np.ndarray:
    """(H, W) float image -> (H*W,) int64 grey levels 0..255 (rounded, clipped)."""
    return np.clip(np.rint(image), 0, LEVELS - 1).astype(np.int64).ravel()


def _entropy(p: np.ndarray, log) -> float:
    p = p[p > 0]
    return float(-(p * log(p)).sum())


def entropy(image: np.ndarray) -> float:
    """EN: Shannon entropy in bits of the 256-bin histogram, -sum p_i log2 p_i.

    Args:
        image: (H, W) float64 grey levels in 0..255.
    """
    hist = np.bincount(_levels(image), minlength=LEVELS).astype(np.float64)
    return _entropy(hist / hist.sum(), np.log2)


def mutual_information_pair(a: np.ndarray, b: np.ndarray) -> float:
    """MI(A, B) in nats from the 256x256 joint histogram: sum p_ab ln(p_ab / (p_a p_b)).

    Computed as H(A) + H(B) - H(A, B), which is the same sum without dividing by zero.

    Args:
        a, b: (H, W) float64 grey levels in 0..255, same shape.
    """
    joint = np.bincount(_levels(a) * LEVELS + _levels(b), minlength=LEVELS * LEVELS).astype(np.float64)
    joint = joint.reshape(LEVELS, LEVELS) / joint.sum()
    return _entropy(joint.sum(axis=1), np.log) + _entropy(joint.sum(axis=0), np.log) - _entropy(joint.ravel(), np.log)


def mutual_information(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> float:
    """MI: MI(F, IR) + MI(F, VI) in nats. All (H, W) float64 in 0..255."""
    return mutual_information_pair(fused, ir) + mutual_information_pair(fused, vi)
