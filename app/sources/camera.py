"""`CameraSource`: a live camera through cv2.VideoCapture (device index, /dev/videoN, URL or GStreamer pipeline)."""

from __future__ import annotations

import time

import cv2
import numpy as np

from ..errors import SourceError
from .base import Frame, FrameSource


def _parse_device(device: int | str) -> int | str:
    """"0" -> 0 (an index); anything else (path, URL, pipeline) is passed to OpenCV unchanged."""
    if isinstance(device, str) and device.strip().isdigit():
        return int(device.strip())
    return device


def opencv_has_gstreamer() -> bool:
    """True when the installed OpenCV was built with its GStreamer backend (``cv2.getBuildInformation()``)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return line.split(":", 1)[1].strip().upper().startswith("YES")
    return False


class CameraSource(FrameSource):
    """A live camera.

    Args:
        device: index (0), device path (/dev/video0), URL (rtsp://...) or a GStreamer pipeline (contains "!").
        name: what status messages call it ("thermal camera").
        fourcc: optional 4-character pixel format to request (e.g. "MJPG", "Y16 ").
        y16: request raw 16-bit frames (thermal cores with a Y16 mode); frames are then (H, W) uint16.

    Timestamps are ``time.monotonic()`` at grab, so two cameras share one clock and can be paired.
    ``read()`` raises ``SourceError`` when the camera stops answering; the capture thread reconnects.
    """

    is_live = True

    def __init__(self, device: int | str, name: str = "camera", fourcc: str | None = None, y16: bool = False) -> None:
        self.device = _parse_device(device)
        self.name = name
        self.fourcc = fourcc
        self.y16 = y16
        self.corrupt = 0
        self._cap: cv2.VideoCapture | None = None
        self._index = 0

    @property
    def description(self) -> str:
        return f"{self.name} {self.device}"

    def open(self) -> None:
        self.close()
        dev = self.device
        if isinstance(dev, str) and "!" in dev:
            if not opencv_has_gstreamer():
                raise SourceError(f"{self.name} {dev!r} is a GStreamer pipeline, but the installed OpenCV is built "
                                  f"without GStreamer (opencv-python-headless from PyPI never has it); use a device "
                                  f"index, a URL or a file, or install an OpenCV built with GStreamer")
            cap = cv2.VideoCapture(dev, cv2.CAP_GSTREAMER)
        else:
            cap = cv2.VideoCapture(dev)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.name} {dev!r} (no such camera, or it is busy)")
        if self.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc.ljust(4)[:4]))
        if self.y16:
            # Ask for the raw sensor counts instead of an 8-bit RGB conversion.
            cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
        self._cap = cap

    def read(self) -> Frame | None:
        if self._cap is None:
            self.open()
        assert self._cap is not None
        if not self._cap.grab():
            raise SourceError(f"{self.name} {self.device!r} stopped delivering frames")
        stamp = time.monotonic()  # at grab: the closest we get to the exposure time
        ok, image = self._cap.retrieve()
        if not ok or image is None or image.size == 0:
            raise SourceError(f"{self.name} {self.device!r}: frame could not be decoded")
        image = self._normalise(image)
        frame = Frame(image=image, timestamp=stamp, index=self._index)
        self._index += 1
        return frame

    def _normalise(self, image: np.ndarray) -> np.ndarray:
        """Y16 frames may come as (1, H*W*2) bytes or (H, W, 2) uint8: view them as (H, W) uint16."""
        if self.y16 and image.dtype == np.uint8:
            h = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) if self._cap is not None else 0
            w = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)) if self._cap is not None else 0
            if h > 0 and w > 0 and image.size == h * w * 2:
                return np.ascontiguousarray(image).view(np.uint16).reshape(h, w)
        return image

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
