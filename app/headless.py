"""Headless mode: run the pipeline with no window, show a progress line, print a summary at the end.

Used by ``run_app.py --headless`` (servers, batch jobs, benchmarks). Ctrl-C stops cleanly: the
current recording segment is finalised and the summary is still printed.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

from .assembly import create_capture, pipeline_from_config
from .config import AppConfig
from .errors import AppError
from .pipeline import FusionPipeline
from .recording import recording_sinks, writer_counts


def format_summary(summary: dict, recording_lines: list[str]) -> str:
    """Human-readable end-of-run summary."""
    pairing = summary.get("pairing") or {}
    lines = [
        f"frames: {summary['frames']}   mean FPS: {summary['fps']:.1f}   method: {summary['method']}   "
        f"latency: {summary['latency_ms']:.1f} ms   wall: {summary.get('wall_s', 0.0):.1f} s",
        "stage ms: " + ", ".join(f"{k} {v:.1f}" for k, v in summary["stage_ms"].items()),
    ]
    if pairing:
        lines.append("pairs: " + ", ".join(f"{k} {v}" for k, v in pairing.items()))
    skipped = summary.get("skipped") or {}
    if skipped:
        lines.append("skipped frames: " + "; ".join(
            f"{stream} " + ", ".join(f"{n} {kind}" for kind, n in kinds.items()) for stream, kinds in skipped.items()))
    return "\n".join(lines + recording_lines)


def run_headless(cfg: AppConfig, frames: int | None = None, replay: str | None = None,
                 out: TextIO = sys.stdout, timeout_s: float | None = None) -> dict:
    """Run until ``frames`` results (or end of stream / Ctrl-C); returns the summary dict."""
    def say(message: str) -> None:
        tqdm.write(f"[status] {message}", file=out)

    capture = create_capture(cfg, replay=replay, on_status=say)
    pipeline: FusionPipeline = pipeline_from_config(cfg, capture, on_status=say)
    try:
        pipeline.prepare()  # a method that cannot be built stops here, before any recording starts
        sinks = recording_sinks(cfg, say)
    except AppError:
        pipeline.stop()
        raise
    for sink in sinks:
        pipeline.add_sink(sink)

    tqdm.monitor_interval = 0  # no tqdm monitor thread: every thread this run starts is joined at its end
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
        # Finish the queued frames and finalise the segment, even after Ctrl-C or an error.
        recording_lines = [sink.close() for sink in sinks]
    summary["wall_s"] = round(time.monotonic() - started, 2)
    summary["recording"] = {sink.thread.name: writer_counts(sink) for sink in sinks}
    print(format_summary(summary, recording_lines), file=out)
    if summary["frames"] == 0 and "interrupted (Ctrl-C)" not in pipeline.status_messages:
        raise AppError(nothing_fused_reason(summary))
    return summary


def nothing_fused_reason(summary: dict) -> str:
    """One line on why a run produced no frame (the summary above it has the details)."""
    pairing, skipped = summary.get("pairing") or {}, summary.get("skipped") or {}
    reasons = [f"{stream}: " + ", ".join(f"{n} {kind}" for kind, n in kinds.items()) + " frames skipped"
               for stream, kinds in skipped.items()]
    if pairing.get("unmatched"):
        reasons.append(f"{pairing['unmatched']} frames found no partner within the pairing tolerance")
    return "no frame was fused" + (f" ({'; '.join(reasons)})" if reasons else " (a source delivered nothing)")
