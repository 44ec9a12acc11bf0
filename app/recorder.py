"""Record the fused video in segments that stay readable while they are written.

* Container by extension: ``.mp4`` is written as *fragmented* MP4 (an empty index up front, then a
  self-contained fragment per keyframe), ``.mkv`` as Matroska, ``.ts`` as MPEG-TS. All three are readable
  up to the last flushed fragment if the program is killed (even SIGKILL), the way surveillance recorders
  write; any other extension is refused with a message.
* Keyframes are forced every ``keyframe_seconds`` (1 s) of video time and every packet is flushed to the
  OS at once, so a crash loses at most about one second.
* Codec: H.264 (libx264 in PyAV's FFmpeg) by default; ``mp4v`` (MPEG-4 Part 2) and ``mjpg`` on request.
  With ``auto`` and no libx264, MPEG-4 Part 2 is used and said out loud.
* Timing: frames carry their capture timestamps as presentation times (variable frame rate), so a slow
  fusion method plays back at the speed it happened without encoding repeated frames.
* Never overwrites: when ``OUT_000.mp4`` (or any ``OUT_NNN``) exists, the recording goes to ``OUT-2_000.mp4``
  (``-3``, ...) and :attr:`SegmentedRecorder.renamed_from` says so.
* Problems (unwritable folder, disk full, bad extension) raise :class:`app.errors.RecordingError`; finished
  segments are never touched afterwards.

This class writes on the caller's thread; the application drives it from a writer thread of its own
(:mod:`app.recording`) so encoding never slows fusion.
"""

from __future__ import annotations

import logging
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .errors import RecordingError

log = logging.getLogger(__name__)

#: extension -> (FFmpeg muxer, muxer options). ``flush_packets`` pushes every packet to the OS at once.
CONTAINERS: dict[str, tuple[str, dict[str, str]]] = {
    ".mp4": ("mp4", {"movflags": "frag_keyframe+empty_moov+default_base_moof"}),
    ".mkv": ("matroska", {}),
    ".ts": ("mpegts", {}),
}
#: recording.codec -> FFmpeg encoder
ENCODERS = {"h264": "libx264", "mp4v": "mpeg4", "mjpg": "mjpeg"}
_TIME_BASE = Fraction(1, 1000)  # presentation times in milliseconds


def pyav_h264_available() -> bool:
    """True when PyAV is installed and its FFmpeg has the libx264 encoder."""
    try:
        import av
    except ImportError:
        return False
    return "libx264" in av.codecs_available


def readable_frames(path: str | Path) -> int:
    """Frames a player can decode from ``path`` (stops at the first damaged packet, e.g. after a crash)."""
    import av

    n = 0
    try:
        with av.open(str(path)) as container:
            for _ in container.decode(video=0):
                n += 1
    except (av.FFmpegError, OSError, IndexError):
        pass  # a truncated tail: what was decoded so far is what a player shows
    return n


class _SegmentWriter:
    """One segment file: encoder + muxer, presentation times in ms, forced keyframes."""

    def __init__(self, path: Path, encoder: str, fps: float, size: tuple[int, int]) -> None:
        import av

        fmt, options = CONTAINERS[path.suffix.lower()]
        self.container = av.open(str(path), mode="w", format=fmt, options={**options, "flush_packets": "1"})
        try:
            self.stream = self.container.add_stream(encoder, rate=Fraction(fps).limit_denominator(1000))
            # 4:2:0 needs even sizes; odd frames are padded by one pixel in write().
            self.width, self.height = size[0] + size[0] % 2, size[1] + size[1] % 2
            self.stream.width, self.stream.height = self.width, self.height
            self.stream.pix_fmt = "yuvj420p" if encoder == "mjpeg" else "yuv420p"
            self.stream.time_base = _TIME_BASE
            self.stream.codec_context.time_base = _TIME_BASE
            if encoder == "libx264":
                # superfast/zerolatency: no look-ahead buffer, so a flushed packet is a finished frame;
                # one thread: the fusion owns the other cores.
                self.stream.options = {"preset": "superfast", "crf": "23", "tune": "zerolatency", "threads": "1"}
            else:
                self.stream.codec_context.bit_rate = 4_000_000
        except Exception:
            self.container.close()
            raise
        self._av = av
        self._yuv = self.stream.pix_fmt

    def write(self, frame: np.ndarray, pts_ms: int, keyframe: bool) -> None:
        if frame.shape[1] != self.width or frame.shape[0] != self.height:
            frame = cv2.copyMakeBorder(frame, 0, self.height - frame.shape[0], 0, self.width - frame.shape[1],
                                       cv2.BORDER_REPLICATE)
        video_frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
        video_frame.pts, video_frame.time_base = pts_ms, _TIME_BASE
        if keyframe:
            video_frame.pict_type = self._av.video.frame.PictureType.I
        for packet in self.stream.encode(video_frame):
            self.container.mux(packet)

    def close(self) -> None:
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
        finally:
            self.container.close()


def container_suffix(path: str | Path) -> str:
    """The container extension of a recording path (none = ``.mp4``); RecordingError for any other."""
    path = Path(path)
    suffix = path.suffix.lower() or ".mp4"
    if suffix not in CONTAINERS:
        raise RecordingError(f"cannot record to {path}: unsupported extension {path.suffix!r}; use "
                             f"{', '.join(CONTAINERS)} (they stay readable if the program is killed)")
    return suffix


def free_stem(stem: Path, suffix: str) -> Path:
    """``stem`` if no ``stem_NNN<suffix>`` exists yet, else the first free ``stem-2``, ``stem-3``, ..."""
    candidate, n = stem, 1
    while any(candidate.parent.glob(f"{candidate.name}_[0-9][0-9][0-9]{suffix}")):
        n += 1
        candidate = stem.parent / f"{stem.name}-{n}"
    return candidate


class SegmentedRecorder:
    """Write BGR frames to ``OUT_000.mp4``, ``OUT_001.mp4``, ... (thread-safe).

    Args:
        path: the requested output, e.g. ``recordings/night.mp4`` (``.mp4``, ``.mkv`` or ``.ts``; none = .mp4);
            segments get ``_NNN`` before the suffix.
        fps: nominal frame rate (frames written without timestamps are spaced 1/fps apart).
        segment_seconds: length of one segment in video time.
        codec: "auto" (H.264 if PyAV has libx264, else mp4v), "h264", "mp4v" or "mjpg".
        on_status: called with a message users should see (encoder fallback, new name).
        keyframe_seconds: longest video time between keyframes (= the most a crash can lose).
    """

    #: longest gap between two timestamped frames kept in the video (a pause, a stalled camera)
    MAX_GAP_S = 5.0

    def __init__(self, path: str | Path, fps: float = 25.0, segment_seconds: float = 60.0, codec: str = "auto",
                 on_status: Callable[[str], None] | None = None, keyframe_seconds: float = 1.0) -> None:
        self.fps, self.segment_seconds = float(fps), float(segment_seconds)
        if self.fps <= 0 or self.segment_seconds <= 0:
            raise RecordingError(f"recording fps and segment length must be positive (got {fps}, {segment_seconds})")
        self.keyframe_seconds = float(keyframe_seconds)
        self.on_status = on_status or (lambda msg: None)
        requested = Path(path)
        suffix = container_suffix(requested)
        self.codec = self._choose_codec(codec)
        if self.codec == "mjpg" and suffix == ".ts":
            raise RecordingError("MPEG-TS cannot carry mjpg; record mjpg to .mp4 or .mkv")
        self._suffix = suffix
        wanted_stem = requested.with_suffix("") if requested.suffix else requested
        try:
            wanted_stem.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordingError(f"cannot create the recording folder {wanted_stem.parent}: {exc.strerror or exc}") from None
        self._stem = free_stem(wanted_stem, suffix)
        self.path = self._stem.with_suffix(suffix)
        #: the first segment that would have been overwritten, when the recording was renamed
        self.renamed_from: Path | None = None
        if self._stem != wanted_stem:
            self.renamed_from = wanted_stem.parent / f"{wanted_stem.name}_000{suffix}"
            self.on_status(f"{self.renamed_from} already exists and is kept; recording to {self.segment_path(0)}")
        self._lock = threading.Lock()
        self._writer: _SegmentWriter | None = None
        self._segment_index = -1
        self._segment_start_ms = 0
        self._last_key_ms: int | None = None
        self.frames_written = 0
        self.finished_segments: list[Path] = []
        self.current_segment: Path | None = None
        self._started = time.monotonic()
        self._closed = False
        self._frame_size: tuple[int, int] | None = None
        # Presentation time: ms since the start of the recording, from the frames' capture timestamps.
        self._pts_ms = -1
        self._time_ms: float | None = None
        self._last_timestamp: float | None = None

    def _choose_codec(self, codec: str) -> str:
        if codec not in ("auto", *ENCODERS):
            raise RecordingError(f"unknown recording codec {codec!r}; use auto, {', '.join(ENCODERS)}")
        try:
            import av  # noqa: F401
        except ImportError:
            raise RecordingError("recording needs PyAV (pip install av)") from None
        if codec in ("auto", "h264"):
            if pyav_h264_available():
                return "h264"
            if codec == "h264":
                raise RecordingError("the H.264 encoder (libx264) is missing from PyAV's FFmpeg; "
                                     "set recording.codec to mp4v or mjpg")
            message = "H.264 encoder not available in PyAV's FFmpeg; recording MPEG-4 Part 2 (mp4v) instead"
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
        return max(self._pts_ms, 0) / 1000.0

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

    def _open_segment(self, size: tuple[int, int], start_ms: int) -> None:
        self._segment_index += 1
        path = self.segment_path(self._segment_index)
        try:
            self._writer = _SegmentWriter(path, ENCODERS[self.codec], self.fps, size)
        except Exception as exc:  # noqa: BLE001 - av/OS errors: name the file and the cause
            raise RecordingError(f"cannot start recording segment {path}: {exc}") from None
        self.current_segment = path
        self._segment_start_ms = start_ms
        self._last_key_ms = None
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

    def _next_pts(self, timestamp: float | None) -> int:
        """Presentation time (ms) of the next frame: the previous one plus the capture-time step.

        Without a timestamp, or when time goes backwards (replay seek), the step is 1/fps; gaps longer
        than ``MAX_GAP_S`` (pause, stalled source) are shortened to it.
        """
        if self._time_ms is not None:
            step_s = 1.0 / self.fps
            if timestamp is not None and self._last_timestamp is not None and timestamp >= self._last_timestamp:
                step_s = min(timestamp - self._last_timestamp, self.MAX_GAP_S)
            self._time_ms += step_s * 1000.0
        else:
            self._time_ms = 0.0
        self._last_timestamp = timestamp if timestamp is not None else self._last_timestamp
        return max(int(round(self._time_ms)), self._pts_ms + 1)

    def write(self, frame: np.ndarray, timestamp: float | None = None) -> None:
        """Append one (H, W, 3) uint8 BGR frame (gray (H, W) is converted).

        ``timestamp``: the frame's capture time in seconds; the video then plays at the pace it was captured.
        """
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise RecordingError(f"recorder needs uint8 BGR frames, got {frame.dtype} {frame.shape}")
        with self._lock:
            if self._closed:
                raise RecordingError("the recording is already closed")
            pts = self._next_pts(timestamp)
            size = (frame.shape[1], frame.shape[0])
            segment_full = pts - self._segment_start_ms >= self.segment_seconds * 1000.0
            if self._writer is None or segment_full or size != self._frame_size:
                self._finish_segment()
                self._open_segment(size, pts)
            keyframe = self._last_key_ms is None or pts - self._last_key_ms >= self.keyframe_seconds * 1000.0
            try:
                self._writer.write(frame, pts - self._segment_start_ms, keyframe)
            except Exception as exc:  # noqa: BLE001 - disk full shows up as an OSError/av error here
                self._abandon_current()
                raise RecordingError(f"writing {self.current_segment or 'the recording'} failed ({exc}); "
                                     f"finished segments are kept: "
                                     f"{', '.join(map(str, self.finished_segments)) or 'none'}") from None
            if keyframe:
                self._last_key_ms = pts
            self._pts_ms = pts
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
