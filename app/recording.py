"""Recording sinks: the fused video and the raw session, each written on a thread of its own.

The fusion worker only hands a result over (:meth:`WriterThread.submit`, never blocks); a writer thread
encodes and writes it. When the writer falls behind, its bounded queue fills and further frames are
dropped and counted instead of slowing fusion down; the counts are in the summary, the status line and
``session.yaml``. Closing waits for the queued frames, so nothing already handed over is lost::

    sinks = recording_sinks(cfg, on_status=print)        # from cfg.recording (video and/or session)
    for sink in sinks:
        pipeline.add_sink(sink)
    ...
    for sink in sinks:
        print(sink.close())                              # one summary line each
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Any, Callable

from .config import AppConfig
from .errors import AppError
from .recorder import SegmentedRecorder, format_bytes

log = logging.getLogger(__name__)

_CLOSE = object()  # queue sentinel


class WriterThread:
    """Call ``write(item)`` for every submitted item on a background thread.

    Args:
        name: thread name (shown in the messages).
        write: the slow part (encoding, disk); a :class:`AppError` it raises stops this writer and is
            reported once through ``on_status``; fusion goes on.
        max_queue: items waiting at most; more are dropped (counted in :attr:`dropped`).
        on_status: user-facing messages.
        nice: scheduling niceness of the writer thread (Linux: per thread; 19 = lowest), so that on a
            saturated CPU fusion keeps its pace and the writer is the one that drops frames. It still gets the
            CPU that fusion leaves idle (a camera-paced run leaves some), unlike ``SCHED_IDLE``, which other
            processes can starve completely.
    """

    def __init__(self, name: str, write: Callable[[Any], None], max_queue: int = 32,
                 on_status: Callable[[str], None] | None = None, nice: int = 19) -> None:
        self.name = name
        self._write = write
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(max_queue)))
        self._on_status = on_status or (lambda message: None)
        self._nice = nice
        self.submitted = 0
        self.written = 0
        self.dropped = 0
        self.error: str | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> bool:
        """Queue ``item`` for writing (never blocks). False when it was dropped (writer behind or failed)."""
        if self._closed or self.error is not None:
            return False
        self.submitted += 1
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1:
                self._on_status(f"{self.name}: falling behind, dropping frames (counted in the summary)")
            return False
        return True

    def _run(self) -> None:
        if self._nice and hasattr(os, "setpriority"):
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
            except OSError:
                pass  # not allowed here: run at normal priority
        while True:
            item = self._queue.get()
            if item is _CLOSE:
                return
            if self.error is not None:
                continue  # failed: drain without writing
            try:
                self._write(item)
                self.written += 1
            except AppError as exc:
                self.error = str(exc)
                self._on_status(f"{self.name} stopped: {exc}")
            except Exception as exc:  # noqa: BLE001 - an encoder bug must not kill the process silently
                log.exception("%s failed", self.name)
                self.error = f"internal error: {exc!r}"
                self._on_status(f"{self.name} stopped by an internal error: {exc!r}")

    def close(self, timeout: float | None = 60.0) -> None:
        """Write what is queued, then end the thread (joined). Safe to call twice."""
        if not self._closed:
            self._closed = True
            try:  # waits only while the queue is full and the writer drains it
                self._queue.put(_CLOSE, timeout=timeout)
            except queue.Full:
                self._on_status(f"{self.name} did not finish within {timeout:g} s (stuck disk?)")
                return
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


class VideoSink:
    """Pipeline sink: the annotated fused frame into a :class:`SegmentedRecorder`, on a writer thread."""

    def __init__(self, recorder: SegmentedRecorder, on_status: Callable[[str], None] | None = None,
                 max_queue: int = 12) -> None:
        self.recorder = recorder
        # A short queue (about half a second at 25 FPS) and a modest priority: what a kill -9 can lose is the
        # queue plus the open keyframe interval, so the video writer must not be the one starved.
        self.thread = WriterThread("video writer", lambda item: recorder.write(*item), max_queue, on_status, nice=5)

    def __call__(self, result) -> None:
        self.thread.submit((result.annotated, result.timestamp))

    def close(self) -> str:
        """Finish writing, finalise the segment; returns the summary line."""
        self.thread.close()
        segments = self.recorder.close()
        line = (f"recorded {self.recorder.frames_written} frames ({self.recorder.codec}) in {len(segments)} "
                f"segment(s), {format_bytes(self.recorder.bytes_written)}: " + ", ".join(map(str, segments)))
        return line + _drop_note(self.thread)


class SessionSink:
    """Pipeline sink: each processed raw pair into a replayable session folder, on a writer thread."""

    def __init__(self, cfg: AppConfig, on_status: Callable[[str], None] | None = None, max_queue: int = 16) -> None:
        from .session import SessionWriter

        self.writer = SessionWriter(cfg.recording.session_dir, ir_description=cfg.sources.ir,
                                    rgb_description=cfg.sources.rgb, calibration=cfg.calibration)
        # Two PNGs per pair cost several times the video encoding: lowest priority, fusion first.
        self.thread = WriterThread("session writer", self.writer.write_pair, max_queue, on_status, nice=19)

    @property
    def pairs(self) -> int:
        return self.writer.count

    def __call__(self, result) -> None:
        if result.pair is not None:
            self.thread.submit(result.pair)

    def close(self) -> str:
        """Finish writing and mark the session complete; returns the summary line."""
        self.thread.close()
        self.writer.close(dropped=self.thread.dropped)
        return f"session: {self.writer.count} raw pairs in {self.writer.folder}" + _drop_note(self.thread)


def writer_counts(sink) -> dict:
    """``{"written": n, "dropped": n, "submitted": n, "error": str | None}`` of a recording sink's writer."""
    t = sink.thread
    return {"written": t.written, "dropped": t.dropped, "submitted": t.submitted, "error": t.error}


def _drop_note(thread: WriterThread) -> str:
    notes = []
    if thread.dropped:
        notes.append(f"{thread.dropped} of {thread.submitted} frames dropped because the writer fell behind")
    if thread.error:
        notes.append(f"stopped early: {thread.error}")
    return f" ({'; '.join(notes)})" if notes else ""


def recording_sinks(cfg: AppConfig, on_status: Callable[[str], None]) -> list:
    """The sinks ``cfg.recording`` asks for: fused video (:class:`VideoSink`) and/or raw session."""
    sinks: list = []
    try:
        if cfg.recording.path:
            recorder = SegmentedRecorder(cfg.recording.path, fps=cfg.recording.fps,
                                         segment_seconds=cfg.recording.segment_seconds, codec=cfg.recording.codec,
                                         on_status=on_status)
            sinks.append(VideoSink(recorder, on_status))
        if cfg.recording.session_dir:
            sinks.append(SessionSink(cfg, on_status))
    except AppError:
        for sink in sinks:
            sink.close()
        raise
    return sinks
