"""`StereoCapture`: one capture thread per source, pairing by timestamp, reconnecting lost cameras
(and `LockstepCapture`, the thread-free pair source of tests and benchmarks).

The pipeline pulls pairs with ``get_pair(timeout)``. Two modes:

* realtime (default when a source is live): frames go to a :class:`FramePairer`; the consumer always
  gets the newest pair and stale frames are dropped, so latency stays low. File sources are paced by
  their timestamps so they behave like cameras.
* lossless (``realtime=False``, the default for files/folders): capture threads fill small bounded queues
  and block when they are full, so reading is paced by the consumer and no frame is lost for lack of time;
  the streams are merged in time order by :class:`SequentialPairer`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import replace
from typing import Callable

import numpy as np

from .errors import SourceError
from .pairer import FramePair, FramePairer, PairStats, SequentialPairer
from .sources.base import Frame, FrameSource

log = logging.getLogger(__name__)

STREAM_LABELS = {"ir": "thermal", "rgb": "colour"}
_END = object()  # queue sentinel: the stream has ended


class _StreamState:
    """What one capture thread shares with the rest: end flag, shape of its first frame, problems reported."""

    def __init__(self) -> None:
        self.ended = threading.Event()
        self.shape: tuple | None = None
        self.reported: set[str] = set()  # kinds of skipped frames already said once


class StereoCapture:
    """Capture from a thermal and a colour source and hand out time-matched pairs.

    Args:
        ir, rgb: the two sources (not opened yet; ``start()`` opens them).
        tolerance_s: largest |t_ir - t_rgb| of a pair.
        reconnect: reopen a live source that fails, with exponential back-off (files are not reopened).
        on_status: called (from capture threads) with user-facing messages ("thermal camera lost ...").
        realtime: True = newest pair, drop stale frames, pace files by timestamps; False = lossless, paced
            by the consumer; None = True if either source is live.
        max_buffer: frames buffered per stream.
        reconnect_initial_s, reconnect_max_s: first back-off delay and its cap (doubles each failed try).
    """

    def __init__(self, ir: FrameSource, rgb: FrameSource, tolerance_s: float = 0.020, reconnect: bool = True,
                 on_status: Callable[[str], None] | None = None, realtime: bool | None = None,
                 max_buffer: int = 8, reconnect_initial_s: float = 0.5, reconnect_max_s: float = 8.0) -> None:
        self.sources = {"ir": ir, "rgb": rgb}
        self.tolerance_s = float(tolerance_s)
        self.reconnect = reconnect
        self.on_status = on_status
        self.realtime = bool(ir.is_live or rgb.is_live) if realtime is None else bool(realtime)
        self.max_buffer = max_buffer
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self._pairer = FramePairer(tolerance_s, max_buffer)
        self._queues = {s: queue.Queue(maxsize=max_buffer) for s in self.sources}
        self._sequential = SequentialPairer(lambda t: self._take("ir", t), lambda t: self._take("rgb", t),
                                            tolerance_s)
        self._state = {s: _StreamState() for s in self.sources}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._consumer_lock = threading.Lock()
        self._reconnects = 0
        self._started = False
        self._stopped = False
        self._t0 = 0.0

    # ----- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Open both sources (SourceError naming the one that fails) and start the capture threads."""
        if self._started:
            return
        opened = []
        try:
            for source in self.sources.values():
                source.open()
                opened.append(source)
        except SourceError:
            for source in opened:
                source.close()
            raise
        self._started = True
        self._t0 = time.monotonic()
        for stream in self.sources:
            thread = threading.Thread(target=self._run, args=(stream,), name=f"capture-{stream}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Stop and join every capture thread, then close the sources. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        self._pairer.close()
        for thread in self._threads:
            thread.join(timeout=10.0)
            if thread.is_alive():  # a driver stuck in read(): say so rather than hang the application
                self._status(f"capture thread {thread.name} did not stop within 10 s")
        for source in self.sources.values():
            source.close()

    def __enter__(self) -> "StereoCapture":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----- consumer side ---------------------------------------------------------------------------------
    def get_pair(self, timeout: float | None = None) -> FramePair | None:
        """Next pair (newest in realtime mode, next in time order in lossless mode); None on timeout/end."""
        if self.realtime:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                step = 0.05 if deadline is None else max(0.0, min(0.05, deadline - time.monotonic()))
                pair = self._pairer.get_pair(step)
                if pair is not None or self.ended or self._stop.is_set():
                    return pair
                if deadline is not None and time.monotonic() >= deadline:
                    return None
        with self._consumer_lock:
            try:
                return self._sequential.next_pair(timeout)
            except TimeoutError:
                return None

    @property
    def ended(self) -> bool:
        """True when a stream has ended (end of file, or a source that failed for good) and no pair is left:
        without its partner the other stream cannot make pairs any more, so the run ends at once."""
        if self.realtime:
            one_done = any(s.ended.is_set() for s in self._state.values())
            return one_done and not self._pairer.has_pair
        return self._sequential.finished

    @property
    def stats(self) -> PairStats:
        if self.realtime:
            stats = self._pairer.stats
        else:
            with self._consumer_lock:
                stats = replace(self._sequential.stats)
        stats.corrupt = sum(count for problems in self.frame_problems.values() for count in problems.values())
        stats.reconnects = self._reconnects
        return stats

    @property
    def frame_problems(self) -> dict[str, dict[str, int]]:
        """Frames skipped so far, by stream label and kind: ``{"thermal": {"corrupt": 3, "missing": 1}}``."""
        out = {}
        for stream, source in self.sources.items():
            problems = {kind: count for kind, (count, _) in source.problems.items()}
            if problems:
                out[STREAM_LABELS[stream]] = problems
        return out

    def _report_new_problems(self, stream: str) -> None:
        """Say once per kind that frames are being skipped; the counts come in the end-of-run summary."""
        state = self._state[stream]
        for kind, (_, example) in self.sources[stream].problems.items():
            if kind not in state.reported:
                state.reported.add(kind)
                self._status(f"{STREAM_LABELS[stream]}: skipped a {kind} frame ({example}); "
                             f"further {kind} frames are counted and reported at the end")

    # ----- capture threads -------------------------------------------------------------------------------
    def _status(self, message: str) -> None:
        log.info(message)
        if self.on_status is not None:
            try:
                self.on_status(message)
            except Exception:  # noqa: BLE001 - a broken status callback must not kill capture
                log.exception("status callback failed")

    def _take(self, stream: str, timeout: float | None) -> Frame | None:
        """Lossless mode: next frame of ``stream`` from its queue (None at end); TimeoutError if none came."""
        try:
            item = self._queues[stream].get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None
        if item is _END:
            self._queues[stream].put(_END)  # later calls see the end too
            return None
        return item

    def _deliver(self, stream: str, frame: Frame) -> None:
        if self.realtime:
            self._pairer.push(stream, frame)
            return
        while not self._stop.is_set():  # back-pressure: wait for the consumer, but never past stop()
            try:
                self._queues[stream].put(frame, timeout=0.1)
                return
            except queue.Full:
                continue

    def _end_stream(self, stream: str) -> None:
        self._state[stream].ended.set()
        if not self.realtime:
            while not self._stop.is_set():
                try:
                    self._queues[stream].put(_END, timeout=0.1)
                    return
                except queue.Full:
                    continue

    def _reopen(self, stream: str, error: SourceError) -> bool:
        """Reopen a lost live source with capped exponential back-off; False if it should not (or stop)."""
        source, label = self.sources[stream], STREAM_LABELS[stream]
        kind = "camera" if source.is_live else "source"
        if not (self.reconnect and source.is_live):
            self._status(f"{label} {kind} failed: {error}")
            return False
        delay = self.reconnect_initial_s
        while not self._stop.is_set():
            self._status(f"{label} {kind} lost ({error}), reconnecting in {delay:g} s")
            if self._stop.wait(delay):
                return False
            try:
                source.close()
                source.open()
            except SourceError as exc:
                error = exc
                delay = min(delay * 2.0, self.reconnect_max_s)
                continue
            self._reconnects += 1
            self._status(f"{label} {kind} reconnected")
            return True
        return False

    def _run(self, stream: str) -> None:
        source, state = self.sources[stream], self._state[stream]
        first_stamp: float | None = None
        pace = self.realtime and not source.is_live
        try:
            while not self._stop.is_set():
                try:
                    frame = source.read()
                except SourceError as exc:
                    if self._reopen(stream, exc):
                        continue
                    break
                if frame is None:
                    break
                problem = self._check(state, frame.image)
                if problem is not None:
                    source.note_problem(problem, f"frame {frame.index}")
                if len(source.problems) != len(state.reported):
                    self._report_new_problems(stream)
                if problem is not None:
                    continue
                if pace:
                    if first_stamp is None:
                        first_stamp = frame.timestamp
                    delay = self._t0 + (frame.timestamp - first_stamp) - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                self._deliver(stream, frame)
        except Exception as exc:  # noqa: BLE001 - report, end this stream, keep the application alive
            log.exception("capture thread %s crashed", stream)
            self._status(f"{STREAM_LABELS[stream]} capture stopped: {exc}")
        finally:
            self._report_new_problems(stream)
            self._end_stream(stream)

    @staticmethod
    def _check(state: _StreamState, image) -> str | None:
        """Why a frame must be skipped ("empty", "wrong size": shape/dtype differ from the stream's first
        frame), or None when it is good."""
        if not isinstance(image, np.ndarray) or image.size == 0:
            return "empty"
        signature = (image.shape, image.dtype)
        if state.shape is None:
            state.shape = signature
            return None
        return "wrong size" if signature != state.shape else None


class LockstepCapture:
    """The simplest :class:`PairSource`: frame i of each source makes pair i, read on the caller's thread.

    Deterministic and thread-free, so it suits tests, benchmarks and sources that share one clock (the
    built-in demo). It does not pair by timestamp, drop stale frames or reconnect: live cameras need
    ``app.capture.StereoCapture``, which the application uses whenever it is installed.
    """

    def __init__(self, ir_source, rgb_source) -> None:
        self.ir_source, self.rgb_source = ir_source, rgb_source
        self._ended = False
        self.paired = 0

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def stats(self) -> PairStats:
        return PairStats(paired=self.paired)

    def start(self) -> None:
        self.ir_source.open()
        self.rgb_source.open()

    def stop(self) -> None:
        self.ir_source.close()
        self.rgb_source.close()

    def get_pair(self, timeout: float | None = None):
        if self._ended:
            return None
        ir, rgb = self.ir_source.read(), self.rgb_source.read()
        if ir is None or rgb is None:
            self._ended = True
            return None
        self.paired += 1
        return FramePair(ir, rgb)
