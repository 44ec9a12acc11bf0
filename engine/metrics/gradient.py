"""Gradient-based fusion metrics: SF, AG, Qabf (Xydeas and Petrovic) and Nabf (Kumar's modified form).

All functions take (H, W) float64 grey levels in 0..255 and use vectorised NumPy/OpenCV filtering.
"""

from __future__ import annotations

import cv2
import numpy as np

# 3x3 Sobel kernels written for correlation (cv2.filter2D): x responds to vertical edges, y to horizontal.
_SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
_SOBEL_Y = _SOBEL_X.T.copy()


def spatial_frequency(image: np.ndarray) -> float:
    """SF = sqrt(RF^2 + CF^2).

    RF is the root mean square of the horizontal first differences I[r, c] - I[r, c-1] (H x (W-1) of
    them), CF that of the vertical ones I[r, c] - I[r-1, c] ((H-1) x W of them).
    """
    rf_sq = float(np.mean(np.diff(image, axis=1) ** 2)) if image.shape[1] > 1 else 0.0
    cf_sq = float(np.mean(np.diff(image, axis=0) ** 2)) if image.shape[0] > 1 else 0.0
    return float(np.sqrt(rf_sq + cf_sq))


def average_gradient(image: np.ndarray) -> float:
    """AG = mean(sqrt((Gx^2 + Gy^2) / 2)), gradients as ``numpy.gradient`` computes them
    (central differences inside, one-sided differences at the borders)."""
    gy, gx = np.gradient(image)
    return float(np.mean(np.sqrt((gx * gx + gy * gy) / 2.0)))


def _sobel(image: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) -> (gx, gy) Sobel responses, each (H, W) float64."""
    gx = cv2.filter2D(image, cv2.CV_64F, _SOBEL_X, borderType=border)
    gy = cv2.filter2D(image, cv2.CV_64F, _SOBEL_Y, borderType=border)
    return gx, gy


def _strength_ratio(g_src: np.ndarray, g_fused: np.ndarray, equal_value: float) -> np.ndarray:
    """min(g_src, g_fused) / max(g_src, g_fused) per pixel; ``equal_value`` where both are 0."""
    hi = np.maximum(g_src, g_fused)
    lo = np.minimum(g_src, g_fused)
    out = np.full_like(hi, equal_value)
    np.divide(lo, hi, out=out, where=hi > 0)
    return out


# --- Qabf (Xydeas and Petrovic, Electronics Letters 2000) ---------------------------------------------
QABF_TG, QABF_KG, QABF_DG = 0.9994, -15.0, 0.5
QABF_TA, QABF_KA, QABF_DA = 0.9879, -22.0, 0.8


def _qabf_orientation(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Edge orientation atan(gy / gx) in [-pi/2, pi/2]; pi/2 where gx == 0 (as the reference code)."""
    out = np.full_like(gx, np.pi / 2)
    np.arctan(np.divide(gy, gx, out=np.zeros_like(gx), where=gx != 0), out=out, where=gx != 0)
    return out


def _qabf_preservation(g_src, a_src, g_f, a_f) -> np.ndarray:
    """Q^{XF} = Q_g * Q_a, the per-pixel edge preservation of source X in F, (H, W)."""
    g_ratio = _strength_ratio(g_src, g_f, equal_value=1.0)
    a_sim = 1.0 - np.abs(a_src - a_f) / (np.pi / 2)
    q_g = QABF_TG / (1.0 + np.exp(QABF_KG * (g_ratio - QABF_DG)))
    q_a = QABF_TA / (1.0 + np.exp(QABF_KA * (a_sim - QABF_DA)))
    return q_g * q_a


def qabf_perfect_score() -> float:
    """The Qabf of a perfect fusion (F equal to both sources): Q_g(1) * Q_a(1) ~= 0.9748, not exactly 1,
    because the sigmoids saturate just below their gains Tg and Ta."""
    return (QABF_TG / (1.0 + np.exp(QABF_KG * (1.0 - QABF_DG)))) * (
        QABF_TA / (1.0 + np.exp(QABF_KA * (1.0 - QABF_DA)))
    )


def qabf(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> float:
    """Qabf: gradient-based edge preservation (Xydeas and Petrovic 2000), in [0, ~0.975].

    With 3x3 Sobel responses (zero padding, as ``conv2(..., 'same')``) g = sqrt(gx^2 + gy^2) and
    a = atan(gy / gx):

        G^{XF} = min(gX, gF) / max(gX, gF)           (1 where both are equal)
        A^{XF} = 1 - |aX - aF| / (pi / 2)
        Q^{XF} = Tg / (1 + exp(kg (G - Dg))) * Ta / (1 + exp(ka (A - Da)))
        Qabf   = sum(Q^{AF} gA + Q^{BF} gB) / sum(gA + gB)

    with Tg = 0.9994, kg = -15, Dg = 0.5, Ta = 0.9879, ka = -22, Da = 0.8 and weight exponent L = 1.
    (The widely copied MATLAB code sets G = gF instead of 1 when gX == gF; that is a slip we do not copy.)
    """
    border = cv2.BORDER_CONSTANT
    grads = [_sobel(img, border) for img in (ir, vi, fused)]
    mags = [np.hypot(gx, gy) for gx, gy in grads]
    angles = [_qabf_orientation(gx, gy) for gx, gy in grads]
    q_af = _qabf_preservation(mags[0], angles[0], mags[2], angles[2])
    q_bf = _qabf_preservation(mags[1], angles[1], mags[2], angles[2])
    denom = float((mags[0] + mags[1]).sum())
    if denom == 0.0:
        return 0.0
    return float((q_af * mags[0] + q_bf * mags[1]).sum() / denom)


# --- Nabf (Kumar, SIViP 2013: modified fusion-artifacts measure) --------------------------------------
NABF_TD, NABF_WT_MIN, NABF_LG = 2.0, 0.001, 1.5
NABF_NRG, NABF_KG, NABF_SG = 0.9999, 19.0, 0.5
NABF_NRA, NABF_KA, NABF_SA = 0.9995, 22.0, 0.5


def _nabf_orientation(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """atan(gy / gx) (+-pi/2 where gx == 0), and 0 where both responses are 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        angle = np.arctan(gy / gx)
    angle[(gx == 0) & (gy == 0)] = 0.0
    return angle


def _nabf_preservation(g_src, a_src, g_f, a_f) -> np.ndarray:
    """Kumar's Q^{XF} = sqrt(Q_g Q_a), (H, W)."""
    g_ratio = _strength_ratio(g_src, g_f, equal_value=1.0)
    g_ratio[(g_src == 0) | (g_f == 0)] = 0.0
    a_sim = np.abs(np.abs(a_src - a_f) - np.pi / 2) * (2.0 / np.pi)
    q_g = NABF_NRG / (1.0 + np.exp(-NABF_KG * (g_ratio - NABF_SG)))
    q_a = NABF_NRA / (1.0 + np.exp(-NABF_KA * (a_sim - NABF_SA)))
    return np.sqrt(q_g * q_a)


def nabf(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> float:
    """Nabf: fusion artifacts, Kumar's modified measure (SIViP 2013; MATLAB ``analysis_nabf``). Lower is better.

    Sobel responses use MATLAB's ``fspecial('sobel')`` with replicated borders; g = sqrt(gx^2 + gy^2),
    a = atan(gy / gx) (0 where gx = gy = 0). Per source X in {A = IR, B = VI}:

        G^{XF} = min(gX, gF) / max(gX, gF), and 0 where gX or gF is 0
        A^{XF} = | |aX - aF| - pi/2 | * 2 / pi
        Q^{XF} = sqrt( Nrg / (1 + exp(-kg (G - sg))) * Nra / (1 + exp(-ka (A - sa))) )
        wX     = gX^Lg where gX >= Td, else wt_min
        AM     = 1 where gF > gA and gF > gB (the fused edge is stronger than both sources: an artifact), else 0
        Nabf   = sum( AM * ((1 - Q^{AF}) wA + (1 - Q^{BF}) wB) ) / sum(wA + wB)

    with Td = 2, wt_min = 0.001, Lg = 1.5, Nrg = 0.9999, kg = 19, sg = 0.5, Nra = 0.9995, ka = 22, sa = 0.5.
    Nabf is exactly 0 when F equals either source (gF never exceeds that source's strength).
    """
    border = cv2.BORDER_REPLICATE
    grads = [_sobel(img, border) for img in (ir, vi, fused)]
    mags = [np.hypot(gx, gy) for gx, gy in grads]
    angles = [_nabf_orientation(gx, gy) for gx, gy in grads]
    q_af = _nabf_preservation(mags[0], angles[0], mags[2], angles[2])
    q_bf = _nabf_preservation(mags[1], angles[1], mags[2], angles[2])
    w_a = np.where(mags[0] >= NABF_TD, mags[0] ** NABF_LG, NABF_WT_MIN)
    w_b = np.where(mags[1] >= NABF_TD, mags[1] ** NABF_LG, NABF_WT_MIN)
    artifact = (mags[2] > mags[0]) & (mags[2] > mags[1])
    num = float(((1.0 - q_af) * w_a + (1.0 - q_bf) * w_b)[artifact].sum())
    return num / float((w_a + w_b).sum())
