"""The Qt viewer offscreen: it shows frames, switches methods, toggles recording and the overlay, takes
snapshots, and closing it joins every pipeline thread."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets")
from PyQt6.QtWidgets import QApplication  # noqa: E402

from app.config import apply_overrides, AppConfig  # noqa: E402
from app.pipeline import FusionPipeline, PipelineOptions  # noqa: E402
from app.viewer import SHORTCUTS, MainWindow  # noqa: E402
from test_pipeline import demo_pairs, pipeline_threads  # noqa: E402


@pytest.fixture(scope="module")
def qapp():
    return QApplication.instance() or QApplication(["test"])


def pump(qapp, until, timeout=20.0):
    """Process Qt events until ``until()`` is true (or fail after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        qapp.processEvents()
        time.sleep(0.01)


def make_window(tmp_path, detector=None, **cfg_overrides):
    cfg = apply_overrides(AppConfig(), {"viewer.snapshot_dir": str(tmp_path / "snaps"),
                                        "recording.path": str(tmp_path / "rec" / "view.mp4"), **cfg_overrides})
    pipeline = FusionPipeline(demo_pairs(frames=None, size=(160, 120)), PipelineOptions(method="average"),
                              detector=detector)
    return MainWindow(cfg, pipeline)


def test_viewer_shows_frames_records_and_closes_cleanly(qapp, tmp_path):
    window = make_window(tmp_path, **{"recording.session_dir": str(tmp_path / "raw")})
    window.show()
    window.start()
    pump(qapp, lambda: window.frames_shown >= 3)
    assert window.fused_view.pixmap() is not None and not window.fused_view.pixmap().isNull()
    assert window.ir_view.pixmap() is not None

    # No detector configured: the overlay controls are off and the window says why.
    assert not window.detect_box.isEnabled()
    assert "no detector model configured" in window.detect_box.toolTip()
    assert window._detector_label.text() == "no detector configured"

    window.record_button.click()
    assert window.recording
    shown = window.frames_shown
    pump(qapp, lambda: window.frames_shown >= shown + 5 and window.recorder.frames_written >= 5)
    window._refresh()
    assert window.record_button.text().startswith("■ 00:")
    window.record_button.click()
    assert not window.recording
    segments = sorted((tmp_path / "rec").glob("view_*.mp4"))
    (session,) = sorted((tmp_path / "raw").glob("session_*"))
    assert (session / "session.yaml").is_file() and len(list((session / "rgb").glob("*.png"))) >= 5
    assert segments and int(cv2.VideoCapture(str(segments[0])).get(cv2.CAP_PROP_FRAME_COUNT)) >= 5

    snap = window.save_snapshot()
    assert snap is not None and cv2.imread(str(snap)).shape == (120, 160, 3)

    window.select_method_index(window.methods.index("max"))
    pump(qapp, lambda: window.latest is not None and window.latest.method == "max")

    window.toggle_pause()
    assert window.pipeline.paused and window.play_button.text() == "Play"
    window.toggle_pause()

    window.close()
    assert window.closed_cleanly
    assert pipeline_threads() == []
    assert not any(t.name.startswith("fusion") for t in threading.enumerate())


def test_overlay_toggle_and_threshold_reach_the_pipeline(qapp, tmp_path):
    from test_detector import build_yolo_like_onnx, row

    from app.detector import YoloV5Detector

    path = tmp_path / "tiny.onnx"
    build_yolo_like_onnx(path, np.array([row(32, 32, 16, 24, 0.9, [0.9, 0.0, 0.0])], np.float32), names=["person"])
    window = make_window(tmp_path, detector=YoloV5Detector(path))
    window.show()
    window.start()
    try:
        assert window.detect_box.isEnabled() and window.detect_box.isChecked()
        pump(qapp, lambda: window.latest is not None and window.latest.detections)
        window.detect_box.setChecked(False)
        assert window.pipeline.show_detections is False
        window.threshold_slider.setValue(60)
        assert window.pipeline.detector.conf_threshold == pytest.approx(0.60)
    finally:
        window.close()
    assert pipeline_threads() == []


def test_help_lists_every_shortcut(qapp, tmp_path):
    window = make_window(tmp_path)
    text = window.help_text()
    for key, _ in SHORTCUTS:
        assert f"<b>{key}</b>" in text
    assert "1 " in text and window.methods[0] in text
    window.close()
    assert pipeline_threads() == []


def test_end_of_stream_reaches_the_status_bar(qapp, tmp_path):
    cfg = apply_overrides(AppConfig(), {"viewer.snapshot_dir": str(tmp_path)})
    pipeline = FusionPipeline(demo_pairs(frames=3, size=(96, 72)), PipelineOptions(method="average"))
    window = MainWindow(cfg, pipeline)
    window.show()
    window.start()
    try:
        pump(qapp, lambda: "end of stream" in window.statusBar().currentMessage())
        assert window.frames_shown >= 1
    finally:
        window.close()
    assert pipeline_threads() == []


def test_replay_controls_drive_a_replayed_session(qapp, tmp_path):
    session = pytest.importorskip("app.session")
    from app.demo import open_demo_pair
    from app.capture import LockstepCapture

    ir, rgb = open_demo_pair(96, 72, frames=12, realtime=False)
    capture = LockstepCapture(ir, rgb)
    capture.start()
    with session.SessionWriter(tmp_path / "s", "demo thermal", "demo colour") as writer:
        while (pair := capture.get_pair()) is not None:
            writer.write_pair(pair)
    capture.stop()

    cfg = apply_overrides(AppConfig(), {"viewer.snapshot_dir": str(tmp_path)})
    replay = session.SessionReplay(tmp_path / "s", speed=1.0)
    window = MainWindow(cfg, FusionPipeline(replay, PipelineOptions(method="average")))
    assert window.is_replay and window.seek_slider.isEnabled() and window.seek_slider.maximum() == 11
    window.show()
    window.start()
    try:
        pump(qapp, lambda: window.frames_shown >= 2)
        window.speed_box.setCurrentText("4x")
        assert replay.speed == 4.0
        window.toggle_pause()
        shown = window.frames_shown
        window.seek_slider.setValue(9)
        window._on_seek()
        window.step()
        pump(qapp, lambda: window.frames_shown > shown and window.latest.index == 9)
    finally:
        window.close()
    assert pipeline_threads() == []
