"""Speed benchmark of every fusion method through the application's pipeline.

    python -m bench.realtime_quality --json docs/images/bench_rt_quality.json --markdown docs/images/bench_rt_quality.md
    python -m bench --json docs/images/bench_speed.json --markdown docs/benchmarks.md --chart docs/images/bench_fps.png \
        --quality docs/images/bench_rt_quality.md
    python -m bench --methods average m2pn_rt --resolutions 320x240 --frames 5 --repeats 1   # quick

Writes JSON rows (device, resolution, method, backend, fps, fps_vs_noop, ms_<stage>, peak memory) and the
Markdown page; ``--quality`` / ``--tried`` splice in the real-time quality table (from
``python -m bench.realtime_quality --markdown ...``) and the "what we tried" notes.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from tqdm import tqdm

from engine.errors import FusionError

from .report import write_chart, write_json, write_page
from .speed import RESOLUTIONS, BenchConfig, run_benchmark

#: ``m2pn_rt+video``: the default method with the video mode on, as the viewer runs it on video;
#: ``egmt`` / ``egmt_rt`` are timed when registered
DEFAULT_METHODS = ("m2pn", "m2pn_rt", "m2pn_rt+video", "egmt", "egmt_rt", "average", "max", "laplacian", "gff", "tif")
NETWORK_METHODS = ("m2pn", "m2pn_rt", "egmt", "egmt_rt")


def parse_resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"resolution must look like 640x480, got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"resolution {text} is too small (16x16 at least)")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS),
                   help=f"methods to time (noop is always added); default: {' '.join(DEFAULT_METHODS)}")
    p.add_argument("--resolutions", nargs="+", type=parse_resolution, default=list(RESOLUTIONS),
                   help="WxH sizes (default 320x240 640x480 1280x720 1920x1080)")
    p.add_argument("--frames", type=int, default=30, help="counted frames per segment (default 30)")
    p.add_argument("--slow-frames", type=int, default=3, help="counted frames for the full m2pn (default 3)")
    p.add_argument("--warmup", type=int, default=3, help="uncounted frames first (default 3)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats, median taken (default 3)")
    p.add_argument("--weights", type=Path, default=None, help="M2PN weights for m2pn and m2pn_rt")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for the networks")
    p.add_argument("--backend", default=None, choices=("auto", "cpu", "cuda", "tensorrt"),
                   help="inference backend of the network methods (default: each method's own, auto)")
    p.add_argument("--detector", type=Path, default=None, help="YOLOv5 ONNX model for the detect stage")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory segments")
    p.add_argument("--json", type=Path, default=None, help="write the rows as JSON")
    p.add_argument("--markdown", type=Path, default=None, help="write the Markdown page (e.g. docs/benchmarks.md)")
    p.add_argument("--chart", type=Path, default=None,
                   help="PNG bar chart (default with --markdown: beside it, PAGE_fps.png; never a tracked docs image "
                        "unless named here)")
    p.add_argument("--quality", type=Path, default=None, help="Markdown quality table to include")
    p.add_argument("--extra", type=Path, nargs="*", default=[],
                   help="more Markdown sections for the page, each with its own ## heading (e.g. the halo and "
                        "flicker sections, docs/images/bench_video_all.md)")
    p.add_argument("--tried", type=Path, default=None,
                   help="Markdown 'what we tried' section (default: the notes in bench/realtime_notes.py)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if min(args.frames, args.slow_frames, args.repeats) < 1 or args.warmup < 1:
        print("error: --frames, --slow-frames and --repeats must be >= 1 and --warmup >= 1", file=sys.stderr)
        return 2
    from engine import available_methods

    from .speed import split_video_suffix

    methods = list(args.methods)
    if methods == list(DEFAULT_METHODS):  # a default method not registered here is left out; a named one fails
        known = available_methods()
        methods = [m for m in methods if split_video_suffix(m)[0] in known]
        skipped = [m for m in args.methods if m not in methods]
        if skipped:
            print(f"note: not registered here, not timed: {', '.join(skipped)}", file=sys.stderr)
    net_opts = {k: v for k, v in {"weights": args.weights, "threads": args.threads}.items() if v is not None}
    backend_opts = {"backend": args.backend} if args.backend else {}
    method_options = {m: {**(net_opts if m in ("m2pn", "m2pn_rt") else {}), **backend_opts} for m in NETWORK_METHODS}
    cfg = BenchConfig(methods=methods, resolutions=list(args.resolutions), frames=args.frames,
                      slow_frames=args.slow_frames, warmup=args.warmup, repeats=args.repeats,
                      method_options=method_options,
                      detector=str(args.detector) if args.detector else None, memory=not args.no_memory)
    total = args.repeats * len(cfg.resolutions) * (len(set(cfg.methods) | {"noop"}))
    with tqdm(total=total, desc="benchmark", unit="segment") as bar:
        def progress(msg: str) -> None:
            bar.set_postfix_str(msg)
            bar.update(1)
        try:
            rows = run_benchmark(cfg, progress)
        except (FusionError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    for r in rows:
        fps = "failed: " + r.get("error", "") if r.get("fps") is None else f"{r['fps']:.1f} FPS (x{r.get('fps_vs_noop')})"
        print(f"{r['resolution']:>9}  {r['method']:<10} {fps}  fuse {r.get('ms_fuse')} ms  [{r.get('backend')}]")
    if args.json:
        write_json(rows, args.json)
    if args.markdown:
        command = "python -m bench " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        if args.quality and not args.quality.is_file():
            print(f"warning: quality table {args.quality} not found; run python -m bench.realtime_quality "
                  f"--markdown {args.quality} first", file=sys.stderr)
        chart = args.chart or args.markdown.with_name(f"{args.markdown.stem}_fps.png")
        write_page(rows, args.markdown, chart, command, args.quality, args.tried, args.extra)
    elif args.chart:
        write_chart(rows, args.chart)
    return 0 if all(r.get("fps") is not None for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
