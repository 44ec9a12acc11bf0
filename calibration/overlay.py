"""Overlay images to judge a calibration by eye: thermal edges over the colour image, and a mosaic."""

from __future__ import annotations

import cv2
import numpy as np

from .checkerboard import to_gray8
from .registrar import Registrar

EDGE_COLOUR = (255, 0, 255)  # magenta (BGR): stands out on natural colours


def edge_overlay(ir_on_grid: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) colour image dimmed, with the registered thermal image's edges drawn on it."""
    ir8 = to_gray8(ir_on_grid)
    edges = cv2.Canny(cv2.GaussianBlur(ir8, (0, 0), 1.5), 40, 100)
    dimmed = (to_gray8(rgb).astype(np.float32) * 0.7).astype(np.uint8)  # grey, so the colour edges stand out
    out = cv2.cvtColor(dimmed, cv2.COLOR_GRAY2BGR)
    out[edges > 0] = EDGE_COLOUR
    return out


def checker_mosaic(ir_on_grid: np.ndarray, rgb: np.ndarray, tiles: int = 8) -> np.ndarray:
    """(H, W, 3): alternate squares of thermal and colour; misalignment shows as broken lines at the seams."""
    h, w = rgb.shape[:2]
    ir_bgr = cv2.cvtColor(to_gray8(ir_on_grid), cv2.COLOR_GRAY2BGR)
    rgb_bgr = rgb if rgb.ndim == 3 else cv2.cvtColor(to_gray8(rgb), cv2.COLOR_GRAY2BGR)
    size = max(8, max(h, w) // tiles)
    yy, xx = np.mgrid[0:h, 0:w]
    pick_ir = ((yy // size + xx // size) % 2).astype(bool)
    out = rgb_bgr.copy()
    out[pick_ir] = ir_bgr[pick_ir]
    return out


def check_image(registrar: Registrar, ir: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Side by side: edge overlay | checker mosaic, on the colour grid, with labels."""
    ir_on = registrar.warp_ir(ir, rgb.shape)
    rgb_bgr = rgb if rgb.ndim == 3 else cv2.cvtColor(to_gray8(rgb), cv2.COLOR_GRAY2BGR)
    panels = [edge_overlay(ir_on, rgb_bgr), checker_mosaic(ir_on, rgb_bgr)]
    for panel, text in zip(panels, ("thermal edges on colour", "thermal / colour mosaic")):
        cv2.putText(panel, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(panel, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return np.hstack(panels)
