"""Pairing thermal and colour frames by timestamp.

Two cameras never expose at the same instants and rarely at the same rate (9 Hz thermal vs 30 Hz
colour is common). Two pairers:

* :class:`FramePairer` (live): frames are pushed by capture threads; each new frame is matched with the
  closest frame of the other stream within ``tolerance_s``. Only the newest complete pair is kept for the
  consumer, so a slow consumer never builds up latency; buffers are bounded.
* :class:`SequentialPairer` (lossless): merges two ordered streams by timestamp, one pair per frame of the
  slower stream, nothing skipped for lack of time; used to process files and folders completely.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Literal

from .sources.base import Frame

Stream = Literal["ir", "rgb"]


@dataclass(frozen=True)
class FramePair:
    """A thermal frame and the colour frame taken closest in time to it."""

    ir: Frame
    rgb: Frame

    @property
    def timestamp(self) -> float:
        """Capture time of the pair: the colour frame's (the grid everything is shown on)."""
        return self.rgb.timestamp

    @property
    def skew(self) -> float:
        """Thermal time minus colour time, seconds (signed)."""
        return self.ir.timestamp - self.rgb.timestamp


@dataclass
class PairStats:
    """Counters of a pairer / capture.

    Attributes:
        paired: pairs handed to the consumer.
        dropped: complete pairs overtaken by a newer pair before the consumer took them (slow consumer),
            or replayed frames skipped to keep up with real time.
        unmatched: frames discarded without a partner within the tolerance (the faster camera's extra
            frames, frames older than a formed pair, buffer overflow).
        corrupt: frames skipped because they could not be decoded or had the wrong shape.
        reconnects: times a lost source was reopened.
    """

    paired: int = 0
    dropped: int = 0
    unmatched: int = 0
    corrupt: int = 0
    reconnects: int = 0


class FramePairer:
    """Thread-safe live pairer.

    Args:
        tolerance_s: largest allowed |t_ir - t_rgb| of a pair.
        max_buffer: frames kept per stream while waiting for a partner (older ones are discarded).
    """

    def __init__(self, tolerance_s: float = 0.020, max_buffer: int = 8) -> None:
        if tolerance_s <= 0:
            raise ValueError(f"pairing tolerance must be positive, got {tolerance_s}")
        if max_buffer < 1:
            raise ValueError(f"max_buffer must be >= 1, got {max_buffer}")
        self.tolerance_s = float(tolerance_s)
        self.max_buffer = int(max_buffer)
        self._buffers: dict[str, collections.deque[Frame]] = {"ir": collections.deque(), "rgb": collections.deque()}
        self._ready: FramePair | None = None
        self._stats = PairStats()
        self._cond = threading.Condition()
        self._closed = False

    def push(self, stream: Stream, frame: Frame) -> None:
        """Add a frame of ``stream`` ("ir" or "rgb"); forms a pair if the other stream has a partner."""
        if stream not in self._buffers:
            raise ValueError(f"stream must be 'ir' or 'rgb', got {stream!r}")
        other = "rgb" if stream == "ir" else "ir"
        with self._cond:
            mine, theirs = self._buffers[stream], self._buffers[other]
            partner = min(theirs, key=lambda f: abs(f.timestamp - frame.timestamp), default=None)
            if partner is not None and abs(partner.timestamp - frame.timestamp) <= self.tolerance_s:
                pair = FramePair(ir=frame, rgb=partner) if stream == "ir" else FramePair(ir=partner, rgb=frame)
                # Everything buffered up to the pair is stale now: nothing newer can be its partner.
                self._stats.unmatched += len(mine)
                mine.clear()
                while theirs and theirs[0].timestamp <= partner.timestamp:
                    f = theirs.popleft()
                    if f is not partner:
                        self._stats.unmatched += 1
                if self._ready is not None:
                    self._stats.dropped += 1
                self._ready = pair
                self._cond.notify_all()
                return
            mine.append(frame)
            while len(mine) > self.max_buffer:
                mine.popleft()
                self._stats.unmatched += 1

    def get_pair(self, timeout: float | None = None) -> FramePair | None:
        """The newest complete pair not yet handed out; waits up to ``timeout`` s (None: forever).

        Returns None on timeout or after :meth:`close`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._ready is None and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            pair, self._ready = self._ready, None
            if pair is not None:
                self._stats.paired += 1
            return pair

    @property
    def has_pair(self) -> bool:
        with self._cond:
            return self._ready is not None

    def buffered(self) -> int:
        """Frames waiting for a partner (both streams)."""
        with self._cond:
            return len(self._buffers["ir"]) + len(self._buffers["rgb"])

    def close(self) -> None:
        """Wake every waiting ``get_pair`` (it returns None once no pair is left)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def stats(self) -> PairStats:
        with self._cond:
            return replace(self._stats)


class SequentialPairer:
    """Lossless merge of two time-ordered streams (files, folders) into pairs, oldest first.

    ``next_ir(timeout)`` / ``next_rgb(timeout)`` return the next frame, None at end of stream, or raise
    ``TimeoutError`` when no frame came within ``timeout``. A frame pairs with the closest frame of the
    other stream within the tolerance; frames with no partner are counted as unmatched. One frame of
    look-ahead decides "closest", so the result does not depend on how fast the streams are read.
    """

    def __init__(self, next_ir: Callable[[float | None], Frame | None],
                 next_rgb: Callable[[float | None], Frame | None], tolerance_s: float = 0.020) -> None:
        self._next = {"ir": next_ir, "rgb": next_rgb}
        self.tolerance_s = float(tolerance_s)
        self._heads: dict[str, list[Frame]] = {"ir": [], "rgb": []}  # up to 2 frames each (head + look-ahead)
        self._ended = {"ir": False, "rgb": False}
        self.stats = PairStats()
        self.finished = False

    def _peek(self, stream: str, depth: int, deadline: float | None) -> Frame | None:
        """Frame ``depth`` (0 = head) of ``stream``, reading as needed; None at end of stream."""
        heads = self._heads[stream]
        while len(heads) <= depth and not self._ended[stream]:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            frame = self._next[stream](remaining)
            if frame is None:
                self._ended[stream] = True
            else:
                heads.append(frame)
        return heads[depth] if len(heads) > depth else None

    def next_pair(self, timeout: float | None = None) -> FramePair | None:
        """The next pair in time order; None at the end of either stream. Raises TimeoutError on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        tol = self.tolerance_s
        while not self.finished:
            a, b = self._peek("ir", 0, deadline), self._peek("rgb", 0, deadline)
            if a is None or b is None:
                self._finish()
                return None
            if a.timestamp < b.timestamp - tol:
                self._discard("ir")
                continue
            if b.timestamp < a.timestamp - tol:
                self._discard("rgb")
                continue
            # Within tolerance: the earlier frame's successor may be an even closer partner.
            earlier = "ir" if a.timestamp <= b.timestamp else "rgb"
            later_t = b.timestamp if earlier == "ir" else a.timestamp
            head_t = a.timestamp if earlier == "ir" else b.timestamp
            nxt = self._peek(earlier, 1, deadline)
            if nxt is not None and abs(nxt.timestamp - later_t) < abs(head_t - later_t):
                self._discard(earlier)
                continue
            self._heads["ir"].pop(0)
            self._heads["rgb"].pop(0)
            self.stats.paired += 1
            return FramePair(ir=a, rgb=b)
        return None

    def _discard(self, stream: str) -> None:
        self._heads[stream].pop(0)
        self.stats.unmatched += 1

    def _finish(self) -> None:
        self.finished = True
        for stream in ("ir", "rgb"):
            self.stats.unmatched += len(self._heads[stream])
            self._heads[stream].clear()
