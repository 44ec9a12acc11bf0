"""End-to-end speed of fusion methods through the application's pipeline on the demo sources.

Every measurement is one *segment*: a fresh :class:`app.pipeline.FusionPipeline` (the one the viewer and the
headless app use) on :class:`app.capture.LockstepCapture` over the procedural demo thermal/RGB sources at
one resolution, with the detector inline (deterministic). The first ``warmup`` frames (method build, ONNX
export or cache load, first-touch allocations) are not counted. Segments of all methods and resolutions
are interleaved and repeated; the figures are medians over the repeats. Peak memory is measured in a
separate short segment (tracemalloc slows allocation-heavy code, so it is kept out of the timed runs).
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from app.demo import open_demo_pair
from app.capture import LockstepCapture
from app.pipeline import STAGES, FusedFrame, FusionPipeline, PipelineOptions

from .noop import NOOP, ensure_registered

log = logging.getLogger(__name__)

RESOLUTIONS = ((320, 240), (640, 480), (1280, 720), (1920, 1080))
#: methods whose frames cost seconds: they get ``slow_frames`` frames instead of ``frames``
SLOW_METHODS = frozenset({"m2pn", "egmt"})
#: a method name ending in this runs with the pipeline's video mode on (``PipelineOptions.video_mode``), as
#: the viewer does for cameras, video files and replays, e.g. ``m2pn_rt+video``
VIDEO_SUFFIX = "+video"


def split_video_suffix(name: str) -> tuple[str, bool]:
    """``m2pn_rt+video`` -> (``m2pn_rt``, True); ``gff`` -> (``gff``, False)."""
    return (name[: -len(VIDEO_SUFFIX)], True) if name.endswith(VIDEO_SUFFIX) else (name, False)


@dataclass
class BenchConfig:
    """What to measure.

    Attributes:
        methods: method names (``noop`` is always added: the ratios need it).
        resolutions: (width, height) pairs.
        frames: counted frames per segment; ``slow_frames`` for :data:`SLOW_METHODS`.
        warmup: frames run first and not counted.
        repeats: interleaved repetitions (median taken).
        method_options: per-method constructor options (e.g. ``{"m2pn_rt": {"weights": "..."}}``).
        detector: YOLOv5 ONNX model for the detect stage (None: no detector, detect = 0 ms).
        memory: also measure peak memory (one extra short segment per method and resolution).
    """

    methods: list[str]
    resolutions: list[tuple[int, int]] = field(default_factory=lambda: list(RESOLUTIONS))
    frames: int = 30
    slow_frames: int = 3
    warmup: int = 3
    repeats: int = 3
    method_options: dict[str, dict] = field(default_factory=dict)
    detector: str | None = None
    memory: bool = True


def device_description() -> str:
    """CPU model and core count, e.g. ``Intel Xeon ... (2 cores), CPU only``."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} cores), CPU only"


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


@dataclass
class Segment:
    """What one pipeline run measured (counted frames only)."""

    frames: int
    fps: float
    stage_ms: dict[str, float]
    backend: str


def _backend_of(pipeline: FusionPipeline) -> str:
    """What runs the method: network methods expose ``backend`` (m2pn_rt: e.g. ``cpu (onnxruntime, fp32)``)."""
    method = getattr(getattr(pipeline, "_engine", None), "method", None)
    backend = getattr(method, "backend", None)
    if backend is None:
        return "cpu (numpy/opencv)"
    if "(" not in str(backend):  # the m2pn method holds only the requested name; it runs eager torch on the CPU
        return f"cpu (torch eager, requested {backend})"
    return str(backend)


def run_segment(method: str, width: int, height: int, frames: int, warmup: int, options: dict | None = None,
                detector=None, after_warmup: Callable[[], None] | None = None) -> Segment:
    """Run ``warmup + frames`` demo pairs through a fresh pipeline; figures over the last ``frames``.

    ``after_warmup`` is called (on the worker thread) once the warm-up frames are done.
    """
    ensure_registered()
    method, video_mode = split_video_suffix(method)
    ir_src, rgb_src = open_demo_pair(width, height, fps=25.0, seed=0, frames=warmup + frames, realtime=False)
    pipeline = FusionPipeline(LockstepCapture(ir_src, rgb_src),
                              PipelineOptions(method=method, fallbacks=(), method_options=dict(options or {}),
                                              show_detections=True, detector_async=False, video_mode=video_mode),
                              detector=detector)
    stamps: list[float] = []
    timings: list[dict[str, float]] = []
    backend = {}

    def sink(result: FusedFrame) -> None:
        stamps.append(time.perf_counter())
        timings.append(dict(result.timings))
        if not backend:
            backend["name"] = _backend_of(pipeline)
        if after_warmup is not None and len(stamps) == warmup:
            after_warmup()

    pipeline.add_sink(sink)
    pipeline.run(max_frames=warmup + frames)
    counted = timings[warmup:]
    if len(counted) < 1 or len(stamps) <= warmup:
        raise RuntimeError(f"{method} at {width}x{height}: only {len(timings)} frames came out of the pipeline")
    # FPS over the counted frames: from the end of the last warm-up frame to the end of the last frame.
    span = stamps[-1] - stamps[warmup - 1] if warmup >= 1 else stamps[-1] - stamps[0]
    n = len(stamps) - warmup if warmup >= 1 else len(stamps) - 1
    stage_ms = {s: float(np.median([t.get(s, 0.0) for t in counted])) for s in STAGES}
    return Segment(len(counted), n / span if span > 0 else float("nan"), stage_ms, backend.get("name", "?"))


def measure_memory(method: str, width: int, height: int, frames: int, options: dict | None, detector) -> dict:
    """Peak memory over a short segment after one warm-up frame, MB.

    ``peak_tracemalloc_mb``: the steady-state per-frame peak of Python/numpy allocations (the peak is reset
    after warm-up, so building the method and the demo scene do not count). ``peak_rss_mb``: the process's
    peak resident size from the start of the segment (model weights, runtimes and libraries included).
    """
    rss_reset = _reset_peak_rss()
    tracemalloc.start()
    try:
        run_segment(method, width, height, frames, 1, options, detector, after_warmup=tracemalloc.reset_peak)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {"peak_tracemalloc_mb": round(peak / 2**20, 1),
            "peak_rss_mb": round(_peak_rss_mb(), 1) if rss_reset and _peak_rss_mb() else None}


def run_benchmark(cfg: BenchConfig, progress: Callable[[str], None] | None = None) -> list[dict]:
    """Measure every (resolution, method); returns the JSON rows (see :func:`bench.report.ROW_KEYS`)."""
    ensure_registered()
    methods = [NOOP] + [m for m in cfg.methods if m != NOOP]
    detector = None
    if cfg.detector:
        from app.detector import YoloV5Detector

        detector = YoloV5Detector(cfg.detector)
    segments: dict[tuple, list[Segment]] = {}
    failures: dict[tuple, str] = {}
    for rep in range(cfg.repeats):
        for width, height in cfg.resolutions:
            for method in methods:  # interleaved: slow drifts of the machine's load hit every method alike
                key = (width, height, method)
                if key in failures:
                    continue
                frames = cfg.slow_frames if split_video_suffix(method)[0] in SLOW_METHODS else cfg.frames
                if progress:
                    progress(f"repeat {rep + 1}/{cfg.repeats}: {method} at {width}x{height}")
                try:
                    seg = run_segment(method, width, height, frames, cfg.warmup,
                                      cfg.method_options.get(split_video_suffix(method)[0]), detector)
                except Exception as exc:  # noqa: BLE001 - a method that cannot run is reported, not fatal
                    failures[key] = str(exc)
                    log.warning("benchmark: %s at %dx%d failed: %s", method, width, height, exc)
                    continue
                segments.setdefault(key, []).append(seg)
    rows = []
    device = device_description()
    for width, height in cfg.resolutions:
        noop = segments.get((width, height, NOOP))
        noop_fps = statistics.median(s.fps for s in noop) if noop else None
        for method in methods:
            key = (width, height, method)
            row = {"device": device, "resolution": f"{width}x{height}", "method": method}
            if key in failures and key not in segments:
                rows.append({**row, "backend": None, "fps": None, "ms_fuse": None, "error": failures[key]})
                continue
            segs = segments[key]
            fps = statistics.median(s.fps for s in segs)
            row.update(backend=segs[0].backend, fps=round(fps, 2),
                       fps_vs_noop=round(fps / noop_fps, 3) if noop_fps else None,
                       frames=sum(s.frames for s in segs), repeats=len(segs))
            for stage in STAGES:
                row[f"ms_{stage}"] = round(statistics.median(s.stage_ms[stage] for s in segs), 2)
            if cfg.memory:
                base = split_video_suffix(method)[0]
                frames = min(cfg.slow_frames if base in SLOW_METHODS else cfg.frames, 5)
                try:
                    row.update(measure_memory(method, width, height, frames, cfg.method_options.get(base), detector))
                except Exception as exc:  # noqa: BLE001
                    row["memory_error"] = str(exc)
            rows.append(row)
    return rows
