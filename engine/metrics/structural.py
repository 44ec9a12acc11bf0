"""Structural fusion metrics: SSIM (Wang et al. 2004) and pixel-domain VIF (Sheikh and Bovik 2006).

Both take (H, W) float64 grey levels in 0..255 and filter with separable OpenCV kernels.
"""

from __future__ import annotations

import cv2
import numpy as np

SSIM_WIN, SSIM_K1, SSIM_K2, SSIM_L = 7, 0.01, 0.03, 255.0


def ssim_pair(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM of two (H, W) images, as scikit-image's default ``structural_similarity``.

    7x7 uniform window, K1 = 0.01, K2 = 0.03, L = 255, sample (N - 1) covariances, and the mean taken
    over the map without its 3-pixel border (where the window would leave the image).
    """
    win = SSIM_WIN
    pad = (win - 1) // 2
    if min(x.shape) < win:
        raise ValueError(f"SSIM needs images of at least {win}x{win}, got {x.shape[1]}x{x.shape[0]}")
    cov_norm = win * win / (win * win - 1.0)

    def mean(img):
        return cv2.blur(img, (win, win), borderType=cv2.BORDER_REFLECT)

    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1 = (SSIM_K1 * SSIM_L) ** 2
    c2 = (SSIM_K2 * SSIM_L) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s[pad:-pad, pad:-pad].mean())


def ssim(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> float:
    """SSIM: SSIM(F, IR) + SSIM(F, VI); 2 for a fused image equal to both sources."""
    return ssim_pair(fused, ir) + ssim_pair(fused, vi)


VIF_SIGMA_NSQ = 2.0
VIF_SCALES = 4


def _gaussian_kernel_1d(size: int) -> np.ndarray:
    """Normalised 1-D Gaussian of ``size`` taps with sigma = size / 5 (its outer product is
    MATLAB's ``fspecial('gaussian', size, size / 5)``)."""
    sigma = size / 5.0
    x = np.arange(size) - (size - 1) / 2.0
    k = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return k / k.sum()


def _filter_valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering: (H, W) -> (H - n + 1, W - n + 1) for an n-tap kernel."""
    r = (kernel.size - 1) // 2
    full = cv2.sepFilter2D(image, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_CONSTANT)
    return full[r : image.shape[0] - r, r : image.shape[1] - r]


def vif_pair(ref: np.ndarray, dist: np.ndarray) -> float:
    """Pixel-domain VIF of ``dist`` against ``ref`` (Sheikh and Bovik's ``vifp_mscale``).

    Four scales s = 1..4 with Gaussian windows of 2^(5-s)+1 taps (17, 9, 5, 3) and sigma = size / 5; from
    scale 2 on both images are low-passed with that scale's window ('valid') and subsampled by 2. Per
    scale, with local means/variances from the window, g = sigma12 / sigma1^2 and
    sv^2 = sigma2^2 - g sigma12 (the gain-plus-additive-noise channel model):

        VIF = sum_s sum log10(1 + g^2 sigma1^2 / (sv^2 + sigma_nsq)) / sum_s sum log10(1 + sigma1^2 / sigma_nsq)

    with sigma_nsq = 2 and the reference code's guards for flat regions and negative gains.
    Equals 1 when ``dist`` is ``ref``.
    """
    num = 0.0
    den = 0.0
    eps = 1e-10
    for scale in range(1, VIF_SCALES + 1):
        kernel = _gaussian_kernel_1d(2 ** (VIF_SCALES + 1 - scale) + 1)
        if scale > 1:
            ref = _filter_valid(ref, kernel)[::2, ::2]
            dist = _filter_valid(dist, kernel)[::2, ::2]
        if min(ref.shape) < kernel.size:
            break  # image too small for this scale; the coarser scales carry no further terms
        mu1 = _filter_valid(ref, kernel)
        mu2 = _filter_valid(dist, kernel)
        sigma1_sq = np.maximum(_filter_valid(ref * ref, kernel) - mu1 * mu1, 0.0)
        sigma2_sq = np.maximum(_filter_valid(dist * dist, kernel) - mu2 * mu2, 0.0)
        sigma12 = _filter_valid(ref * dist, kernel) - mu1 * mu2

        g = sigma12 / (sigma1_sq + eps)
        sv_sq = sigma2_sq - g * sigma12
        flat_ref = sigma1_sq < eps
        g[flat_ref] = 0.0
        sv_sq[flat_ref] = sigma2_sq[flat_ref]
        sigma1_sq[flat_ref] = 0.0
        flat_dist = sigma2_sq < eps
        g[flat_dist] = 0.0
        sv_sq[flat_dist] = 0.0
        negative = g < 0
        sv_sq[negative] = sigma2_sq[negative]
        g[negative] = 0.0
        sv_sq = np.maximum(sv_sq, eps)

        num += float(np.log10(1.0 + g * g * sigma1_sq / (sv_sq + VIF_SIGMA_NSQ)).sum())
        den += float(np.log10(1.0 + sigma1_sq / VIF_SIGMA_NSQ).sum())
    return num / den if den > 0 else 0.0


def vif(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> float:
    """VIF: VIFF(IR, F) + VIFF(VI, F) (pixel-domain VIF of F against each source); 2 when F = IR = VI."""
    return vif_pair(ir, fused) + vif_pair(vi, fused)
