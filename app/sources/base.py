"""What every source (camera, video file, image folder, recorded session, built-in demo) delivers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One captured image.

    Attributes:
        image: raw pixels as delivered: (H, W) uint8/uint16 thermal, (H, W, 3) BGR uint8 colour.
            Raw 16-bit thermal counts are kept; gain control (``app.gain``) normalises them later.
        timestamp: capture time in seconds on the source's clock (monotonic within a stream).
        index: position of the frame in its stream, counting from 0.
    """

    image: np.ndarray
    timestamp: float
    index: int
    meta: dict = field(default_factory=dict, compare=False)


class FrameSource(ABC):
    """A stream of frames. Not thread-safe: one capture thread owns one source.

    ``read()`` returns the next frame, or None at a clean end of stream. It raises ``SourceError``
    when the source has failed (camera unplugged, file vanished); the capture thread decides whether
    to reopen.
    """

    #: True for cameras (frames come at their own pace, reconnect on failure); False for files and replay.
    is_live: bool = False

    @property
    @abstractmethod
    def description(self) -> str:
        """Human-readable description for status messages and session metadata ("video file night.mp4")."""

    @abstractmethod
    def open(self) -> None:
        """Open (or reopen) the underlying device or file; raise SourceError with a clear message."""

    @abstractmethod
    def read(self) -> Frame | None:
        """Next frame, or None at end of stream."""

    @abstractmethod
    def close(self) -> None:
        """Release the device or file. Safe to call twice."""

    def note_problem(self, kind: str, where: str) -> None:
        """Count a frame skipped for ``kind`` ("missing", "empty", "corrupt", "wrong size", ...); the first
        example (``where``: a file name or frame number) is kept for the message."""
        problems = self.__dict__.setdefault("_problems", {})
        count, example = problems.get(kind, (0, where))
        problems[kind] = (count + 1, example)

    @property
    def problems(self) -> dict[str, tuple[int, str]]:
        """kind -> (frames skipped, first example), for the status line and the end-of-run summary."""
        return dict(self.__dict__.get("_problems", {}))

    def __enter__(self) -> "FrameSource":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
