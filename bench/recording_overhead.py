"""What recording costs the fusion: m2pn_rt at 640x480 with the fused video and the raw session recorded,
beside the same run without them.

    python -m bench.recording_overhead --json docs/images/reliability_overhead.json

Two set-ups, interleaved (A, B, A, B, ...; medians), on the demo thermal + colour sources:

* **camera-paced**: the demo delivers 25 frames per second like a camera (``StereoCapture``), the way the
  application runs; the question is whether the pipeline keeps the camera's rate with recording on.
* **unpaced**: frames as fast as the pipeline takes them (``LockstepCapture``, as ``python -m bench``
  measures); the recording threads then compete with fusion for the same cores.

Figures: pipeline FPS, the ratio recorded/not recorded, and what each writer wrote and dropped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from app.assembly import create_capture, pipeline_from_config
from app.capture import LockstepCapture
from app.config import apply_overrides, load_config
from app.demo import open_demo_pair
from app.recording import recording_sinks, writer_counts


def one_run(method: str, size: tuple[int, int], paced: bool, record: bool, seconds: float, frames: int,
            work: Path, index: int) -> dict:
    overrides = {"fusion.method": method, "sources.demo.width": size[0], "sources.demo.height": size[1]}
    if record:
        overrides.update({"recording.path": str(work / f"run{index}" / "fused.mp4"),
                          "recording.session_dir": str(work / f"run{index}" / "session")})
    cfg = apply_overrides(load_config(None), overrides)
    if paced:
        capture = create_capture(cfg)
    else:
        capture = LockstepCapture(*open_demo_pair(size[0], size[1], fps=25.0, frames=frames, realtime=False))
    pipeline = pipeline_from_config(cfg, capture, on_status=lambda message: None, detector_async=False)
    pipeline.prepare()
    sinks = recording_sinks(cfg, on_status=lambda message: None)
    for sink in sinks:
        pipeline.add_sink(sink)
    summary = pipeline.run(max_frames=None if paced else frames, timeout_s=seconds if paced else None)
    for sink in sinks:
        sink.close()
    return {"paced": paced, "recording": record, "fps": summary["fps"], "frames": summary["frames"],
            "sinks_ms": summary["stage_ms"].get("sinks"), "fuse_ms": summary["stage_ms"].get("fuse"),
            "writers": {sink.thread.name: writer_counts(sink) for sink in sinks}}


def compare(runs: list[dict]) -> dict:
    """Median FPS with and without recording, their ratio, and the writers' totals."""
    plain = [r["fps"] for r in runs if not r["recording"]]
    recorded = [r for r in runs if r["recording"]]
    with_rec = [r["fps"] for r in recorded]
    writers: dict[str, dict] = {}
    for r in recorded:
        for name, counts in r["writers"].items():
            total = writers.setdefault(name, {"written": 0, "dropped": 0, "submitted": 0})
            for key in total:
                total[key] += counts[key]
    for total in writers.values():
        total["dropped_share"] = round(total["dropped"] / max(total["submitted"], 1), 3)
    return {"fps_without": statistics.median(plain), "fps_with": statistics.median(with_rec),
            "ratio": round(statistics.median(with_rec) / statistics.median(plain), 3),
            "runs_without": plain, "runs_with": with_rec, "writers": writers}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.recording_overhead", description=__doc__.split("\n\n")[0])
    p.add_argument("--method", default="m2pn_rt")
    p.add_argument("--size", default="640x480")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=12.0, help="length of a camera-paced run")
    p.add_argument("--frames", type=int, default=300, help="frames of an unpaced run")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    results = {"command": "python -m bench.recording_overhead " + " ".join(argv if argv is not None else sys.argv[1:]),
               "method": args.method, "size": args.size}
    with tempfile.TemporaryDirectory(prefix="overhead_") as tmp:
        index = 0
        for paced in (True, False):
            runs = []
            for _ in range(args.repeats):
                for record in (False, True):
                    index += 1
                    runs.append(one_run(args.method, size, paced, record, args.seconds, args.frames, Path(tmp), index))
                    print(json.dumps(runs[-1]), flush=True)
            results["paced" if paced else "unpaced"] = {**compare(runs), "runs": runs}
    for key in ("paced", "unpaced"):
        r = results[key]
        print(f"{key:8s}: {r['fps_without']:.1f} FPS without recording, {r['fps_with']:.1f} with "
              f"(x{r['ratio']:.2f}); writers: {json.dumps(r['writers'])}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
