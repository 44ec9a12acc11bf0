"""Thermal gain control: raw 8/16-bit sensor counts -> an 8-bit image for display and fusion.

Why fixed by default: a per-frame automatic stretch makes the whole picture flicker when a hot object
enters the view (every other pixel changes brightness), which fusion then copies into the output. So
``auto=False`` computes the stretch once (first frame, or explicit counts) and keeps it; ``auto=True``
re-estimates it every frame but smooths the limits over time (exponential moving average).
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

MODES = ("percentile", "minmax", "fixed", "none")


class GainControl:
    """Map raw thermal counts to uint8 with a linear stretch between two limits, optionally + CLAHE.

    Args:
        mode: "percentile" (limits at the ``low``/``high`` percentiles of the frame's histogram), "minmax",
            "fixed" (``low``/``high`` are raw counts, never re-estimated) or "none" (8-bit unchanged,
            16-bit scaled over its full range).
        low, high: percentiles (0-100) for "percentile", raw counts for "fixed".
        clahe: apply contrast-limited adaptive histogram equalisation after the stretch (local contrast).
        clip_limit: CLAHE clip limit.
        auto: re-estimate the limits every frame (smoothed); False = fixed after the first frame.
        smoothing: weight of the previous limits in auto mode (0 = no smoothing, 0.9 = slow).
    """

    def __init__(self, mode: str = "percentile", low: float = 1.0, high: float = 99.0, clahe: bool = False,
                 clip_limit: float = 2.0, auto: bool = False, smoothing: float = 0.9) -> None:
        if mode not in MODES:
            raise ValueError(f"gain mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "percentile" and not (0.0 <= low < high <= 100.0):
            raise ValueError(f"gain percentiles need 0 <= low < high <= 100, got low={low}, high={high}")
        if mode == "fixed" and not low < high:
            raise ValueError(f"fixed gain needs low < high raw counts, got low={low}, high={high}")
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"gain smoothing must be in [0, 1), got {smoothing}")
        if clip_limit <= 0:
            raise ValueError(f"CLAHE clip limit must be positive, got {clip_limit}")
        self.mode, self.low, self.high = mode, float(low), float(high)
        self.clahe, self.clip_limit = bool(clahe), float(clip_limit)
        self.auto, self.smoothing = bool(auto), float(smoothing)
        self._clahe = cv2.createCLAHE(clipLimit=self.clip_limit, tileGridSize=(8, 8)) if clahe else None
        self._lock = threading.Lock()
        self._limits: tuple[float, float] | None = (self.low, self.high) if mode == "fixed" else None
        self._locked = mode == "fixed"
        self._lut_key: tuple | None = None
        self._lut: np.ndarray | None = None

    @property
    def limits(self) -> tuple[float, float] | None:
        """Raw counts mapped to 0 and 255 (None before the first frame)."""
        return self._limits

    def lock(self) -> None:
        """Freeze the current stretch (also in auto mode) until :meth:`reset`."""
        with self._lock:
            self._locked = self._limits is not None

    def reset(self) -> None:
        """Forget the stretch: the next frame estimates it again ("fixed" mode keeps its counts)."""
        with self._lock:
            if self.mode == "fixed":
                self._limits, self._locked = (self.low, self.high), True
            else:
                self._limits, self._locked = None, False

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """(H, W) or (H, W, C) uint8/uint16 raw thermal -> (H, W) uint8."""
        image = np.asarray(raw)
        if image.ndim == 3:
            image = image[..., 0] if image.shape[2] in (3, 4) and _channels_equal(image) else \
                cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
        if image.ndim != 2:
            raise ValueError(f"thermal frame must be (H, W) or (H, W, 3), got shape {raw.shape}")
        if image.dtype not in (np.uint8, np.uint16):
            if not np.issubdtype(image.dtype, np.floating):
                raise ValueError(f"thermal frame must be uint8, uint16 or float, got {image.dtype}")
            # float input: treat it as counts on a 16-bit scale (values in [0, 1] map to the full range)
            scale = 65535.0 if float(np.nanmax(image)) <= 1.0 else 1.0
            image = np.clip(np.nan_to_num(image) * scale, 0, 65535).astype(np.uint16)
        if self.mode == "none":
            out = image if image.dtype == np.uint8 else (image >> 8).astype(np.uint8)
        else:
            lo, hi = self._update_limits(image)
            out = self._stretch(image, lo, hi)
        if self._clahe is not None:
            out = self._clahe.apply(out)
        return out

    # ----- internals -------------------------------------------------------------------------------------
    def _update_limits(self, image: np.ndarray) -> tuple[float, float]:
        with self._lock:
            if self._locked and self._limits is not None:
                return self._limits
            new = self._estimate(image)
            if self._limits is None or not self.auto:
                self._limits = new
            else:
                s = self.smoothing
                old = self._limits
                self._limits = (s * old[0] + (1 - s) * new[0], s * old[1] + (1 - s) * new[1])
            if not self.auto:
                self._locked = True  # fixed after the first frame: identical mapping for every later frame
            return self._limits

    def _estimate(self, image: np.ndarray) -> tuple[float, float]:
        """Stretch limits of one frame from its histogram (bincount is far faster than np.percentile)."""
        hist = np.bincount(image.ravel(), minlength=256 if image.dtype == np.uint8 else 65536)
        cdf = np.cumsum(hist)
        total = cdf[-1]
        if self.mode == "minmax":
            lo_q, hi_q = 0.0, 100.0
        else:
            lo_q, hi_q = self.low, self.high
        lo = float(np.searchsorted(cdf, total * lo_q / 100.0, side="left" if lo_q > 0 else "right"))
        hi = float(np.searchsorted(cdf, total * hi_q / 100.0, side="left"))
        if lo_q == 0:
            lo = float(np.flatnonzero(hist)[0])
        if hi <= lo:  # a flat frame: avoid a division by zero, map it to mid-grey-ish
            hi = lo + 1.0
        return lo, hi

    def _stretch(self, image: np.ndarray, lo: float, hi: float) -> np.ndarray:
        """Linear map [lo, hi] -> [0, 255] through a cached lookup table (one gather per pixel)."""
        size = 256 if image.dtype == np.uint8 else 65536
        key = (size, lo, hi)
        if key != self._lut_key:
            counts = np.arange(size, dtype=np.float32)
            self._lut = np.clip((counts - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)
            self._lut_key = key
        lut = self._lut
        if size == 256:
            return cv2.LUT(image, lut)
        return lut[image]


def _channels_equal(image: np.ndarray) -> bool:
    """3-channel thermal files (e.g. TNO PNGs) store the same value three times: take one plane."""
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2]))
