"""Record the fused video in segments that common players open.

* Encoder: H.264 in MP4 through PyAV (its wheels bundle FFmpeg with libx264) when available; otherwise
  OpenCV's ``mp4v`` MP4 (or MJPG AVI), and the fallback is said out loud (log + status callback).
* Crash safety: ``OUT.mp4`` is written as ``OUT_000.mp4``, ``OUT_001.mp4``, ... of ``segment_seconds``
  each; a segment is finalised when the next starts and on :meth:`close`. An MP4 whose writer dies
  has no index and is unreadable, so a crash (even SIGKILL) loses at most the current segment.
* Problems (unwritable folder, disk full, no encoder) raise :class:`app.errors.RecordingError`;
  finished segments are never touched afterwards.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .errors import RecordingError

log = logging.getLogger(__name__)


def pyav_h264_available() -> bool:
    """True when PyAV is installed and its FFmpeg has the libx264 encoder."""
    try:
        import av
    except ImportError:
        return False
    return "libx264" in av.codecs_available


class _PyAvWriter:
    """H.264 (libx264, yuv420p) MP4 writer for one segment."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        import av
        from fractions import Fraction

        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        # yuv420p needs even sizes; odd frames are padded by one pixel in write().
        self.width, self.height = size[0] + size[0] % 2, size[1] + size[1] % 2
        self.stream.width, self.stream.height = self.width, self.height
        self.stream.pix_fmt = "yuv420p"
        # superfast/zerolatency: the recorder runs beside the fusion and must stay cheap; crf 23 is x264's default.
        self.stream.options = {"preset": "superfast", "crf": "23", "tune": "zerolatency"}
        self._av = av

    def write(self, frame: np.ndarray) -> None:
        if frame.shape[1] != self.width or frame.shape[0] != self.height:
            frame = cv2.copyMakeBorder(frame, 0, self.height - frame.shape[0], 0, self.width - frame.shape[1],
                                       cv2.BORDER_REPLICATE)
        video_frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
        for packet in self.stream.encode(video_frame):
            self.container.mux(packet)

    def close(self) -> None:
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
        finally:
            self.container.close()


class _OpenCvWriter:
    """OpenCV VideoWriter for one segment (mp4v in .mp4 or MJPG in .avi)."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], fourcc: str) -> None:
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
        if not self.writer.isOpened():
            raise RecordingError(f"cannot open {path} for writing with OpenCV codec {fourcc}")
        self.size = size

    def write(self, frame: np.ndarray) -> None:
        if (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2.resize(frame, self.size)
        self.writer.write(frame)

    def close(self) -> None:
        self.writer.release()


class SegmentedRecorder:
    """Write BGR frames to ``OUT_000.mp4``, ``OUT_001.mp4``, ... (thread-safe).

    Args:
        path: the requested output, e.g. ``recordings/night.mp4``; segments get ``_NNN`` before the suffix.
        fps: frame rate written into the files.
        segment_seconds: length of one segment in video time (frames / fps).
        codec: "auto" (H.264 if PyAV has libx264, else mp4v), "h264", "mp4v" or "mjpg".
        on_status: called with a message users should see (encoder fallback, new segment, errors).
    """

    #: longest gap between two timestamped frames that is filled by repeating the previous frame
    MAX_GAP_S = 5.0

    def __init__(self, path: str | Path, fps: float = 25.0, segment_seconds: float = 60.0, codec: str = "auto",
                 on_status: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self.fps, self.segment_seconds = float(fps), float(segment_seconds)
        if self.fps <= 0 or self.segment_seconds <= 0:
            raise RecordingError(f"recording fps and segment length must be positive (got {fps}, {segment_seconds})")
        self.on_status = on_status or (lambda msg: None)
        self.codec = self._choose_codec(codec)
        suffix = ".avi" if self.codec == "mjpg" else ".mp4"
        self._stem = self.path.with_suffix("") if self.path.suffix else self.path
        self._suffix = suffix
        try:
            self._stem.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordingError(f"cannot create the recording folder {self._stem.parent}: {exc.strerror or exc}") from None
        self._lock = threading.Lock()
        self._writer = None
        self._segment_index = -1
        self._frames_in_segment = 0
        self.frames_written = 0
        self.finished_segments: list[Path] = []
        self.current_segment: Path | None = None
        self._started = time.monotonic()
        self._closed = False
        self._frame_size: tuple[int, int] | None = None
        # Real-time pacing (write(..., timestamp)): video slot of the next frame and the clock behind it.
        self._timeline = 0
        self._clock_origin: float | None = None
        self._last_timestamp = float("-inf")
        self._last_frame: np.ndarray | None = None

    def _choose_codec(self, codec: str) -> str:
        if codec not in ("auto", "h264", "mp4v", "mjpg"):
            raise RecordingError(f"unknown recording codec {codec!r}; use auto, h264, mp4v or mjpg")
        if codec in ("auto", "h264"):
            if pyav_h264_available():
                return "h264"
            if codec == "h264":
                raise RecordingError("H.264 encoder not available (install PyAV: pip install av), "
                                     "or set recording.codec to mp4v or mjpg")
            message = ("H.264 encoder not available (install PyAV: pip install av); "
                       "recording MPEG-4 Part 2 (mp4v) instead, which some players do not open")
            log.warning(message)
            self.on_status(message)
            return "mp4v"
        return codec

    # ----- state for the viewer's record button -------------------------------------------------------
    @property
    def elapsed_s(self) -> float:
        """Wall-clock seconds since recording started."""
        return time.monotonic() - self._started

    @property
    def video_seconds(self) -> float:
        return self.frames_written / self.fps

    @property
    def bytes_written(self) -> int:
        """Bytes on disk: finished segments plus what the current one has so far."""
        total = 0
        for p in [*self.finished_segments, self.current_segment]:
            try:
                total += p.stat().st_size if p is not None else 0
            except OSError:
                pass
        return total

    @property
    def segments(self) -> list[Path]:
        return [*self.finished_segments, *([self.current_segment] if self.current_segment else [])]

    # ----- writing -------------------------------------------------------------------------------------
    def segment_path(self, index: int) -> Path:
        return self._stem.parent / f"{self._stem.name}_{index:03d}{self._suffix}"

    def _open_segment(self, size: tuple[int, int]) -> None:
        self._segment_index += 1
        path = self.segment_path(self._segment_index)
        try:
            if self.codec == "h264":
                self._writer = _PyAvWriter(path, self.fps, size)
            else:
                self._writer = _OpenCvWriter(path, self.fps, size, "mp4v" if self.codec == "mp4v" else "MJPG")
        except RecordingError:
            raise
        except Exception as exc:  # noqa: BLE001 - av/OS errors: name the file and the cause
            raise RecordingError(f"cannot start recording segment {path}: {exc}") from None
        self.current_segment = path
        self._frames_in_segment = 0
        self._frame_size = size

    def _finish_segment(self) -> None:
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        path, self.current_segment = self.current_segment, None
        try:
            writer.close()
        except Exception as exc:  # noqa: BLE001
            raise RecordingError(f"could not finalise recording segment {path}: {exc}") from None
        self.finished_segments.append(path)
        log.info("recording segment finished: %s", path)

    def write(self, frame: np.ndarray, timestamp: float | None = None) -> None:
        """Append one (H, W, 3) uint8 BGR frame (gray (H, W) is converted).

        With ``timestamp`` (seconds, the frame's capture time) the video keeps real time at a constant
        frame rate: when frames come slower than ``fps`` (a slow fusion method), the previous frame is
        repeated until this one's slot, so a 5 fps fusion still plays back at the speed it happened.
        Gaps are filled up to ``MAX_GAP_S``; a timestamp going backwards (replay seek) restarts the clock.
        """
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise RecordingError(f"recorder needs uint8 BGR frames, got {frame.dtype} {frame.shape}")
        with self._lock:
            if self._closed:
                raise RecordingError("the recording is already closed")
            repeats = 0
            if timestamp is not None:
                if self._clock_origin is None or timestamp < self._last_timestamp:
                    self._clock_origin = timestamp - self._timeline / self.fps
                slot = int(round((timestamp - self._clock_origin) * self.fps))
                repeats = min(max(0, slot - self._timeline), int(self.MAX_GAP_S * self.fps))
                self._last_timestamp = timestamp
            if self._last_frame is None:
                repeats = 0
            for _ in range(repeats):
                self._append(self._last_frame)
            self._append(frame)
            self._last_frame = frame
            self._timeline += repeats + 1

    def _append(self, frame: np.ndarray) -> None:
        """Encode one frame into the current segment, rolling over when it is full (lock held)."""
        size = (frame.shape[1], frame.shape[0])
        segment_full = self._frames_in_segment >= round(self.segment_seconds * self.fps)
        if self._writer is None or segment_full or size != self._frame_size:
            self._finish_segment()
            self._open_segment(size)
        try:
            self._writer.write(frame)
        except Exception as exc:  # noqa: BLE001 - disk full shows up as an OSError/av error here
            self._abandon_current()
            raise RecordingError(f"writing {self.current_segment or 'the recording'} failed ({exc}); "
                                 f"finished segments are kept: {', '.join(map(str, self.finished_segments)) or 'none'}") from None
        self._frames_in_segment += 1
        self.frames_written += 1

    def _abandon_current(self) -> None:
        """After a write error: try to close the broken segment, keep the finished ones, stop recording."""
        writer, self._writer = self._writer, None
        self._closed = True
        try:
            if writer is not None:
                writer.close()
        except Exception:  # noqa: BLE001 - the segment is already broken; the error was reported
            pass

    def close(self) -> list[Path]:
        """Finalise the current segment; returns every segment written. Safe to call twice."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._finish_segment()
        return list(self.finished_segments)

    def __enter__(self) -> "SegmentedRecorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def format_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} GB"
