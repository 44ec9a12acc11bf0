"""Recorded sessions: raw, lossless thermal + colour pairs with their timestamps, replayable later.

Layout of a session folder::

    session.yaml      format version, created, source descriptions, calibration, frame count, complete flag
    timestamps.csv    pair,ir_index,ir_timestamp,rgb_index,rgb_timestamp,ir_file,rgb_file (one line per pair)
    ir/000000.png     thermal frames exactly as captured (16-bit counts kept)
    rgb/000000.png    colour frames (BGR)

Crash safety: a pair's images are written first and its CSV line after, appended and flushed at once, so
a killed recorder leaves every listed pair readable; ``session.yaml`` is written at the start (``complete:
false``) and rewritten atomically on ``close()``. The reader trusts only complete CSV lines.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import os
import threading
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import yaml

from .errors import RecordingError, SourceError
from .pairer import FramePair, PairStats
from .sources.base import Frame, FrameSource

SESSION_FORMAT_VERSION = 1
CSV_FIELDS = ["pair", "ir_index", "ir_timestamp", "rgb_index", "rgb_timestamp", "ir_file", "rgb_file"]
# Lossless either way; level 1 with run-length matching encodes about twice as fast as the default and
# compresses camera frames slightly better, which keeps the session writer up with the camera.
_PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]


def _write_yaml_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)


def _calibration_entry(calibration) -> dict | None:
    """What session.yaml records about the calibration: the content, and its path when given one."""
    if calibration is None:
        return None
    if isinstance(calibration, dict):
        return {"content": calibration}
    path = Path(calibration)
    entry: dict = {"path": str(path.resolve())}
    try:
        entry["content"] = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        pass  # the path alone still says which file was used
    return entry


class SessionWriter:
    """Write pairs into a new session folder.

    Args:
        folder: created if missing; must not already hold a session.
        ir_description, rgb_description: what the sources were ("video file a.mp4", "thermal camera 0").
        calibration: calibration used while recording: a dict (file content) or a path to the YAML file.
    """

    def __init__(self, folder: str | Path, ir_description: str, rgb_description: str,
                 calibration: dict | str | Path | None = None) -> None:
        self.folder = Path(folder)
        if (self.folder / "session.yaml").exists():
            raise RecordingError(f"session folder {self.folder} already holds a session; choose a new folder")
        try:
            (self.folder / "ir").mkdir(parents=True, exist_ok=True)
            (self.folder / "rgb").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordingError(f"cannot create session folder {self.folder}: {exc}") from None
        self.count = 0
        self._lock = threading.Lock()
        self._closed = False
        self._meta = {
            "format": "irvis-session",
            "version": SESSION_FORMAT_VERSION,
            "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "complete": False,
            "sources": {"ir": str(ir_description), "rgb": str(rgb_description)},
            "calibration": _calibration_entry(calibration),
            "frames": 0,
            "image_format": "png",
            "timestamps": "timestamps.csv",
        }
        _write_yaml_atomic(self.folder / "session.yaml", self._meta)
        self._csv = open(self.folder / "timestamps.csv", "w", newline="")
        self._csv.write(",".join(CSV_FIELDS) + "\n")
        self._csv.flush()

    def write_pair(self, pair: FramePair) -> None:
        """Append one pair (images first, then its CSV line, flushed)."""
        with self._lock:
            if self._closed:
                raise RecordingError(f"session {self.folder} is closed")
            name = f"{self.count:06d}.png"
            for stream, frame in (("ir", pair.ir), ("rgb", pair.rgb)):
                path = self.folder / stream / name
                if not cv2.imwrite(str(path), np.ascontiguousarray(frame.image), _PNG_FAST):
                    raise RecordingError(f"cannot write {path} (disk full or unsupported image)")
            # repr() of a float round-trips exactly: replayed timestamps equal the recorded ones.
            row = [self.count, pair.ir.index, repr(float(pair.ir.timestamp)), pair.rgb.index,
                   repr(float(pair.rgb.timestamp)), f"ir/{name}", f"rgb/{name}"]
            self._csv.write(",".join(str(v) for v in row) + "\n")
            self._csv.flush()
            self.count += 1

    def close(self, dropped: int = 0) -> None:
        """Finish the session: close the CSV and mark session.yaml complete with the frame count.

        ``dropped``: pairs the recording thread could not keep up with (recorded in session.yaml).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._csv.close()
            self._meta["complete"] = True
            self._meta["frames"] = self.count
            self._meta["dropped_while_recording"] = int(dropped)
            _write_yaml_atomic(self.folder / "session.yaml", self._meta)

    def __enter__(self) -> "SessionWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SessionReader:
    """Random access to a recorded session (also one whose recorder was killed)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / "session.yaml"
        if not self.folder.is_dir():
            raise SourceError(f"session folder not found: {self.folder}")
        if not meta_path.is_file():
            raise SourceError(f"{self.folder} is not a recorded session (no session.yaml)")
        try:
            self.meta = yaml.safe_load(meta_path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SourceError(f"session file {meta_path} is not valid YAML: {exc}") from None
        version = self.meta.get("version")
        if version != SESSION_FORMAT_VERSION:
            raise SourceError(f"session {self.folder}: unsupported format version {version!r} "
                              f"(this program reads version {SESSION_FORMAT_VERSION})")
        self.rows = self._read_rows()

    def _read_rows(self) -> list[dict]:
        path = self.folder / "timestamps.csv"
        if not path.is_file():
            raise SourceError(f"session {self.folder} has no timestamps.csv")
        text = path.read_text()
        if text and not text.endswith("\n"):  # the recorder died mid-line: drop the partial line
            text = text[: text.rfind("\n") + 1]
        rows = []
        for row in csv.DictReader(io.StringIO(text)):
            try:
                rows.append({"ir_index": int(row["ir_index"]), "ir_timestamp": float(row["ir_timestamp"]),
                             "rgb_index": int(row["rgb_index"]), "rgb_timestamp": float(row["rgb_timestamp"]),
                             "ir_file": row["ir_file"], "rgb_file": row["rgb_file"]})
            except (KeyError, TypeError, ValueError):
                break  # a damaged line: everything before it is still good
        return rows

    @property
    def complete(self) -> bool:
        """False when the recorder did not close the session (killed, crashed)."""
        return bool(self.meta.get("complete"))

    def __len__(self) -> int:
        return len(self.rows)

    def frame_at(self, stream: str, i: int) -> Frame:
        row = self.rows[i]
        path = self.folder / row[f"{stream}_file"]
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise SourceError(f"session frame {path} is missing or unreadable")
        return Frame(image=image, timestamp=row[f"{stream}_timestamp"], index=row[f"{stream}_index"])

    def pair_at(self, i: int) -> FramePair:
        if not 0 <= i < len(self.rows):
            raise IndexError(f"pair {i} out of range (session has {len(self.rows)})")
        return FramePair(ir=self.frame_at("ir", i), rgb=self.frame_at("rgb", i))

    def __iter__(self) -> Iterator[FramePair]:
        for i in range(len(self.rows)):
            yield self.pair_at(i)


class SessionReplay:
    """Replay a session with the same pull interface as ``StereoCapture``.

    Args:
        folder: the session folder.
        speed: 1.0 = recorded pace, 2.0 = twice as fast, 0 = as fast as the consumer takes pairs (lossless).
        loop: start again at the end.

    When paced (speed > 0) and the consumer falls behind, overdue pairs are skipped (counted as dropped),
    like a live camera. ``position`` is the index of the next pair to be handed out.
    """

    def __init__(self, folder: str | Path, speed: float = 1.0, loop: bool = False) -> None:
        self.reader = SessionReader(folder)
        if speed < 0:
            raise SourceError(f"replay speed must be >= 0, got {speed}")
        self.loop = loop
        self._speed = float(speed)
        self._cond = threading.Condition()
        self._pos = 0
        self._paused = False
        self._steps = 0
        self._stopped = False
        self._anchor_wall = time.monotonic()
        self._anchor_pos = 0
        self._stats = PairStats()

    # ----- controls (any thread) -------------------------------------------------------------------------
    def start(self) -> None:
        with self._cond:
            self._stopped = False
            self._reanchor()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._steps = 0
            self._reanchor()
            self._cond.notify_all()

    def step(self) -> None:
        """While paused: hand out exactly the next pair (pauses if playing)."""
        with self._cond:
            self._paused = True
            self._steps += 1
            self._cond.notify_all()

    def seek(self, index: int) -> None:
        """Make ``index`` the next pair handed out (clamped to the session)."""
        with self._cond:
            self._pos = max(0, min(int(index), len(self.reader) - 1 if len(self.reader) else 0))
            self._reanchor()
            self._cond.notify_all()

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError(f"replay speed must be >= 0, got {speed}")
        with self._cond:
            self._speed = float(speed)
            self._reanchor()
            self._cond.notify_all()

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def position(self) -> int:
        return self._pos

    @property
    def length(self) -> int:
        return len(self.reader)

    @property
    def ended(self) -> bool:
        return not self.loop and self._pos >= len(self.reader)

    @property
    def stats(self) -> PairStats:
        with self._cond:
            return PairStats(paired=self._stats.paired, dropped=self._stats.dropped)

    def _reanchor(self) -> None:
        """Pace from the current position onwards (after seek, speed change, resume)."""
        self._anchor_wall = time.monotonic()
        self._anchor_pos = self._pos

    def _due(self, i: int) -> float:
        """Wall time at which pair ``i`` is due."""
        rows = self.reader.rows
        span = rows[i]["rgb_timestamp"] - rows[self._anchor_pos]["rgb_timestamp"]
        return self._anchor_wall + max(0.0, span) / self._speed

    # ----- consumer --------------------------------------------------------------------------------------
    def get_pair(self, timeout: float | None = None) -> FramePair | None:
        """The next pair when it is due; None on timeout, while paused (no step), at the end or after stop()."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._stopped or len(self.reader) == 0:
                    return None
                if self._pos >= len(self.reader):
                    if not self.loop:
                        return None
                    self._pos = 0
                    self._reanchor()
                wait = None
                if self._paused and self._steps == 0:
                    wait = 0.05
                elif self._speed > 0 and not self._paused:
                    now = time.monotonic()
                    # Behind schedule: skip to the newest pair already due (a live camera would have too).
                    while self._pos + 1 < len(self.reader) and self._due(self._pos + 1) <= now:
                        self._pos += 1
                        self._stats.dropped += 1
                    wait = self._due(self._pos) - now
                    if wait <= 0:
                        wait = None
                if wait is None:
                    index = self._pos
                    self._pos += 1
                    if self._paused:
                        self._steps -= 1
                    self._stats.paired += 1
                    break
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    wait = min(wait, remaining)
                self._cond.wait(wait)
        return self.reader.pair_at(index)


class SessionStreamSource(FrameSource):
    """One stream ("ir" or "rgb") of a recorded session as an ordinary, non-live FrameSource."""

    is_live = False

    def __init__(self, folder: str | Path, stream: str = "ir") -> None:
        if stream not in ("ir", "rgb"):
            raise SourceError(f"session stream must be 'ir' or 'rgb', got {stream!r}")
        self.folder, self.stream = Path(folder), stream
        self._reader: SessionReader | None = None
        self._pos = 0

    @property
    def description(self) -> str:
        return f"{self.stream} stream of session {self.folder}"

    def open(self) -> None:
        if self._reader is None:
            self._reader = SessionReader(self.folder)

    def read(self) -> Frame | None:
        self.open()
        if self._pos >= len(self._reader):
            return None
        frame = self._reader.frame_at(self.stream, self._pos)
        self._pos += 1
        return frame

    def close(self) -> None:
        pass
