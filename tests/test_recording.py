"""Recording sinks on their own threads: fusion is never blocked, drops are counted, nothing queued is lost."""

from __future__ import annotations

import threading
import time

import pytest
import yaml

from app.capture import LockstepCapture
from app.config import AppConfig, apply_overrides
from app.demo import open_demo_pair
from app.errors import RecordingError
from app.pipeline import FusionPipeline, PipelineOptions
from app.recorder import readable_frames
from app.recording import SessionSink, VideoSink, WriterThread, recording_sinks
from bench.faults import SlowRecorder


def test_writer_thread_writes_everything_queued_before_close():
    written = []
    thread = WriterThread("test writer", lambda item: (time.sleep(0.002), written.append(item)), max_queue=100)
    for i in range(50):
        assert thread.submit(i)
    thread.close()
    assert written == list(range(50)) and thread.dropped == 0 and not thread.alive


def test_a_full_queue_drops_and_counts_instead_of_blocking():
    busy, release = threading.Event(), threading.Event()
    messages = []
    thread = WriterThread("slow writer", lambda item: (busy.set(), release.wait(5)), max_queue=4,
                          on_status=messages.append)
    t0 = time.perf_counter()
    accepted = [thread.submit(0)]
    assert busy.wait(5)  # the writer is stuck on item 0
    accepted += [thread.submit(i) for i in range(1, 20)]
    elapsed = time.perf_counter() - t0
    release.set()
    thread.close()
    assert elapsed < 0.5  # 20 submissions against a stuck writer return at once
    # One item is being written, four wait in the queue: the other 15 are dropped and counted.
    assert thread.dropped == accepted.count(False) == 15 and thread.written == 5
    assert messages == ["slow writer: falling behind, dropping frames (counted in the summary)"]


def test_a_failing_writer_reports_once_and_stops():
    messages = []

    def disk_full(item):
        raise RecordingError("writing x.mp4 failed (No space left on device)")

    thread = WriterThread("video writer", disk_full, on_status=messages.append)
    thread.submit(1)
    deadline = time.monotonic() + 5
    while thread.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not thread.submit(2)
    thread.close()
    assert messages == ["video writer stopped: writing x.mp4 failed (No space left on device)"]


def test_slow_recording_does_not_slow_fusion(tmp_path):
    """A writer 10x slower than the pipeline: every frame is still fused, the sink stage stays short."""
    ir, rgb = open_demo_pair(160, 120, fps=25, frames=60, realtime=False)
    pipeline = FusionPipeline(LockstepCapture(ir, rgb), PipelineOptions(method="average", detector_async=False))
    sink = VideoSink(SlowRecorder(tmp_path / "slow.mp4", fps=25, delay_s=0.05), max_queue=8)
    pipeline.add_sink(sink)
    summary = pipeline.run()
    line = sink.close()
    assert summary["frames"] == 60
    assert summary["stage_ms"]["sinks"] < 5.0  # handing over, not encoding
    thread = sink.thread
    assert thread.dropped > 0 and thread.written + thread.dropped == 60
    (segment,) = sink.recorder.finished_segments
    assert readable_frames(segment) == thread.written
    assert f"{thread.dropped} of 60 frames dropped because the writer fell behind" in line


def test_recording_sinks_write_video_and_session(tmp_path):
    cfg = apply_overrides(AppConfig(), {"recording.path": str(tmp_path / "v.mp4"),
                                        "recording.session_dir": str(tmp_path / "session")})
    sinks = recording_sinks(cfg, on_status=print)
    assert [type(s) for s in sinks] == [VideoSink, SessionSink]
    ir, rgb = open_demo_pair(96, 64, fps=25, frames=12, realtime=False)
    pipeline = FusionPipeline(LockstepCapture(ir, rgb), PipelineOptions(method="average", detector_async=False))
    for sink in sinks:
        pipeline.add_sink(sink)
    pipeline.run()
    video_line, session_line = (s.close() for s in sinks)
    assert video_line.startswith("recorded 12 frames") and "dropped" not in video_line
    assert session_line == f"session: 12 raw pairs in {tmp_path / 'session'}"
    meta = yaml.safe_load((tmp_path / "session" / "session.yaml").read_text())
    assert meta["complete"] and meta["frames"] == 12 and meta["dropped_while_recording"] == 0


def test_bad_recording_path_is_refused_before_anything_runs(tmp_path):
    cfg = apply_overrides(AppConfig(), {"recording.path": str(tmp_path / "x.avi")})
    with pytest.raises(RecordingError, match="unsupported extension"):
        recording_sinks(cfg, on_status=print)
