"""Cross-modal structure maps: what a thermal and a visible image of one scene have in common.

Intensities do not correspond across the two cameras (a warm dark coat is bright in thermal), edges
mostly do, and their orientation does up to the sign (the contrast may invert), so:

* ``gradient_map``: gradient magnitude, normalised per image (what the alignment is fitted on);
* ``orientation_field``: the doubled-angle gradient orientation ``w * exp(2i theta)`` with a saturating
  weight ``w`` (what the independent alignment score is computed on; contrast-sign invariant).

Also the masks the fitting needs: the empty border of an already-warped image, and a checkerboard of
tiles that splits the structure into two halves, one to fit on and one held out.
"""

from __future__ import annotations

import cv2
import numpy as np


def to_gray32(image: np.ndarray) -> np.ndarray:
    """(H, W) float32 in 0..1 from a (H, W) or (H, W, C) image of any dtype (min-max stretched)."""
    img = np.asarray(image)
    if img.ndim == 3:
        if img.shape[2] == 1:
            img = img[:, :, 0]
        else:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    img = img.astype(np.float32)
    low, high = float(img.min()), float(img.max())
    return (img - low) / (high - low) if high > low else np.zeros_like(img)


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


def orientation_field(gray: np.ndarray, sigma: float, knee: float | None = None) -> tuple[np.ndarray, float]:
    """Doubled-angle orientation field of a (H, W) image -> ((H, W, 2) float32 [real, imaginary], knee used).

    ``z = m / (m + knee) * exp(2i theta)``: a contrast inversion (theta + pi) gives the same z, and the
    weight saturates so that strong edges count about equally in both modalities. ``knee`` defaults to
    the 90th percentile of the magnitude; pass the one of the unwarped image when scoring a warped copy
    (its empty border would change the percentile). Real and imaginary parts are kept as two float32
    planes (faster than complex arithmetic): cos 2theta = (gx^2 - gy^2) / m^2, sin 2theta = 2 gx gy / m^2.
    """
    smooth = cv2.GaussianBlur(gray, (0, 0), sigma) if sigma > 0 else gray
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    mag = cv2.magnitude(gx, gy)
    if knee is None:
        knee = float(np.percentile(mag, 90)) or 1e-6
    # m / (m + k) / m^2 = 1 / (m (m + k)); tiny magnitudes (flat areas) get a weight near 0 either way
    scale = cv2.divide(1.0, cv2.multiply(mag, cv2.add(mag, knee)) + 1e-12)
    real = cv2.multiply(cv2.subtract(cv2.multiply(gx, gx), cv2.multiply(gy, gy)), scale)
    imag = cv2.multiply(cv2.multiply(gx, gy), scale, scale=2.0)
    return cv2.merge([real, imag]), knee


def empty_border(gray: np.ndarray, reach: float = 0.2) -> np.ndarray:
    """(H, W) uint8 mask, 255 where the image has content, 0 on an empty (exactly black) border.

    An image that was warped before it reached us (a test pair, a rectified stream) has a wedge of
    exact zeros along its edges; its outline is a strong straight edge that belongs to no scene. Only
    zeros connected to the image edge and within ``reach`` of the smaller side from it count, so a
    black night sky in the middle of the frame stays.
    """
    h, w = gray.shape
    zero = (gray <= 0).astype(np.uint8)
    count, labels = cv2.connectedComponents(zero, connectivity=4)
    valid = np.full((h, w), 255, np.uint8)
    if count <= 1:
        return valid
    edge_labels = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    yy, xx = np.mgrid[0:h, 0:w]
    near_edge = np.minimum(np.minimum(yy, h - 1 - yy), np.minimum(xx, w - 1 - xx)) <= reach * min(h, w)
    for label in edge_labels:
        if label == 0:
            continue
        valid[(labels == label) & near_edge] = 0
    return valid


def checker_tiles(size: tuple[int, int], tiles: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Two complementary (H, W) uint8 masks (255 = in) of a ``tiles`` x ``tiles`` checkerboard on a (w, h) grid."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    first = (((yy * tiles) // h + (xx * tiles) // w) % 2 == 0)
    return first.astype(np.uint8) * 255, (~first).astype(np.uint8) * 255
