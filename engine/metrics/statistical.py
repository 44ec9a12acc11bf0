"""Statistical fusion metrics: SD, CC, SCD and PSNR.

Correlation of an image with zero variance is undefined; these functions count it as 0 (no linear
relation can be measured) instead of returning NaN.
"""

from __future__ import annotations

import math

import numpy as np


def standard_deviation(image: np.ndarray) -> float:
    """SD: population standard deviation, sqrt(mean((I - mean I)^2)). ``image``: (H, W) float64."""
    return float(np.std(image))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation coefficient of two (H, W) arrays; 0 when either is constant."""
    da = a - a.mean()
    db = b - b.mean()
    denom = math.sqrt(float((da * da).sum()) * float((db * db).sum()))
    if denom == 0.0:
        return 0.0
    return float((da * db).sum() / denom)


def correlation_coefficient(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> float:
    """CC: (corr(F, IR) + corr(F, VI)) / 2. All (H, W) float64."""
    return 0.5 * (correlation(fused, ir) + correlation(fused, vi))


def scd(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> float:
    """SCD, sum of the correlations of differences (Aslantas and Bendes, AEU 2015).

    SCD = corr(F - IR, VI) + corr(F - VI, IR): the difference F - IR is what the fusion took from VI
    (and vice versa), so a good fusion correlates it with the other source. Range [-2, 2].
    """
    return correlation(fused - ir, vi) + correlation(fused - vi, ir)


def psnr(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> float:
    """PSNR = 10 log10(max(F)^2 / MSE), MSE = (MSE(F, IR) + MSE(F, VI)) / 2, in dB.

    When F equals both sources the MSE is 0 and the PSNR is ``math.inf`` (a perfect match); the
    command-line JSON writes that as ``null`` because JSON has no infinity. A black F gives ``-inf``.
    """
    mse = 0.5 * (float(np.mean((fused - ir) ** 2)) + float(np.mean((fused - vi) ** 2)))
    peak_sq = float(fused.max()) ** 2
    if mse == 0.0:
        return math.inf
    if peak_sq == 0.0:
        return -math.inf
    return 10.0 * math.log10(peak_sq / mse)
