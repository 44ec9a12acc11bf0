"""FusionPipeline: headless runs on the demo, recording, method switching and fallback, detection thread,
registration fallback, pause/step, clean shutdown, and exact replay of a recorded session."""

from __future__ import annotations

import threading
import time
import cv2
import numpy as np
import pytest

from app.demo import DemoRgbSource, DemoScene, DemoThermalSource, open_demo_pair
from app.capture import LockstepCapture
from app.pipeline import STAGES, FusedFrame, FusionPipeline, PipelineOptions
from app.recorder import SegmentedRecorder


def demo_pairs(frames=10, size=(160, 120), seed=0, raw16=False) -> LockstepCapture:
    """Deterministic demo pairs (frame i of each source), delivered as fast as they are asked for."""
    return LockstepCapture(*open_demo_pair(*size, fps=25, seed=seed, frames=frames, realtime=False, raw16=raw16))


def pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in ("fusion-worker", "detector")]


def test_headless_run_records_a_video_with_every_frame(tmp_path):
    pipeline = FusionPipeline(demo_pairs(frames=12), PipelineOptions(method="average"))
    recorder = SegmentedRecorder(tmp_path / "fused.mp4", fps=25)
    pipeline.add_sink(lambda r: recorder.write(r.annotated))
    summary = pipeline.run(max_frames=12)
    (segment,) = recorder.close()
    cap = cv2.VideoCapture(str(segment))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    ok, first = cap.read()
    assert ok and first.shape == (120, 160, 3)
    assert summary["frames"] == 12 and summary["method"] == "average"
    assert set(summary["stage_ms"]) == set(STAGES)
    assert pipeline_threads() == []


def test_from_sources_builds_a_lockstep_pipeline_for_benchmarks():
    ir, rgb = open_demo_pair(96, 72, frames=None, realtime=False)
    summary = FusionPipeline.from_sources(ir, rgb, PipelineOptions(method="max"), lockstep=True).run(max_frames=4)
    assert summary["frames"] == 4 and summary["fps"] > 0 and summary["stage_ms"]["fuse"] > 0
    assert summary["pairing"] == {"paired": 4, "dropped": 0, "unmatched": 0}


def test_results_carry_images_timings_and_indices():
    results: list[FusedFrame] = []
    pipeline = FusionPipeline(demo_pairs(frames=5, raw16=True), PipelineOptions(method="gff"))
    pipeline.add_sink(results.append)
    pipeline.run()  # until end of stream
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    r = results[-1]
    assert r.fused.shape == (120, 160, 3) and r.fused.dtype == np.uint8
    assert r.ir.shape == (120, 160) and r.ir.dtype == np.uint8  # 16-bit raw went through the gain control
    assert r.pair.ir.image.dtype == np.uint16  # the raw counts are kept for session recording
    assert r.annotated is r.fused  # nothing to draw without a detector
    assert r.timings["fuse"] > 0 and r.latency_ms >= r.timings["fuse"]
    assert "end of stream" in pipeline.status_messages


def test_fusion_really_brings_thermal_targets_into_the_colour_view():
    scene = DemoScene(320, 240, seed=0)
    pairs = LockstepCapture(DemoThermalSource(scene, frames=1, realtime=False), DemoRgbSource(scene, frames=1, realtime=False))
    results = []
    pipeline = FusionPipeline(pairs, PipelineOptions(method="max"))
    pipeline.add_sink(results.append)
    pipeline.run()
    mask = scene.pedestrian_mask(0)
    fused_y = cv2.cvtColor(results[0].fused, cv2.COLOR_BGR2GRAY).astype(float)
    rgb_y = cv2.cvtColor(results[0].rgb, cv2.COLOR_BGR2GRAY).astype(float)
    assert fused_y[mask].mean() - rgb_y[mask].mean() > 50  # pedestrians now visible


def test_unbuildable_method_falls_back_with_a_message():
    pipeline = FusionPipeline(demo_pairs(frames=3), PipelineOptions(method="no_such_method", fallbacks=("gff", "average")))
    summary = pipeline.run()
    assert summary["method"] == "gff"
    assert any("'no_such_method' unavailable" in m and "using 'gff'" in m for m in pipeline.status_messages)


def test_method_switch_at_run_time_from_another_thread():
    seen = []
    pipeline = FusionPipeline(demo_pairs(frames=None), PipelineOptions(method="average"))

    def sink(r):
        seen.append(r.method)
        if len(seen) == 3:
            threading.Thread(target=pipeline.set_method, args=("ironbow",)).start()

    pipeline.add_sink(sink)
    pipeline.run(max_frames=12)
    assert seen[0] == "average" and seen[-1] == "ironbow"
    assert seen.index("ironbow") >= 3
    pipeline2 = FusionPipeline(demo_pairs(frames=None), PipelineOptions(method="average"))
    pipeline2.set_method("bogus")
    pipeline2.run(max_frames=2)
    assert pipeline2.method == "average"
    assert any("cannot switch to fusion method 'bogus'" in m for m in pipeline2.status_messages)


def test_palette_selector_rebuilds_palette_modes():
    pipeline = FusionPipeline(demo_pairs(frames=None), PipelineOptions(method="alpha_blend", palette="ironbow"))
    outputs = []
    pipeline.add_sink(lambda r: outputs.append(r.fused))
    pipeline.add_sink(lambda r: len(outputs) == 2 and pipeline.set_palette("rainbow"))
    pipeline.run(max_frames=5)
    assert pipeline.options.palette == "rainbow"
    assert any("alpha_blend" in m for m in pipeline.status_messages)
    assert not np.array_equal(outputs[0], outputs[-1])


def test_thermal_of_another_size_is_resized_and_said_once():
    ir = DemoThermalSource(DemoScene(80, 60, seed=0), frames=3, realtime=False)
    rgb = DemoRgbSource(DemoScene(160, 120, seed=0), frames=3, realtime=False)
    results = []
    pipeline = FusionPipeline(LockstepCapture(ir, rgb), PipelineOptions(method="average"))
    pipeline.add_sink(results.append)
    pipeline.run()
    assert all(r.fused.shape == (120, 160, 3) for r in results)
    notes = [m for m in pipeline.status_messages if "no calibration file" in m]
    assert len(notes) == 1 and "80x60" in notes[0] and "160x120" in notes[0]


def test_calibration_file_registers_thermal_onto_the_colour_grid(tmp_path):
    calibration_file = pytest.importorskip("calibration.calibration_file")
    from app.config import apply_overrides, AppConfig
    from app.assembly import create_registrar

    # Thermal 80x60 -> colour 160x120: scale 2 and shift 6 px right.
    h = np.array([[2.0, 0, 6.0], [0, 2.0, 0], [0, 0, 1.0]])
    path = calibration_file.save_calibration(
        calibration_file.Calibration(homography=h, ir_size=(80, 60), rgb_size=(160, 120)), tmp_path / "cal.yaml")
    cfg = apply_overrides(AppConfig(), {"calibration": str(path)})
    ir = DemoThermalSource(DemoScene(80, 60, seed=0), frames=1, realtime=False)
    rgb = DemoRgbSource(DemoScene(160, 120, seed=0), frames=1, realtime=False)
    results = []
    pipeline = FusionPipeline(LockstepCapture(ir, rgb), PipelineOptions(method="average"),
                              registrar=create_registrar(cfg))
    pipeline.add_sink(results.append)
    pipeline.run()
    registered = results[0].ir
    assert registered.shape == (120, 160)
    assert (registered[:, :5] == 0).all() and registered[:, 8:].mean() > 20  # shifted: empty strip on the left
    assert not any("no calibration file" in m for m in pipeline.status_messages)


def test_bad_calibration_file_is_a_clear_error(tmp_path):
    pytest.importorskip("calibration.calibration_file")
    from app.config import apply_overrides, AppConfig
    from app.errors import AppError
    from app.assembly import create_registrar

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nhomography: [1, 2]\n")
    with pytest.raises(AppError, match="bad.yaml"):
        create_registrar(apply_overrides(AppConfig(), {"calibration": str(bad)}))


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory):
    from test_detector import build_yolo_like_onnx, row

    from app.detector import YoloV5Detector

    pred = np.array([row(32, 32, 16, 24, 0.9, [0.9, 0.0, 0.0])], np.float32)
    path = tmp_path_factory.mktemp("pipe_det") / "tiny.onnx"
    build_yolo_like_onnx(path, pred, names=["person", "bicycle", "car"])
    return YoloV5Detector(path)


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.mark.parametrize("detector_async", [False, True])
def test_detections_are_drawn_and_can_be_toggled(tiny_detector, detector_async):
    results = []
    pipeline = FusionPipeline(demo_pairs(frames=None), PipelineOptions(method="average", detector_async=detector_async),
                              detector=tiny_detector)
    pipeline.add_sink(results.append)
    pipeline.start()
    try:
        # Async: the first boxes come whenever the detector thread has finished its first frame.
        wait_for(lambda: any(r.detections for r in results))
        pipeline.show_detections = False
        n = len(results)
        wait_for(lambda: len(results) >= n + 3)
    finally:
        pipeline.stop()
    with_boxes = [r for r in results[:n] if r.detections and r.annotated is not r.fused]
    assert with_boxes, "the overlay was drawn"
    assert with_boxes[-1].detections[0].label == "person"
    assert not np.array_equal(with_boxes[-1].annotated, with_boxes[-1].fused)
    assert results[-1].detections and results[-1].annotated is results[-1].fused  # overlay hidden, boxes kept
    if not detector_async:
        assert all(r.detections for r in results)
    assert pipeline_threads() == []


def test_pause_and_step_process_one_pair_at_a_time():
    results = []
    pipeline = FusionPipeline(demo_pairs(frames=None), PipelineOptions(method="average"))
    pipeline.add_sink(results.append)
    pipeline.pause()
    pipeline.start()
    try:
        assert not pipeline.wait(0.3) and results == []
        pipeline.step()
        for _ in range(50):
            if results:
                break
            pipeline.wait(0.05)
        pipeline.wait(0.2)
        assert len(results) == 1
        pipeline.resume()
        for _ in range(100):
            if len(results) >= 4:
                break
            pipeline.wait(0.05)
        assert len(results) >= 4
    finally:
        pipeline.stop()
    assert pipeline_threads() == []


def test_with_the_real_stereo_capture():
    capture_mod = pytest.importorskip("app.capture", reason="app.capture (StereoCapture) not available yet")
    ir, rgb = open_demo_pair(160, 120, fps=25, frames=40, realtime=True)
    capture = capture_mod.StereoCapture(ir, rgb)
    results = []
    pipeline = FusionPipeline(capture, PipelineOptions(method="average"))
    pipeline.add_sink(results.append)
    summary = pipeline.run(max_frames=10, timeout_s=30)
    assert summary["frames"] == 10
    indices = [r.index for r in results]
    assert indices == sorted(indices)
    assert all(abs(r.pair.ir.timestamp - r.pair.rgb.timestamp) <= 0.020 for r in results)
    assert pipeline_threads() == []


def test_replayed_session_gives_the_same_fused_frames(tmp_path):
    session = pytest.importorskip("app.session", reason="app.session (SessionWriter/SessionReplay) not available yet")
    live = []
    writer = session.SessionWriter(tmp_path / "sess", "demo thermal", "demo colour")
    pipeline = FusionPipeline(demo_pairs(frames=6, raw16=True), PipelineOptions(method="gff"))
    pipeline.add_sink(lambda r: (writer.write_pair(r.pair), live.append(r)))
    pipeline.run()
    writer.close()

    replayed = []
    replay = session.SessionReplay(tmp_path / "sess", speed=0.0)
    pipeline2 = FusionPipeline(replay, PipelineOptions(method="gff"))
    pipeline2.add_sink(replayed.append)
    pipeline2.run(timeout_s=30)
    assert [r.index for r in replayed] == [r.index for r in live]
    for a, b in zip(live, replayed):
        assert np.array_equal(a.fused, b.fused)


def test_slow_processing_takes_the_newest_pair_and_drops_stale_ones():
    from app.capture import StereoCapture

    ir, rgb = open_demo_pair(96, 72, fps=50, frames=None, realtime=True)
    pipeline = FusionPipeline(StereoCapture(ir, rgb, realtime=True), PipelineOptions(method="average"))
    results = []
    pipeline.add_sink(lambda r: (results.append(r.index), time.sleep(0.08)))  # ~12 fps consumer, 50 fps cameras
    summary = pipeline.run(max_frames=6, timeout_s=30)
    gaps = np.diff(results)
    assert gaps.min() >= 1 and gaps.max() >= 3  # skipped ahead instead of queueing
    assert summary["pairing"]["dropped"] + summary["pairing"]["unmatched"] > 0
    assert pipeline_threads() == [] and not any(t.name.startswith("capture-") for t in threading.enumerate())
