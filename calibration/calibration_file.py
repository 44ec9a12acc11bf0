"""The versioned YAML calibration file: which homography maps thermal pixels onto colour pixels.

Example::

    version: 1
    ir_size: [640, 512]          # [width, height] of the thermal frames
    rgb_size: [1280, 720]        # [width, height] of the colour frames
    homography:                  # thermal pixel (x, y, 1) -> colour pixel, up to scale
      - [2.0, 0.01, 12.5]
      - [-0.01, 2.0, -30.1]
      - [0.0, 0.0, 1.0]
    direction: ir_to_rgb         # ir_to_rgb: thermal warped onto the colour grid; rgb_to_ir: the opposite
    method: points               # points | checkerboard | auto | identity
    reprojection_error_px: 0.42  # RMS on the calibration data (null when not measured)
    created: '2026-11-22T19:30:00+00:00'

``ir_size``/``rgb_size`` may be null when the tool that made the file did not know them; they are then
taken from the first frames.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from .errors import CalibrationError

CALIBRATION_VERSION = 1
DIRECTIONS = ("ir_to_rgb", "rgb_to_ir")
REQUIRED_KEYS = ("version", "ir_size", "rgb_size", "homography")
ASPECT_TOLERANCE = 0.01  # frames whose aspect ratio differs by more than this are another field of view


@dataclass
class Calibration:
    """A thermal -> colour homography with the frame sizes it was made for.

    Attributes:
        homography: (3, 3) float64, maps thermal pixel (x, y, 1) to colour pixel coordinates (up to scale).
        ir_size, rgb_size: (width, height), or None when unknown.
        direction: "ir_to_rgb" (fuse on the colour grid) or "rgb_to_ir" (fuse on the thermal grid).
    """

    homography: np.ndarray
    ir_size: tuple[int, int] | None = None
    rgb_size: tuple[int, int] | None = None
    direction: str = "ir_to_rgb"
    method: str = "unknown"
    reprojection_error_px: float | None = None
    created: str = field(default_factory=lambda: _dt.datetime.now().astimezone().isoformat(timespec="seconds"))
    extra: dict = field(default_factory=dict)  # tool-specific notes (inliers, views used, ECC score)
    version: int = CALIBRATION_VERSION

    def __post_init__(self) -> None:
        self.homography = _check_homography(self.homography)
        self.ir_size = _check_size("ir_size", self.ir_size)
        self.rgb_size = _check_size("rgb_size", self.rgb_size)
        if self.direction not in DIRECTIONS:
            raise CalibrationError(f"calibration key 'direction' must be one of {', '.join(DIRECTIONS)}, "
                                   f"got {self.direction!r}")

    def check_frames(self, ir_shape: tuple, rgb_shape: tuple) -> None:
        """Raise CalibrationError (naming both sizes) when frame sizes differ from the ones the file was made for.

        Strict; :meth:`adapted_to` (what :class:`Registrar` uses) rescales when the aspect ratios match.
        """
        for key, size, shape in (("ir_size", self.ir_size, ir_shape), ("rgb_size", self.rgb_size, rgb_shape)):
            if size is not None and (shape[1], shape[0]) != tuple(size):
                what = "thermal" if key == "ir_size" else "colour"
                raise CalibrationError(f"{what} frames are {shape[1]}x{shape[0]} but the calibration file's "
                                       f"'{key}' is {size[0]}x{size[1]}; recalibrate for this camera mode")

    def adapted_to(self, ir_size: tuple[int, int], rgb_size: tuple[int, int]) -> "Calibration":
        """This calibration for frames of (w, h) ``ir_size`` and ``rgb_size``.

        Returns ``self`` when the sizes match (or the file names none). When a camera's frames have another
        size but the same aspect ratio (within ``ASPECT_TOLERANCE``), the camera is taken to deliver the
        same view at another resolution (binning, a lower streaming mode) and the homography is rescaled
        (pixel-centre convention, as ``cv2.resize``). Another aspect ratio means another field of view
        (a crop): CalibrationError naming both sizes.
        """
        scales = []
        for key, old, new in (("ir_size", self.ir_size, ir_size), ("rgb_size", self.rgb_size, rgb_size)):
            what = "thermal" if key == "ir_size" else "colour"
            if old is None or tuple(new) == tuple(old):
                scales.append(np.eye(3))
                continue
            fx, fy = new[0] / old[0], new[1] / old[1]
            if abs(fx / fy - 1.0) > ASPECT_TOLERANCE:
                raise CalibrationError(f"{what} frames are {new[0]}x{new[1]} but the calibration file's '{key}' is "
                                       f"{old[0]}x{old[1]} (another aspect ratio, so another field of view); "
                                       f"recalibrate for this camera mode")
            scales.append(np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1.0]]))
        if all(np.array_equal(m, np.eye(3)) for m in scales):
            return self
        s_ir, s_rgb = scales
        return Calibration(homography=s_rgb @ self.homography @ np.linalg.inv(s_ir),
                           ir_size=tuple(ir_size) if self.ir_size else None,
                           rgb_size=tuple(rgb_size) if self.rgb_size else None, direction=self.direction,
                           method=self.method, reprojection_error_px=None, created=self.created,
                           extra={**self.extra, "adapted_from": {"ir_size": list(self.ir_size or []),
                                                                 "rgb_size": list(self.rgb_size or [])}})

    def map_ir_points(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) thermal pixel coordinates -> (N, 2) colour pixel coordinates."""
        return apply_homography(self.homography, points)

    def to_dict(self) -> dict:
        data = {
            "version": self.version,
            "ir_size": list(self.ir_size) if self.ir_size else None,
            "rgb_size": list(self.rgb_size) if self.rgb_size else None,
            "homography": [[float(v) for v in row] for row in self.homography],
            "direction": self.direction,
            "method": self.method,
            "reprojection_error_px": None if self.reprojection_error_px is None
            else float(self.reprojection_error_px),
            "created": self.created,
        }
        if self.extra:
            data["extra"] = self.extra
        return data

    @classmethod
    def from_dict(cls, data, source: str = "calibration") -> "Calibration":
        if not isinstance(data, dict):
            raise CalibrationError(f"{source}: not a calibration mapping (got {type(data).__name__})")
        missing = [k for k in REQUIRED_KEYS if k not in data]
        if missing:
            raise CalibrationError(f"{source}: missing key '{missing[0]}'"
                                   + (f" (also {', '.join(missing[1:])})" if len(missing) > 1 else ""))
        if data["version"] != CALIBRATION_VERSION:
            raise CalibrationError(f"{source}: unsupported 'version' {data['version']!r} "
                                   f"(this program reads version {CALIBRATION_VERSION})")
        error = data.get("reprojection_error_px")
        if error is not None and not isinstance(error, (int, float)):
            raise CalibrationError(f"{source}: 'reprojection_error_px' must be a number, got {error!r}")
        try:
            return cls(homography=data["homography"], ir_size=data["ir_size"], rgb_size=data["rgb_size"],
                       direction=data.get("direction", "ir_to_rgb"), method=str(data.get("method", "unknown")),
                       reprojection_error_px=error, created=str(data.get("created", "")),
                       extra=dict(data.get("extra") or {}))
        except CalibrationError as exc:
            raise CalibrationError(f"{source}: {exc}") from None


def _check_size(key: str, size) -> tuple[int, int] | None:
    if size is None:
        return None
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)
            or min(size) <= 0):
        raise CalibrationError(f"calibration key '{key}' must be [width, height] in positive pixels, got {size!r}")
    return int(size[0]), int(size[1])


def _check_homography(value) -> np.ndarray:
    try:
        h = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError("calibration key 'homography' must be a 3x3 list of numbers") from None
    if h.shape != (3, 3):
        raise CalibrationError(f"calibration key 'homography' must be 3x3, got shape {list(h.shape)}")
    if not np.all(np.isfinite(h)):
        raise CalibrationError("calibration key 'homography' contains non-finite numbers")
    scale = np.abs(h).max()
    if scale == 0 or abs(np.linalg.det(h / scale)) < 1e-12 or np.linalg.cond(h) > 1e12:
        raise CalibrationError("calibration key 'homography' is singular (it would collapse the image)")
    if h[2, 2] != 0:
        h = h / h[2, 2]
    return h


def apply_homography(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) points through the 3x3 homography ``h`` -> (N, 2)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    homog = np.hstack([pts, np.ones((len(pts), 1))]) @ np.asarray(h, dtype=np.float64).T
    return homog[:, :2] / homog[:, 2:3]


def corner_rms(h_true: np.ndarray, h_est: np.ndarray, size: tuple[int, int]) -> float:
    """RMS distance (pixels) between where two homographies send the 4 corners of a (w, h) image."""
    w, hgt = size
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, hgt - 1], [0, hgt - 1]], np.float64)
    diff = apply_homography(h_true, corners) - apply_homography(h_est, corners)
    return float(math.sqrt(np.mean(np.sum(diff ** 2, axis=1))))


def load_calibration(path: str | Path) -> Calibration:
    """Read and validate a calibration YAML file; CalibrationError names the file and the bad key."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CalibrationError(f"calibration file {path} is not valid YAML: {exc}") from None
    return Calibration.from_dict(data, source=f"calibration file {path}")


def save_calibration(calibration: Calibration, path: str | Path) -> Path:
    """Write ``calibration`` as YAML (folders created)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(calibration.to_dict(), sort_keys=False, default_flow_style=None))
    except OSError as exc:
        raise CalibrationError(f"cannot write calibration file {path}: {exc}") from None
    return path
