"""StereoCapture: lossless file pairing to a clean end, realtime pacing, reconnect with back-off, corrupt frames."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from app.capture import StereoCapture
from app.errors import SourceError
from app.sources import ImageFolderSource, VideoFileSource
from app.sources.base import Frame, FrameSource


def _write_video(path, frames: int, fps: float, size=(64, 48)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), (i * 7) % 256, np.uint8))
    writer.release()


def _drain(capture, limit_s: float = 20.0):
    pairs, t_end = [], time.monotonic() + limit_s
    while not capture.ended and time.monotonic() < t_end:
        pair = capture.get_pair(timeout=0.2)
        if pair is not None:
            pairs.append(pair)
    return pairs


def test_two_video_files_pair_losslessly_to_a_clean_end(tmp_path):
    _write_video(tmp_path / "ir.avi", frames=27, fps=9.0)
    _write_video(tmp_path / "rgb.avi", frames=90, fps=30.0)
    capture = StereoCapture(VideoFileSource(tmp_path / "ir.avi"), VideoFileSource(tmp_path / "rgb.avi"),
                            tolerance_s=0.020)
    assert capture.realtime is False  # files default to lossless, consumer-paced reading
    capture.start()
    pairs = []
    while (pair := capture.get_pair(timeout=5.0)) is not None:
        pairs.append(pair)
        time.sleep(0.002)  # a consumer slower than the reader loses nothing
    assert capture.ended
    capture.stop()
    capture.stop()  # idempotent
    assert len(pairs) == 27  # one pair per thermal frame: 9 fps and 30 fps meet every 1/9 s within 20 ms
    assert [p.ir.index for p in pairs] == list(range(27))
    assert all(abs(p.skew) <= 0.020 for p in pairs)
    assert capture.stats.paired == 27


def test_realtime_mode_paces_files_by_their_timestamps(tmp_path):
    for name in ("ir", "rgb"):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(10):
            cv2.imwrite(str(folder / f"{i:02d}.png"), np.full((8, 8), i, np.uint8))
    capture = StereoCapture(ImageFolderSource(tmp_path / "ir", fps=20.0),
                            ImageFolderSource(tmp_path / "rgb", fps=20.0), realtime=True)
    t0 = time.monotonic()
    with capture:
        pairs = _drain(capture, limit_s=5.0)
    elapsed = time.monotonic() - t0
    assert capture.ended and 0.4 <= elapsed < 3.0  # 10 frames at 20 fps take ~0.45 s, not ~0
    assert pairs and all(p.ir.index == p.rgb.index for p in pairs)  # same instants pair together


class FlakyCamera(FrameSource):
    """Test double for a camera: opens fine, then fails ``failures`` times (read and reopen) and recovers."""

    is_live = True

    def __init__(self, failures: int, fail_after: int = 3) -> None:
        self.failures, self.fail_after = failures, fail_after
        self.opens = 0
        self.reads = 0
        self.broken = False

    @property
    def description(self) -> str:
        return "flaky test camera"

    def open(self) -> None:
        self.opens += 1
        if self.broken:
            if self.failures > 0:
                self.failures -= 1
                raise SourceError("device not answering")
            self.broken = False

    def read(self) -> Frame | None:
        self.reads += 1
        if self.reads == self.fail_after:
            self.broken = True
        if self.broken:
            raise SourceError("no frame within 1 s")
        time.sleep(0.01)
        return Frame(np.zeros((4, 4), np.uint8), time.monotonic(), self.reads)

    def close(self) -> None:
        pass


class SteadyCamera(FrameSource):
    is_live = True

    def __init__(self) -> None:
        self.i = 0

    @property
    def description(self) -> str:
        return "steady test camera"

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        time.sleep(0.01)
        self.i += 1
        return Frame(np.zeros((4, 4, 3), np.uint8), time.monotonic(), self.i)

    def close(self) -> None:
        pass


def test_lost_camera_is_reported_and_reconnected_with_backoff():
    messages: list[str] = []
    flaky = FlakyCamera(failures=3)
    capture = StereoCapture(flaky, SteadyCamera(), tolerance_s=0.010, on_status=messages.append,
                            reconnect_initial_s=0.02, reconnect_max_s=0.05)
    assert capture.realtime
    with capture:
        deadline = time.monotonic() + 10.0
        while capture.stats.reconnects == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        pair = capture.get_pair(timeout=2.0)  # pairs flow again after the reconnect
    assert capture.stats.reconnects == 1
    lost = [m for m in messages if "thermal camera lost" in m]
    assert len(lost) == 4  # first loss + 3 failed reopen attempts
    assert "reconnecting in 0.02 s" in lost[0] and "reconnecting in 0.05 s" in lost[-1]  # capped back-off
    assert any("reconnected" in m for m in messages)
    assert pair is not None and pair.ir.index > 3


def test_no_reconnect_ends_the_stream_with_a_message():
    messages: list[str] = []
    capture = StereoCapture(FlakyCamera(failures=100), SteadyCamera(), reconnect=False, on_status=messages.append)
    with capture:
        deadline = time.monotonic() + 5.0
        while not capture._state["ir"].ended.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)
    assert any("thermal camera failed" in m for m in messages)


def test_frames_of_the_wrong_shape_are_skipped_and_counted(tmp_path):
    for name in ("ir", "rgb"):
        (tmp_path / name).mkdir()
    for i in range(6):
        cv2.imwrite(str(tmp_path / "ir" / f"{i}.png"), np.full((8, 8), i, np.uint8))
        cv2.imwrite(str(tmp_path / "rgb" / f"{i}.png"), np.full((8, 8, 3), i, np.uint8))
    (tmp_path / "rgb" / "3.png").write_bytes(b"garbage")
    capture = StereoCapture(ImageFolderSource(tmp_path / "ir"), ImageFolderSource(tmp_path / "rgb"))
    with capture:
        pairs = _drain(capture)
    assert [p.ir.index for p in pairs] == [0, 1, 2, 4, 5]  # thermal frame 3 has no colour partner
    assert capture.stats.corrupt == 1 and capture.stats.unmatched >= 1


def test_missing_source_fails_at_start_with_its_name(tmp_path):
    capture = StereoCapture(VideoFileSource(tmp_path / "missing_ir.mp4"), SteadyCamera())
    with pytest.raises(SourceError, match="missing_ir.mp4"):
        capture.start()
    capture.stop()
