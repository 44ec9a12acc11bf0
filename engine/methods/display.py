"""Display modes a thermal-camera user expects: false-colour palettes, alpha blending and an MSX-style
edge overlay. All are colour methods (``produces_color = True``) returning (H, W, 3) BGR float32 in [0, 1].

Palettes are 256-entry BGR look-up tables indexed by the 8-bit thermal level (0 = coldest):

* ``white_hot``: hot is white (identity gray ramp).
* ``black_hot``: hot is black (inverted ramp), favoured for spotting warm bodies against bright sky.
* ``ironbow``: black -> deep blue -> purple -> red -> orange -> yellow -> white, the classic "iron"
  palette of thermography; its anchors were chosen so the luminance rises monotonically with temperature,
  so it reads correctly even when printed in gray.
* ``rainbow``: violet -> blue -> cyan -> green -> yellow -> red -> white, maximum hue separation for
  small temperature differences (its luminance is not monotonic; that is the known price of rainbow maps).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import FusionInputError
from ..registry import register_method
from .base import FusionMethod

# (position in [0, 1], (R, G, B)) anchors, written in RGB because that is how colours are usually quoted.
IRONBOW_ANCHORS_RGB: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.00, (0, 0, 0)),
    (0.15, (32, 0, 140)),  # deep blue
    (0.35, (145, 0, 155)),  # purple / magenta
    (0.55, (225, 45, 30)),  # red
    (0.72, (250, 130, 0)),  # orange
    (0.88, (255, 215, 30)),  # yellow
    (1.00, (255, 255, 255)),
)
RAINBOW_ANCHORS_RGB: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.00, (60, 0, 120)),  # violet
    (0.18, (0, 0, 255)),  # blue
    (0.36, (0, 230, 255)),  # cyan
    (0.52, (0, 220, 0)),  # green
    (0.68, (255, 240, 0)),  # yellow
    (0.86, (255, 0, 0)),  # red
    (1.00, (255, 255, 255)),
)


def lut_from_anchors(anchors) -> np.ndarray:
    """Piecewise-linear 256-entry colour map.

    Args:
        anchors: sequence of (position in [0, 1], (R, G, B) 0..255), positions increasing from 0 to 1.

    Returns:
        (256, 3) uint8 LUT in BGR order.
    """
    pos = np.array([a[0] for a in anchors], dtype=np.float64)
    rgb = np.array([a[1] for a in anchors], dtype=np.float64)
    t = np.linspace(0.0, 1.0, 256)
    channels = [np.interp(t, pos, rgb[:, c]) for c in (2, 1, 0)]  # B, G, R
    return np.clip(np.rint(np.stack(channels, axis=1)), 0, 255).astype(np.uint8)


def _gray_lut(inverted: bool) -> np.ndarray:
    ramp = np.arange(256, dtype=np.uint8)
    if inverted:
        ramp = 255 - ramp
    return np.repeat(ramp[:, None], 3, axis=1)


#: palette name -> (256, 3) uint8 BGR LUT, in menu order.
PALETTES: dict[str, np.ndarray] = {
    "white_hot": _gray_lut(inverted=False),
    "black_hot": _gray_lut(inverted=True),
    "ironbow": lut_from_anchors(IRONBOW_ANCHORS_RGB),
    "rainbow": lut_from_anchors(RAINBOW_ANCHORS_RGB),
}


def _lut(name: str) -> np.ndarray:
    try:
        return PALETTES[name]
    except KeyError:
        raise FusionInputError(f"unknown palette {name!r}; available: {', '.join(PALETTES)}") from None


def apply_palette(gray01: np.ndarray, name: str) -> np.ndarray:
    """Colour a thermal image with a palette.

    Args:
        gray01: (H, W) float in [0, 1] (0 = coldest).
        name: a key of :data:`PALETTES`.

    Returns:
        (H, W, 3) BGR float32 in [0, 1].
    """
    lut = _lut(name)
    # OpenCV rounds and saturates to 0..255 (negatives clamped first: convertScaleAbs would mirror them);
    # cv2.LUT on 3 channels is several times faster than NumPy fancy indexing at 640x480.
    index = cv2.convertScaleAbs(cv2.max(gray01.astype(np.float32, copy=False), 0.0), alpha=255.0)
    bgr = cv2.LUT(cv2.cvtColor(index, cv2.COLOR_GRAY2BGR), lut[None])
    return bgr.astype(np.float32) * np.float32(1.0 / 255.0)


def _visible_bgr(vi: np.ndarray) -> np.ndarray:
    """(H, W) gray or (H, W, 3) BGR float -> (H, W, 3) BGR float32."""
    vi = vi.astype(np.float32, copy=False)
    return np.repeat(vi[:, :, None], 3, axis=2) if vi.ndim == 2 else vi[:, :, :3]


def _visible_luma(vi: np.ndarray) -> np.ndarray:
    """(H, W) gray or (H, W, 3) BGR float -> (H, W) float32 luminance."""
    vi = vi.astype(np.float32, copy=False)
    return vi if vi.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(vi[:, :, :3]), cv2.COLOR_BGR2GRAY)


class PaletteDisplay(FusionMethod):
    """The thermal image alone, shown through a palette (the visible image is ignored)."""

    produces_color = True
    palette: str = ""

    def fuse(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """(H, W) float32 IR in [0, 1] -> (H, W, 3) BGR float32."""
        return apply_palette(ir, self.palette)


@register_method("white_hot", "thermal only, white-hot gray palette")
class WhiteHot(PaletteDisplay):
    palette = "white_hot"


@register_method("black_hot", "thermal only, black-hot (inverted) gray palette")
class BlackHot(PaletteDisplay):
    palette = "black_hot"


@register_method("ironbow", "thermal only, ironbow palette (black-blue-red-yellow-white)")
class Ironbow(PaletteDisplay):
    palette = "ironbow"


@register_method("rainbow", "thermal only, rainbow palette")
class Rainbow(PaletteDisplay):
    palette = "rainbow"


@register_method("alpha_blend", "palette-coloured thermal blended over the visible colour image")
class AlphaBlend(FusionMethod):
    """out = alpha * palette(IR) + (1 - alpha) * VIS.

    Args:
        alpha: weight of the thermal layer in [0, 1] (default 0.5).
        palette: a :data:`PALETTES` name (default ``ironbow``).
    """

    produces_color = True

    def __init__(self, alpha: float = 0.5, palette: str = "ironbow") -> None:
        if not 0.0 <= alpha <= 1.0:
            raise FusionInputError(f"alpha must be in [0, 1], got {alpha}")
        _lut(palette)
        self.alpha = float(alpha)
        self.palette = palette

    def fuse(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """(H, W) IR, (H, W) or (H, W, 3) BGR VIS, float32 in [0, 1] -> (H, W, 3) BGR float32."""
        thermal = apply_palette(ir, self.palette)
        # both layers are in [0, 1], so the convex combination needs no clipping
        return cv2.addWeighted(thermal, self.alpha, np.ascontiguousarray(_visible_bgr(vi)), 1.0 - self.alpha, 0.0)


@register_method("msx", "visible edges embossed on the thermal palette (FLIR MSX style)")
class MsxOverlay(FusionMethod):
    """Multi-spectral dynamic imaging in the manner of FLIR MSX: the high-pass of the visible luminance
    (VIS_Y minus its Gaussian blur) is added onto the palette image's luminance. Adding the same value to
    B, G and R changes Y by that value and leaves Cr/Cb untouched, so the thermal colours stay readable.

    Args:
        strength: gain of the visible detail (default 1.0; 0 gives the plain palette).
        palette: a :data:`PALETTES` name (default ``ironbow``).
        sigma: Gaussian sigma in pixels separating detail from the visible scene's low frequencies (default 2.0).
    """

    produces_color = True

    def __init__(self, strength: float = 1.0, palette: str = "ironbow", sigma: float = 2.0) -> None:
        if strength < 0:
            raise FusionInputError(f"strength must be >= 0, got {strength}")
        if sigma <= 0:
            raise FusionInputError(f"sigma must be > 0, got {sigma}")
        _lut(palette)
        self.strength = float(strength)
        self.palette = palette
        self.sigma = float(sigma)

    def visible_detail(self, vi: np.ndarray) -> np.ndarray:
        """(H, W) or (H, W, 3) float VIS -> (H, W) float32 signed high-pass of its luminance."""
        y = _visible_luma(vi)
        return y - cv2.GaussianBlur(y, (0, 0), self.sigma, borderType=cv2.BORDER_REFLECT)

    def fuse(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """(H, W) IR, (H, W) or (H, W, 3) BGR VIS, float32 in [0, 1] -> (H, W, 3) BGR float32."""
        thermal = apply_palette(ir, self.palette)
        detail = np.float32(self.strength) * self.visible_detail(vi)
        return np.clip(thermal + detail[:, :, None], 0.0, 1.0)
