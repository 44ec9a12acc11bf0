"""Soak test: a long headless run with recording on, memory sampled, then every segment checked.

    python -m bench.recording_soak --frames 10000 --out runs/soak --json docs/images/soak.json \\
        --plot docs/images/soak_memory.png

Runs :func:`app.headless.run_headless` in this process (the code path of ``run_app.py --headless``) on the
built-in demo, unpaced (``--fast``), with the fused video and the raw session recorded. A sampler thread
reads the resident memory (``VmRSS``) every second. Afterwards: every video segment is decoded to the end
(frames counted), the session is read back, and the threads still alive are listed (the goal: none but this
process's main thread). Results go to JSON and a memory-over-time PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class MemorySampler:
    """Sample :func:`rss_mb` every ``period_s`` on a thread until :meth:`stop`."""

    def __init__(self, period_s: float = 1.0) -> None:
        self.period_s = period_s
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MiB)
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self._t0, rss_mb()))
            self._stop.wait(self.period_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def memory_verdict(samples: list[tuple[float, float]], warmup_fraction: float = 0.2) -> dict:
    """Growth after warm-up: the median of the last tenth of the samples minus that of the first tenth
    after ``warmup_fraction`` of the run (medians, so one sample caught mid-allocation does not decide)."""
    import statistics

    values = [mb for _, mb in samples]
    start = int(len(values) * warmup_fraction)
    steady = values[start:]
    tenth = max(1, len(steady) // 10)
    early, late = statistics.median(steady[:tenth]), statistics.median(steady[-tenth:])
    return {"rss_start_mb": round(values[0], 1), "rss_after_warmup_mb": round(early, 1),
            "rss_end_mb": round(late, 1), "growth_after_warmup_mb": round(late - early, 1),
            "rss_max_mb": round(max(values), 1), "rss_min_after_warmup_mb": round(min(steady), 1)}


def plot_memory(samples: list[tuple[float, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    ax.plot([t for t, _ in samples], [m for _, m in samples], color="tab:blue", lw=1.2)
    ax.set_xlabel("seconds")
    ax.set_ylabel("resident memory (MiB)", color="tab:blue")
    lo, hi = min(m for _, m in samples), max(m for _, m in samples)
    ax.set_ylim(lo - 20, hi + 20)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.recording_soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=10000)
    p.add_argument("--method", default="m2pn_rt")
    p.add_argument("--size", default="320x240", help="demo frame size WxH (default 320x240)")
    p.add_argument("--segment-seconds", type=float, default=60.0)
    p.add_argument("--no-session", action="store_true", help="record the fused video only")
    p.add_argument("--out", type=Path, default=Path("runs/soak"), help="folder for the recordings (must be new)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plot", type=Path, default=None)
    args = p.parse_args(argv)

    from app.config import apply_overrides, load_config
    from app.headless import run_headless
    from app.recorder import readable_frames
    from app.session import SessionReader

    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.out.exists():
        print(f"error: {args.out} exists; give a new --out folder", file=sys.stderr)
        return 2
    overrides = {"fusion.method": args.method, "sources.realtime": False, "sources.demo.width": width,
                 "sources.demo.height": height, "recording.path": str(args.out / "soak.mp4"),
                 "recording.segment_seconds": args.segment_seconds}
    if not args.no_session:
        overrides["recording.session_dir"] = str(args.out / "session")
    cfg = apply_overrides(load_config(None), overrides)

    threads_before = {t.ident for t in threading.enumerate()}
    sampler = MemorySampler(1.0)
    log = open(args.out.parent / f"{args.out.name}.log", "w") if args.out.parent.exists() else sys.stderr
    started = time.monotonic()
    summary = run_headless(cfg, frames=args.frames, out=log)
    wall = time.monotonic() - started
    sampler.stop()
    left = [t.name for t in threading.enumerate() if t.ident not in threads_before]

    segments = sorted(args.out.glob("soak_*.mp4"))
    per_segment = {p.name: readable_frames(p) for p in segments}
    session_pairs = len(SessionReader(args.out / "session")) if not args.no_session else None
    result = {
        "command": "python -m bench.recording_soak " + " ".join(argv if argv is not None else sys.argv[1:]),
        "frames_fused": summary["frames"], "fps": summary["fps"], "wall_s": round(wall, 1),
        "method": summary["method"], "size": args.size, "segments": per_segment,
        "frames_in_segments": sum(per_segment.values()), "all_segments_readable": all(per_segment.values()),
        "session_pairs": session_pairs, "writers": summary.get("recording"), "threads_left": left,
        "memory": memory_verdict(sampler.samples), "samples": sampler.samples, "cpu_count": os.cpu_count(),
    }
    text = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(text, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    if args.plot:
        plot_memory(sampler.samples, args.plot,
                    f"{summary['frames']} frames, {args.method} {args.size}, video + session recorded: "
                    f"growth after warm-up {result['memory']['growth_after_warmup_mb']:+.1f} MiB")
    return 0 if result["all_segments_readable"] and not left else 1


if __name__ == "__main__":
    sys.exit(main())
