"""Segmented recording: readable files, segment rollover, crash safety (SIGKILL), clear errors."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.errors import RecordingError
from app.recorder import SegmentedRecorder, format_bytes, pyav_h264_available

REPO = Path(__file__).resolve().parents[1]


def frame(i: int, size=(96, 64)) -> np.ndarray:
    img = np.zeros((size[1], size[0], 3), np.uint8)
    cv2.putText(img, str(i), (5, size[1] - 10), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
    img[:, :, 1] = (i * 10) % 256
    return img


def frame_count(path: Path) -> int:
    """Frames OpenCV can actually decode from ``path``."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.mark.parametrize("codec", ["auto", "mp4v", "mjpg"])
def test_segments_roll_over_and_read_back(tmp_path, codec):
    rec = SegmentedRecorder(tmp_path / "out.mp4", fps=10, segment_seconds=1.0, codec=codec)
    for i in range(25):
        rec.write(frame(i))
    assert rec.bytes_written > 0 and rec.frames_written == 25
    segments = rec.close()
    suffix = ".avi" if codec == "mjpg" else ".mp4"
    assert [p.name for p in segments] == [f"out_{i:03d}{suffix}" for i in range(3)]
    assert [frame_count(p) for p in segments] == [10, 10, 5]
    if codec == "auto":
        assert rec.codec == ("h264" if pyav_h264_available() else "mp4v")
    assert rec.close() == segments  # closing twice is harmless


def test_h264_is_used_when_pyav_has_libx264(tmp_path):
    if not pyav_h264_available():
        pytest.skip("PyAV with libx264 not installed: the recorder falls back to mp4v (tested above)")
    import av

    rec = SegmentedRecorder(tmp_path / "clip.mp4", fps=25, codec="h264")
    for i in range(5):
        rec.write(frame(i, (97, 63)))  # odd sizes are padded for yuv420p
    (path,) = rec.close()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) == 5


def test_frame_size_change_starts_a_new_segment(tmp_path):
    with SegmentedRecorder(tmp_path / "o.mp4", fps=10, codec="mp4v") as rec:
        rec.write(frame(0, (96, 64)))
        rec.write(frame(1, (96, 64)))
        rec.write(frame(2, (128, 96)))
    assert [frame_count(p) for p in rec.finished_segments] == [2, 1]


def test_unwritable_folder_is_a_recording_error(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(RecordingError, match="cannot create the recording folder"):
        SegmentedRecorder(blocker / "sub" / "out.mp4")


def test_write_failure_keeps_finished_segments(tmp_path):
    rec = SegmentedRecorder(tmp_path / "o.mp4", fps=10, segment_seconds=0.5, codec="mp4v")
    for i in range(7):
        rec.write(frame(i))
    assert len(rec.finished_segments) == 1

    def disk_full(_frame):
        raise OSError(errno.ENOSPC, "No space left on device")

    rec._writer.write = disk_full  # the disk fills up in the middle of the second segment
    with pytest.raises(RecordingError, match="No space left on device.*finished segments are kept"):
        rec.write(frame(7))
    assert frame_count(rec.finished_segments[0]) == 5
    with pytest.raises(RecordingError, match="already closed"):
        rec.write(frame(8))


def test_sigkill_loses_at_most_the_current_segment(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time, numpy as np
        sys.path.insert(0, {str(REPO)!r})
        from app.recorder import SegmentedRecorder
        rec = SegmentedRecorder({str(tmp_path / 'crash.mp4')!r}, fps=10, segment_seconds=0.5)
        i = 0
        while True:
            img = np.full((64, 96, 3), i % 256, np.uint8)
            rec.write(img)
            i += 1
            if i % 5 == 0:
                print("finished", len(rec.finished_segments), flush=True)
            time.sleep(0.005)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        finished = 0
        while finished < 3 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            finished = int(line.split()[1])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert finished >= 3, "the child recorder did not get going"
    segments = sorted(tmp_path.glob("crash_*.mp4"))
    readable = [p for p in segments if frame_count(p) == 5]
    # Every segment but the one being written when the process died is complete and readable.
    assert len(readable) >= len(segments) - 1 >= 3


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(2048) == "2.0 KB"
    assert format_bytes(5 * 1024 * 1024) == "5.0 MB"


def test_timestamps_keep_real_time_when_frames_come_slowly(tmp_path):
    rec = SegmentedRecorder(tmp_path / "rt.mp4", fps=10, codec="mp4v")
    # A slow method: frames at 0.0, 0.3 and 0.42 s; then a replay seek back in time.
    for i, t in enumerate([0.0, 0.3, 0.42, 0.1]):
        rec.write(frame(i), timestamp=t)
    (path,) = rec.close()
    # Video slots 0, 3 and 4 at 10 fps; slots 1-2 repeat frame 0; the seek back appends one frame.
    assert rec.frames_written == frame_count(path) == 6
    cap = cv2.VideoCapture(str(path))
    greens = [int(cap.read()[1][5, 5, 1]) for _ in range(6)]
    assert greens[0] == greens[1] == greens[2]  # frame 0 held until frame 1's slot
    assert greens[3] != greens[2]


def test_huge_gaps_are_capped(tmp_path):
    rec = SegmentedRecorder(tmp_path / "gap.mp4", fps=10, codec="mp4v")
    rec.write(frame(0), timestamp=0.0)
    rec.write(frame(1), timestamp=3600.0)
    rec.close()
    assert rec.frames_written == 1 + 50 + 1  # at most MAX_GAP_S (5 s) of repeats
