"""`Registrar`: puts a thermal and a colour frame on one pixel grid with a calibration's homography.

The per-pixel source coordinates are computed once (for the frame sizes) and converted to OpenCV's
fixed-point maps, so each frame costs a single ``cv2.remap`` (the same result as ``warpPerspective``
without recomputing the projective transform per pixel).
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from .calibration_file import Calibration
from .errors import CalibrationError


def homography_maps(h_dst_to_src: np.ndarray, dst_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Remap tables for an output grid of ``dst_size`` (w, h): (h, w, 2) int16 and (h, w) uint16 maps.

    ``h_dst_to_src`` maps an output pixel (x, y, 1) to the source pixel it samples.
    """
    w, h = dst_size
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    m = h_dst_to_src
    denom = m[2, 0] * xs + m[2, 1] * ys + m[2, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        map_x = ((m[0, 0] * xs + m[0, 1] * ys + m[0, 2]) / denom).astype(np.float32)
        map_y = ((m[1, 0] * xs + m[1, 1] * ys + m[1, 2]) / denom).astype(np.float32)
    # Points behind the camera plane (denom <= 0) sample nothing.
    bad = ~np.isfinite(map_x) | ~np.isfinite(map_y) | (denom <= 0)
    map_x[bad], map_y[bad] = -1e6, -1e6
    map_x = np.clip(map_x, -32000, 32000)
    map_y = np.clip(map_y, -32000, 32000)
    return cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)


class Registrar:
    """Register frame pairs with a :class:`Calibration`.

    ``register(ir, rgb)`` -> (ir_on_grid, rgb_on_grid): with ``direction="ir_to_rgb"`` the thermal frame
    is warped onto the colour grid (colour unchanged); with ``"rgb_to_ir"`` the colour frame is warped onto
    the thermal grid. Pixels outside the warped image are 0. Thread-safe.

    Frames of another size than the calibration's: see :meth:`prepare` (rescaled when the aspect ratios
    match, CalibrationError naming both sizes otherwise).
    """

    def __init__(self, calibration: Calibration) -> None:
        if not isinstance(calibration, Calibration):
            raise CalibrationError(f"Registrar needs a Calibration, got {type(calibration).__name__}")
        self.calibration = calibration
        self._lock = threading.Lock()
        self._maps: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._adapted: dict[tuple, Calibration] = {}  # per frame-size pair: the calibration adapted to it

    @classmethod
    def identity(cls, ir_size: tuple[int, int] | None = None, rgb_size: tuple[int, int] | None = None) -> "Registrar":
        """No calibration: thermal scaled to the colour frame (pure identity when the sizes are equal)."""
        h = np.eye(3)
        if ir_size is not None and rgb_size is not None:
            h = np.diag([rgb_size[0] / ir_size[0], rgb_size[1] / ir_size[1], 1.0])
        return cls(Calibration(homography=h, ir_size=ir_size, rgb_size=rgb_size, method="identity"))

    @property
    def direction(self) -> str:
        return self.calibration.direction

    def prepare(self, ir_shape: tuple, rgb_shape: tuple) -> str | None:
        """Check the calibration against frames of these shapes ((H, W) or (H, W, C)), adapting it if it can.

        Returns None when the sizes are the calibration's (or it names none), a one-line note when the
        homography was rescaled for frames of another size with the same aspect ratios (show it once), and
        raises CalibrationError, one line naming both sizes, when it cannot adapt (another aspect ratio).
        ``register`` calls it itself (once per frame size), so a caller may also just catch the error there.
        """
        key = (tuple(ir_shape[:2]), tuple(rgb_shape[:2]))
        with self._lock:
            if key not in self._adapted:
                ir_size, rgb_size = (ir_shape[1], ir_shape[0]), (rgb_shape[1], rgb_shape[0])
                self._adapted[key] = self.calibration.adapted_to(ir_size, rgb_size)  # raises when it cannot
            adapted = self._adapted[key]
        if adapted is self.calibration:
            return None
        cal = self.calibration
        sizes = (f"thermal {cal.ir_size[0]}x{cal.ir_size[1]}" if cal.ir_size else "",
                 f"colour {cal.rgb_size[0]}x{cal.rgb_size[1]}" if cal.rgb_size else "")
        return (f"calibration made for {', '.join(s for s in sizes if s)}; frames are thermal {ir_shape[1]}x{ir_shape[0]}, "
                f"colour {rgb_shape[1]}x{rgb_shape[0]}: homography rescaled (same aspect ratios)")

    def _maps_for(self, ir_shape: tuple, rgb_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
        self.prepare(ir_shape, rgb_shape)
        key = (tuple(ir_shape[:2]), tuple(rgb_shape[:2]))
        with self._lock:
            maps = self._maps.get(key)
            if maps is None:
                h = self._adapted[key].homography
                if self.direction == "ir_to_rgb":  # output = colour grid; sample thermal at H^-1 p
                    maps = homography_maps(np.linalg.inv(h), (rgb_shape[1], rgb_shape[0]))
                else:  # output = thermal grid; sample colour at H p
                    maps = homography_maps(h, (ir_shape[1], ir_shape[0]))
                self._maps[key] = maps
            return maps

    def register(self, ir: np.ndarray, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Hi, Wi[, C]) thermal and (Hc, Wc[, 3]) colour -> both on one grid (dtype and channels kept)."""
        if ir is None or rgb is None or ir.ndim not in (2, 3) or rgb.ndim not in (2, 3):
            raise CalibrationError("register() needs two images, (H, W) or (H, W, C)")
        map1, map2 = self._maps_for(ir.shape, rgb.shape)
        if self.direction == "ir_to_rgb":
            return cv2.remap(ir, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0), rgb
        return ir, cv2.remap(rgb, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def warp_ir(self, ir: np.ndarray, rgb_shape: tuple) -> np.ndarray:
        """Thermal image onto the colour grid of ``rgb_shape``, whatever the direction (overlays, checks)."""
        map1, map2 = homography_maps(np.linalg.inv(self.calibration.homography), (rgb_shape[1], rgb_shape[0]))
        return cv2.remap(ir, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
