"""Headless mode: run the pipeline with no window, show a progress line, print a summary at the end.

Used by ``run_app.py --headless`` (servers, batch jobs, benchmarks). Ctrl-C stops cleanly: the
current recording segment is finalised and the summary is still printed.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

from tqdm import tqdm

from .config import AppConfig
from .errors import AppError
from .assembly import create_capture, pipeline_from_config
from .pipeline import FusedFrame, FusionPipeline
from .recorder import SegmentedRecorder, format_bytes


def recording_sinks(cfg: AppConfig, on_status: Callable[[str], None]) -> tuple[list, list[Callable[[], None]]]:
    """Sinks for ``cfg.recording`` (fused video and/or raw session) and the functions that close them."""
    sinks, closers = [], []
    if cfg.recording.path:
        recorder = SegmentedRecorder(cfg.recording.path, fps=cfg.recording.fps,
                                     segment_seconds=cfg.recording.segment_seconds, codec=cfg.recording.codec,
                                     on_status=on_status)
        sinks.append(lambda result: recorder.write(result.annotated, result.timestamp))
        closers.append(recorder.close)
        sinks[-1].recorder = recorder  # type: ignore[attr-defined]  # the summary reports its segments
    if cfg.recording.session_dir:
        sinks.append(SessionSink(cfg))
        closers.append(sinks[-1].close)
    return sinks, closers


class SessionSink:
    """Write each processed raw pair into a replayable session folder (``app.session.SessionWriter``)."""

    def __init__(self, cfg: AppConfig) -> None:
        try:
            from .session import SessionWriter
        except ModuleNotFoundError:
            raise AppError("raw session recording needs app.session (SessionWriter), which is not installed") from None
        self.writer = SessionWriter(cfg.recording.session_dir, ir_description=cfg.sources.ir,
                                    rgb_description=cfg.sources.rgb, calibration=cfg.calibration)
        self.pairs = 0

    def __call__(self, result: FusedFrame) -> None:
        if result.pair is not None:
            self.writer.write_pair(result.pair)
            self.pairs += 1

    def close(self) -> None:
        self.writer.close()


def format_summary(summary: dict, recorders: list[SegmentedRecorder]) -> str:
    """Human-readable end-of-run summary."""
    pairing = summary.get("pairing") or {}
    lines = [
        f"frames: {summary['frames']}   mean FPS: {summary['fps']:.1f}   method: {summary['method']}   "
        f"latency: {summary['latency_ms']:.1f} ms",
        "stage ms: " + ", ".join(f"{k} {v:.1f}" for k, v in summary["stage_ms"].items()),
    ]
    if pairing:
        lines.append("pairs: " + ", ".join(f"{k} {v}" for k, v in pairing.items()))
    for rec in recorders:
        segs = rec.finished_segments
        lines.append(f"recorded {rec.frames_written} frames ({rec.codec}) in {len(segs)} segment(s), "
                     f"{format_bytes(rec.bytes_written)}: " + ", ".join(str(s) for s in segs))
    return "\n".join(lines)


def run_headless(cfg: AppConfig, frames: int | None = None, replay: str | None = None,
                 out: TextIO = sys.stdout, timeout_s: float | None = None) -> dict:
    """Run until ``frames`` results (or end of stream / Ctrl-C); returns the summary dict."""
    def say(message: str) -> None:
        tqdm.write(f"[status] {message}", file=out)

    capture = create_capture(cfg, replay=replay, on_status=say)
    pipeline: FusionPipeline = pipeline_from_config(cfg, capture, on_status=say)
    sinks, closers = recording_sinks(cfg, say)
    for sink in sinks:
        pipeline.add_sink(sink)
    recorders = [s.recorder for s in sinks if hasattr(s, "recorder")]

    bar = tqdm(total=frames, unit="frame", desc="fusing", file=out, dynamic_ncols=True)
    last_frames = 0

    def progress(done: int) -> None:
        nonlocal last_frames
        if done > last_frames:
            bar.update(done - last_frames)
            last_frames = done
            bar.set_postfix(fps=f"{pipeline.stats.fps:.1f}", method=pipeline.method or "-", refresh=False)

    started = time.monotonic()
    try:
        summary = pipeline.run(max_frames=frames, timeout_s=timeout_s, progress=progress)
    finally:
        bar.close()
        for close in closers:
            close()  # finalise the current segment even after Ctrl-C or an error
    summary["wall_s"] = round(time.monotonic() - started, 2)
    print(format_summary(summary, recorders), file=out)
    return summary
