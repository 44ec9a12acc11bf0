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
from app.recorder import SegmentedRecorder, format_bytes, pyav_h264_available, readable_frames

REPO = Path(__file__).resolve().parents[1]


def frame(i: int, size=(96, 64)) -> np.ndarray:
    img = np.zeros((size[1], size[0], 3), np.uint8)
    cv2.putText(img, str(i), (5, size[1] - 10), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
    img[:, :, 1] = (i * 10) % 256
    return img


def pts_seconds(path: Path) -> list[float]:
    """Presentation times of the decodable frames of ``path``."""
    import av

    with av.open(str(path)) as container:
        return [float(f.pts * f.time_base) for f in container.decode(video=0)]


@pytest.mark.parametrize("codec, suffix", [("auto", ".mp4"), ("mp4v", ".mp4"), ("mjpg", ".mp4"),
                                           ("auto", ".mkv"), ("auto", ".ts")])
def test_segments_roll_over_and_read_back(tmp_path, codec, suffix):
    rec = SegmentedRecorder(tmp_path / f"out{suffix}", fps=10, segment_seconds=1.0, codec=codec)
    for i in range(25):
        rec.write(frame(i))
    assert rec.bytes_written > 0 and rec.frames_written == 25
    segments = rec.close()
    assert [p.name for p in segments] == [f"out_{i:03d}{suffix}" for i in range(3)]
    assert [readable_frames(p) for p in segments] == [10, 10, 5]
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
    # OpenCV (what many tools use) reads the fragmented MP4 too.
    cap = cv2.VideoCapture(str(path))
    assert sum(1 for _ in iter(lambda: cap.read()[0] or None, None)) == 5


def test_frame_size_change_starts_a_new_segment(tmp_path):
    with SegmentedRecorder(tmp_path / "o.mp4", fps=10) as rec:
        rec.write(frame(0, (96, 64)))
        rec.write(frame(1, (96, 64)))
        rec.write(frame(2, (128, 96)))
    assert [readable_frames(p) for p in rec.finished_segments] == [2, 1]


def test_unsupported_extension_is_refused(tmp_path):
    with pytest.raises(RecordingError, match=r"unsupported extension '\.avi'; use \.mp4, \.mkv, \.ts"):
        SegmentedRecorder(tmp_path / "x.avi")
    assert not list(tmp_path.iterdir())


def test_an_earlier_recording_is_never_overwritten(tmp_path):
    messages = []
    first = SegmentedRecorder(tmp_path / "night.mp4", fps=10)
    first.write(frame(0))
    (old,) = first.close()
    before = old.read_bytes()
    second = SegmentedRecorder(tmp_path / "night.mp4", fps=10, on_status=messages.append)
    second.write(frame(1))
    (new,) = second.close()
    assert new.name == "night-2_000.mp4" and old.read_bytes() == before
    assert second.renamed_from == old
    assert messages == [f"{old} already exists and is kept; recording to {new}"]
    third = SegmentedRecorder(tmp_path / "night.mp4", fps=10)
    assert third.segment_path(0).name == "night-3_000.mp4"


def test_unwritable_folder_is_a_recording_error(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(RecordingError, match="cannot create the recording folder"):
        SegmentedRecorder(blocker / "sub" / "out.mp4")


def test_write_failure_keeps_finished_segments(tmp_path):
    rec = SegmentedRecorder(tmp_path / "o.mp4", fps=10, segment_seconds=0.5)
    for i in range(7):
        rec.write(frame(i))
    assert len(rec.finished_segments) == 1

    def disk_full(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    rec._writer.write = disk_full  # the disk fills up in the middle of the second segment
    with pytest.raises(RecordingError, match="No space left on device.*finished segments are kept"):
        rec.write(frame(7))
    assert readable_frames(rec.finished_segments[0]) == 5
    with pytest.raises(RecordingError, match="already closed"):
        rec.write(frame(8))


def test_sigkill_loses_at_most_about_one_second(tmp_path):
    """A recorder killed with SIGKILL mid-segment: every frame up to the last keyframe (1 s) is readable."""
    script = textwrap.dedent(f"""
        import sys, time, numpy as np
        sys.path.insert(0, {str(REPO)!r})
        from app.recorder import SegmentedRecorder
        rec = SegmentedRecorder({str(tmp_path / 'crash.mp4')!r}, fps=20, segment_seconds=60)
        i = 0
        while True:
            img = np.full((64, 96, 3), (i * 7) % 256, np.uint8)
            rec.write(img, timestamp=i / 20)
            i += 1
            print(i, flush=True)
            time.sleep(0.002)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    written = 0
    try:
        deadline = time.monotonic() + 60
        while written < 75 and time.monotonic() < deadline:  # 3.75 s of video, in the first segment
            line = proc.stdout.readline()
            if not line:
                break
            written = int(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert written >= 75, "the child recorder did not get going"
    (segment,) = sorted(tmp_path.glob("crash_*.mp4"))  # the open segment, never finalised
    readable = readable_frames(segment)
    # Frames since the last keyframe (at most 1 s = 20 frames) may be lost, nothing before.
    assert written - 20 - 1 <= readable <= written + 5  # a frame or two may still have been in flight
    assert pts_seconds(segment)[:3] == [0.0, 0.05, 0.1]


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(2048) == "2.0 KB"
    assert format_bytes(5 * 1024 * 1024) == "5.0 MB"


def test_timestamps_become_presentation_times(tmp_path):
    rec = SegmentedRecorder(tmp_path / "rt.mp4", fps=10)
    # A slow method: frames at 0.0, 0.3 and 0.42 s; then a replay seek back in time (one frame step).
    for i, t in enumerate([0.0, 0.3, 0.42, 0.1]):
        rec.write(frame(i), timestamp=t)
    (path,) = rec.close()
    assert rec.frames_written == readable_frames(path) == 4  # no repeated frames are encoded
    assert pts_seconds(path) == pytest.approx([0.0, 0.3, 0.42, 0.52])


def test_huge_gaps_are_capped(tmp_path):
    rec = SegmentedRecorder(tmp_path / "gap.mp4", fps=10)
    rec.write(frame(0), timestamp=0.0)
    rec.write(frame(1), timestamp=3600.0)
    (path,) = rec.close()
    assert pts_seconds(path) == pytest.approx([0.0, rec.MAX_GAP_S])
