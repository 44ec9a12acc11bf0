#!/usr/bin/env python3
"""Run the infrared + visible fusion application.

    python run_app.py                                   # viewer on the built-in demo street
    python run_app.py --ir 0 --rgb 1                    # two cameras
    python run_app.py --ir thermal.mp4 --rgb colour.mp4 --calibration cal.yaml
    python run_app.py --replay sessions/night1          # replay a raw session
    python run_app.py --headless --frames 250 --record out/night.mp4 --method gff

Every user error prints one message and exits with status 2 (no traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys

EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_app.py",
        description="Real-time infrared + visible video fusion: viewer, headless runs, recording and replay.",
        epilog="Viewer keys: Space pause, Right step, R record, S snapshot, D detections, 1-9 methods, Q/Esc quit.",
    )
    src = p.add_argument_group("sources")
    src.add_argument("--ir", metavar="SRC", help="thermal source: camera index/URL/GStreamer pipeline, video file or folder")
    src.add_argument("--rgb", metavar="SRC", help="colour source (same kinds as --ir)")
    src.add_argument("--replay", metavar="SESSION", help="replay a raw session folder recorded with --record-session")
    src.add_argument("--calibration", metavar="CAL.yaml", help="calibration file (thermal -> colour grid)")
    src.add_argument("--fast", action="store_true", help="do not pace the demo, files and replays at their frame rate")
    proc = p.add_argument_group("processing")
    proc.add_argument("--config", metavar="FILE", help="YAML configuration (default: configs/default.yaml)")
    proc.add_argument("--method", metavar="NAME", help="fusion method (see --list-methods)")
    proc.add_argument("--backend", choices=("auto", "cpu", "cuda", "tensorrt"),
                      help="inference backend of the M2PN methods (default: fusion.backend of the config)")
    proc.add_argument("--weights", metavar="FILE", help="M2PN weights for m2pn / m2pn_rt (default engine/weights/m2pn.pt)")
    proc.add_argument("--list-methods", action="store_true", help="print the available fusion methods and exit")
    proc.add_argument("--detector", metavar="MODEL.onnx", help="YOLOv5 ONNX model for detection overlays")
    proc.add_argument("--threshold", type=float, metavar="CONF", help="detection confidence threshold (0..1)")
    out = p.add_argument_group("output")
    out.add_argument("--record", metavar="OUT", help="record the fused video (segments OUT_000.mp4, ...)")
    out.add_argument("--record-session", metavar="DIR", help="also record the raw synchronised pair for replay")
    out.add_argument("--headless", action="store_true", help="no window: progress line and a summary at the end")
    out.add_argument("--frames", type=int, metavar="N", help="stop after N fused frames")
    out.add_argument("--screenshot", metavar="PNG", help="save the viewer window after --frames N frames and exit")
    out.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    return p


def config_from_args(args):
    """Load the config file and apply the command-line overrides (validated)."""
    from app.config import apply_overrides, load_config

    cfg = load_config(args.config)
    overrides = {
        "sources.ir": args.ir,
        "sources.rgb": args.rgb,
        "calibration": args.calibration,
        "fusion.method": args.method,
        "fusion.backend": args.backend,
        "fusion.weights": args.weights,
        "detector.model": args.detector,
        "detector.threshold": args.threshold,
        "recording.path": args.record,
        "recording.session_dir": args.record_session,
        "sources.realtime": False if args.fast else None,
        # A method named on the command line is built as asked, or the run stops: it never falls back.
        "fusion.fallbacks": [] if args.method else None,
    }
    return apply_overrides(cfg, overrides)


def check_args(parser: argparse.ArgumentParser, args) -> None:
    """Combinations argparse cannot express; parser.error exits with status 2 and the usage line."""
    if (args.ir is None) != (args.rgb is None):
        parser.error("--ir and --rgb go together (give both sources)")
    if args.replay and args.ir:
        parser.error("--replay cannot be combined with --ir/--rgb")
    if args.frames is not None and args.frames <= 0:
        parser.error(f"--frames must be a positive number, got {args.frames}")
    if args.screenshot and args.headless:
        parser.error("--screenshot needs the viewer; drop --headless")
    if args.screenshot and not args.screenshot.lower().endswith(".png"):
        parser.error(f"--screenshot must name a .png file, got {args.screenshot}")
    if args.replay and args.record_session:
        parser.error("--record-session with --replay would copy the session; record the fused video with --record")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # OpenCV's own warnings (one per unreadable frame) would bury the app's messages
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

    from app.errors import AppError
    from calibration.errors import CalibrationError
    from engine import FusionError, available_methods

    try:
        if args.list_methods:
            for name, description in available_methods().items():
                print(f"{name:12s} {description}")
            return 0
        cfg = config_from_args(args)
        if cfg.recording.path:  # a recording that cannot be made is refused before anything starts
            from app.recorder import container_suffix

            container_suffix(cfg.recording.path)
        if args.method and args.method not in available_methods():
            raise AppError(f"unknown fusion method {args.method!r}; available: {', '.join(available_methods())}")
        if args.headless:
            from app.headless import run_headless

            run_headless(cfg, frames=args.frames, replay=args.replay)
            return 0
        from app.display_check import display_problem

        problem = display_problem()
        if problem is not None:  # before Qt, which would abort the process with exit 134
            raise AppError(problem)
        from app.viewer import run_viewer

        return run_viewer(cfg, replay=args.replay, frames=args.frames, screenshot=args.screenshot,
                          record=bool(args.record or args.record_session))
    except (AppError, FusionError, CalibrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
