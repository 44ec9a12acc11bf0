"""`VideoFileSource`: frames of a video file, with their presentation timestamps."""

from __future__ import annotations

from pathlib import Path

import cv2

from ..errors import SourceError
from .base import Frame, FrameSource

DEFAULT_FPS = 25.0
MAX_CONSECUTIVE_BAD = 25  # undecodable frames in a row before the file counts as ended


class VideoFileSource(FrameSource):
    """A video file read frame by frame.

    Args:
        path: the video file.
        loop: start again at the end (timestamps keep increasing across loops).

    Timestamps come from ``CAP_PROP_POS_MSEC`` when the container provides them, else ``index / fps``.
    End of file is a clean end of stream (``read()`` returns None); an undecodable frame in the middle is
    skipped and counted in ``corrupt``.
    """

    is_live = False

    def __init__(self, path: str | Path, loop: bool = False) -> None:
        self.path = Path(path)
        self.loop = loop
        self.corrupt = 0
        self.fps = DEFAULT_FPS
        self.frame_count = 0
        self._cap: cv2.VideoCapture | None = None
        self._index = 0
        self._loop_offset = 0.0
        self._last_stamp = -1.0

    @property
    def description(self) -> str:
        return f"video file {self.path}"

    def open(self) -> None:
        self.close()
        if not self.path.is_file():
            raise SourceError(f"video file not found: {self.path}")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open video file {self.path} (unsupported or corrupt)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else DEFAULT_FPS
        self.frame_count = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        self._cap = cap

    def _stamp(self, file_index: int) -> float:
        msec = self._cap.get(cv2.CAP_PROP_POS_MSEC) if self._cap is not None else -1.0
        by_rate = file_index / self.fps
        # Some backends report 0 for every frame, or the time *after* the frame: trust it only if it advances.
        stamp = msec / 1000.0 if msec and msec > 0 else by_rate
        if file_index == 0:
            stamp = 0.0
        return stamp

    def read(self) -> Frame | None:
        if self._cap is None:
            self.open()
        bad = 0
        while True:
            ok, image = self._cap.read()
            if ok and image is not None and image.size > 0:
                break
            pos = int(self._cap.get(cv2.CAP_PROP_POS_FRAMES))
            if not ok and (self.frame_count == 0 or pos >= self.frame_count or bad >= MAX_CONSECUTIVE_BAD):
                if not self.loop or self._index == 0:
                    return None
                self._loop_offset = self._last_stamp + 1.0 / self.fps
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                continue
            bad += 1
            self.corrupt += 1
            self.note_problem("undecodable", f"frame {pos}")
        file_index = int(self._cap.get(cv2.CAP_PROP_POS_FRAMES)) - 1
        stamp = self._loop_offset + self._stamp(max(file_index, 0))
        if stamp <= self._last_stamp:  # keep timestamps strictly increasing within the stream
            stamp = self._last_stamp + 1.0 / self.fps
        self._last_stamp = stamp
        frame = Frame(image=image, timestamp=stamp, index=self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
