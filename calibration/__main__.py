"""Command line: make and check calibration files.

    python -m calibration points --pairs clicks.csv --out cal.yaml [--ir-size 640x512 --rgb-size 1280x720]
    python -m calibration checkerboard --ir boards/ir --rgb boards/rgb --pattern 9x6 --out cal.yaml
    python -m calibration auto --ir thermal.png --rgb colour.png --out cal.yaml
    python -m calibration auto --ir-video thermal.mp4 --rgb-video colour.mp4 --frames 12 --out cal.yaml
    python -m calibration check cal.yaml --ir thermal.png --rgb colour.png --out check.png

Every error is printed as one line naming the problem; the exit status is then 2. An automatic
alignment that fails its own checks (see calibration.auto_verified) is refused: one line saying why,
no file written, exit status 3.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import cv2
import numpy as np

from .auto import prepare_frames
from .auto_verified import MIN_GAIN, auto_calibrate, start_homography
from .calibration_file import Calibration, load_calibration, save_calibration
from .checkerboard import calibrate_from_boards, parse_pattern
from .errors import CalibrationError
from .frames import IMAGE_SUFFIXES, load_pairs, read_image
from .overlay import check_image
from .points import fit_homography, read_point_pairs
from .registrar import Registrar
from .score import AlignmentScorer, Bounds

EXIT_REFUSED = 3


def parse_size(text: str | None, what: str) -> tuple[int, int] | None:
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or min(int(match.group(1)), int(match.group(2))) <= 0:
        raise CalibrationError(f"{what} must look like WIDTHxHEIGHT, e.g. 640x512; got {text!r}")
    return int(match.group(1)), int(match.group(2))


def image_size(image: np.ndarray) -> tuple[int, int]:
    return int(image.shape[1]), int(image.shape[0])


def cmd_points(args) -> int:
    ir_pts, rgb_pts = read_point_pairs(args.pairs)
    fit = fit_homography(ir_pts, rgb_pts, ransac_px=args.ransac_px)
    ir_size = parse_size(args.ir_size, "--ir-size") or (image_size(read_image(args.ir)) if args.ir else None)
    rgb_size = parse_size(args.rgb_size, "--rgb-size") or (image_size(read_image(args.rgb)) if args.rgb else None)
    cal = Calibration(homography=fit.homography, ir_size=ir_size, rgb_size=rgb_size, direction=args.direction,
                      method="points", reprojection_error_px=fit.rms_px,
                      extra={"points": len(ir_pts), "inliers": fit.inlier_count, "max_error_px": fit.max_px})
    save_calibration(cal, args.out)
    print(f"{len(ir_pts)} point pairs, {fit.inlier_count} inliers (RANSAC {args.ransac_px:g} px)")
    print(f"reprojection error: RMS {fit.rms_px:.3f} px, max {fit.max_px:.3f} px")
    if ir_size is None or rgb_size is None:
        print("note: frame sizes not given (--ir-size/--rgb-size or --ir/--rgb images); they will not be checked")
    print(f"wrote {args.out}")
    return 0


def _board_pairs(ir_dir: Path, rgb_dir: Path):
    for folder in (ir_dir, rgb_dir):
        if not folder.is_dir():
            raise CalibrationError(f"board image folder not found: {folder}")
    ir_files = {p.stem: p for p in sorted(ir_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    rgb_files = {p.stem: p for p in sorted(rgb_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    names = sorted(set(ir_files) & set(rgb_files))
    if not names:
        raise CalibrationError(f"no board views with the same name in {ir_dir} and {rgb_dir}")
    return [(n, read_image(ir_files[n]), read_image(rgb_files[n])) for n in names]


def cmd_checkerboard(args) -> int:
    pattern = parse_pattern(args.pattern)
    pairs = _board_pairs(Path(args.ir), Path(args.rgb))
    result = calibrate_from_boards(pairs, pattern)
    _, ir0, rgb0 = pairs[0]
    cal = Calibration(homography=result.fit.homography, ir_size=image_size(ir0), rgb_size=image_size(rgb0),
                      direction=args.direction, method="checkerboard", reprojection_error_px=result.fit.rms_px,
                      extra={"views_used": result.views_used, "views_total": len(pairs),
                             "inliers": result.fit.inlier_count, "max_error_px": result.fit.max_px})
    save_calibration(cal, args.out)
    print(f"usable views: {len(result.views_used)} of {len(pairs)}")
    for name, how in result.thermal_variants.items():
        print(f"  {name}: thermal board found ({how})")
    for name, why in result.views_skipped.items():
        print(f"  {name}: skipped, {why}")
    print(f"reprojection error: RMS {result.fit.rms_px:.3f} px, max {result.fit.max_px:.3f} px "
          f"({result.fit.inlier_count} corners)")
    print(f"wrote {args.out}")
    return 0


def cmd_auto(args) -> int:
    pairs = load_pairs(args.ir, args.rgb, args.ir_video, args.rgb_video, args.frames)
    ir_frames, rgb_frames = [p[0] for p in pairs], [p[1] for p in pairs]
    bounds = Bounds(max_scale=args.max_scale, max_aspect=args.max_aspect, max_shear=args.max_shear,
                    max_perspective=args.max_perspective, max_corner_motion=args.max_corner_motion)
    print(f"{len(pairs)} frame pair(s), thermal {image_size(ir_frames[0])[0]}x{image_size(ir_frames[0])[1]}, "
          f"colour {image_size(rgb_frames[0])[0]}x{image_size(rgb_frames[0])[1]}")
    verdict = auto_calibrate(ir_frames, rgb_frames, bounds=bounds, motion=args.motion, min_gain=args.min_gain,
                             agree_px=args.agree_px, progress=lambda text: print(f"  {text}...", flush=True))
    g = verdict.geometry
    print(f"result: scale {g['scale']:.3f}, rotation {g['rotation_deg']:.2f} deg, x/y ratio {g['aspect']:.3f}, "
          f"shear {g['shear']:.3f}, corners moved up to {g['corner_motion_px']:.1f} px ({verdict.seconds:.1f} s)")
    print(f"alignment score (edge orientation, held-out tiles): {verdict.score_before:.3f} before, "
          f"{verdict.score_after:.3f} after; whole image {verdict.score_full_before:.3f} -> {verdict.score_full_after:.3f}")
    print(f"half fits agree within {max(verdict.halves_px, verdict.result_px):.2f} px")
    if not verdict.accepted:
        print(f"error: refused, {verdict.reason}; nothing written (use points or checkerboard, or more frames)",
              file=sys.stderr)
        return EXIT_REFUSED
    ir0, rgb0 = ir_frames[0], rgb_frames[0]
    cal = Calibration(homography=verdict.homography, ir_size=image_size(ir0), rgb_size=image_size(rgb0),
                      direction=args.direction, method=f"auto-{args.motion}", reprojection_error_px=None,
                      extra={"fit_score": round(verdict.fit.score, 4), "frames": len(pairs),
                             "score_before": round(verdict.score_before, 4),
                             "score_after": round(verdict.score_after, 4),
                             "halves_px": round(max(verdict.halves_px, verdict.result_px), 3),
                             "seconds": round(verdict.seconds, 3)})
    save_calibration(cal, args.out)
    print(f"accepted: {verdict.reason}")
    print(f"wrote {args.out}")
    return 0


def cmd_check(args) -> int:
    cal = load_calibration(args.calibration)
    pairs = load_pairs(args.ir, args.rgb, args.ir_video, args.rgb_video, args.frames)
    ir, rgb = pairs[0]
    adapted = cal.adapted_to(image_size(ir), image_size(rgb))  # raises naming both sizes when it cannot
    if adapted is not cal:
        print(f"note: the calibration was made for other frame sizes; rescaled (same aspect ratios)")
    cal = adapted
    # the same score as `auto` prints for the whole image (same frames, same content masks)
    scorer = AlignmentScorer(*prepare_frames([p[0] for p in pairs], [p[1] for p in pairs]))
    before = scorer.score(start_homography(image_size(ir), image_size(rgb)))
    after = scorer.score(cal.homography)
    print(f"alignment score (edge orientation, whole image, {len(pairs)} frame pair(s)): {before:.3f} with the "
          f"thermal image only resized, {after:.3f} with this calibration")
    if not after > before:
        print("warning: this calibration does not align these images better than a plain resize")
    image = check_image(Registrar(cal), ir, rgb)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), image):
        raise CalibrationError(f"cannot write {out}")
    print(f"wrote {out} ({image.shape[1]}x{image.shape[0]})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m calibration", description="Thermal -> colour registration files.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--out", required=True, help="calibration YAML to write")
        p.add_argument("--direction", choices=("ir_to_rgb", "rgb_to_ir"), default="ir_to_rgb",
                       help="which image is warped onto the other's grid (default ir_to_rgb)")

    p = sub.add_parser("points", help="homography from clicked point pairs (CSV ir_x,ir_y,rgb_x,rgb_y)")
    p.add_argument("--pairs", required=True, help="CSV file with columns ir_x,ir_y,rgb_x,rgb_y (>= 4 rows)")
    p.add_argument("--ir-size", help="thermal frame size WxH"), p.add_argument("--rgb-size", help="colour frame size WxH")
    p.add_argument("--ir", help="a thermal image (for its size)"), p.add_argument("--rgb", help="a colour image (for its size)")
    p.add_argument("--ransac-px", type=float, default=3.0, help="RANSAC inlier threshold in pixels (default 3)")
    common(p)
    p.set_defaults(func=cmd_points)

    p = sub.add_parser("checkerboard", help="homography from board views seen by both cameras")
    p.add_argument("--ir", required=True, help="folder of thermal board images")
    p.add_argument("--rgb", required=True, help="folder of colour board images (same file names)")
    p.add_argument("--pattern", required=True, help="inner corners COLSxROWS, e.g. 9x6")
    common(p)
    p.set_defaults(func=cmd_checkerboard)

    def frames(p):
        p.add_argument("--ir", help="thermal image, or a folder of thermal frames (paired with --rgb's by name)")
        p.add_argument("--rgb", help="colour image, or a folder of colour frames")
        p.add_argument("--ir-video", help="thermal video (frames paired with --rgb-video's by index)")
        p.add_argument("--rgb-video", help="colour video")
        p.add_argument("--frames", type=int, default=12, help="frame pairs sampled evenly from folders or videos "
                                                              "(default 12)")

    bounds = Bounds()
    p = sub.add_parser("auto", help="automatic alignment of a thermal/colour pair or of many frames; no target needed",
                       description="Fits the alignment, checks it on held-out structure and refuses (exit 3) a "
                                   "result that is implausible or not clearly better than a plain resize.")
    frames(p)
    p.add_argument("--motion", choices=("affine", "homography"), default="affine",
                   help="model of the final refinement (affine is steadier on weak texture)")
    p.add_argument("--max-scale", type=float, default=bounds.max_scale,
                   help=f"largest scale change either way vs. a plain resize (default {bounds.max_scale})")
    p.add_argument("--max-aspect", type=float, default=bounds.max_aspect,
                   help=f"largest change of the x/y scale ratio (default {bounds.max_aspect})")
    p.add_argument("--max-shear", type=float, default=bounds.max_shear, help=f"largest shear (default {bounds.max_shear})")
    p.add_argument("--max-perspective", type=float, default=bounds.max_perspective,
                   help=f"largest projective corner motion, fraction of the diagonal (default {bounds.max_perspective})")
    p.add_argument("--max-corner-motion", type=float, default=bounds.max_corner_motion,
                   help=f"largest corner motion, fraction of the diagonal (default {bounds.max_corner_motion})")
    p.add_argument("--min-gain", type=float, default=MIN_GAIN,
                   help=f"held-out alignment score gain each half must bring (default {MIN_GAIN})")
    p.add_argument("--agree-px", type=float, default=None,
                   help="how far the two half fits may disagree, corner RMS px (default: 0.6%% of the diagonal, >= 3)")
    common(p)
    p.set_defaults(func=cmd_auto)

    p = sub.add_parser("check", help="alignment score and an overlay image to judge a calibration by eye")
    p.add_argument("calibration", help="calibration YAML")
    frames(p)
    p.add_argument("--out", required=True, help="PNG to write")
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CalibrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
