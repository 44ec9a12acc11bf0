"""Command line: make and check calibration files.

    python -m calibration points --pairs clicks.csv --out cal.yaml [--ir-size 640x512 --rgb-size 1280x720]
    python -m calibration checkerboard --ir boards/ir --rgb boards/rgb --pattern 9x6 --out cal.yaml
    python -m calibration auto --ir thermal.png --rgb colour.png --out cal.yaml
    python -m calibration check cal.yaml --ir thermal.png --rgb colour.png --out check.png

Every error is printed as one line naming the problem; the exit status is then 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import cv2
import numpy as np

from .auto import auto_align
from .calibration_file import Calibration, load_calibration, save_calibration
from .checkerboard import calibrate_from_boards, parse_pattern
from .errors import CalibrationError
from .overlay import check_image
from .points import fit_homography, read_point_pairs
from .registrar import Registrar

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm"}


def read_image(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"image not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise CalibrationError(f"cannot read image {path} (unsupported or corrupt)")
    return image


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
    ir, rgb = read_image(args.ir), read_image(args.rgb)
    result = auto_align(ir, rgb, motion=args.motion)
    cal = Calibration(homography=result.homography, ir_size=image_size(ir), rgb_size=image_size(rgb),
                      direction=args.direction, method=f"auto-ecc-{args.motion}", reprojection_error_px=None,
                      extra={"ecc": round(result.ecc, 4), "seconds": round(result.seconds, 3)})
    save_calibration(cal, args.out)
    s, a, dx, dy, _ = result.coarse
    print(f"coarse: scale {s:.3f}, rotation {a:.2f} deg, shift ({dx:.1f}, {dy:.1f}) px")
    print(f"refined: ECC correlation of the gradient maps {result.ecc:.3f} ({result.seconds:.2f} s)")
    if not result.ecc >= 0.2:
        print("warning: low correlation; check the result with `python -m calibration check`")
    print(f"wrote {args.out}")
    return 0


def cmd_check(args) -> int:
    cal = load_calibration(args.calibration)
    ir, rgb = read_image(args.ir), read_image(args.rgb)
    cal.check_frames(ir.shape, rgb.shape)
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

    p = sub.add_parser("auto", help="automatic alignment of one thermal/colour pair, no target needed")
    p.add_argument("--ir", required=True, help="thermal image")
    p.add_argument("--rgb", required=True, help="colour image")
    p.add_argument("--motion", choices=("affine", "homography"), default="affine",
                   help="model of the final refinement (affine is steadier on weak texture)")
    common(p)
    p.set_defaults(func=cmd_auto)

    p = sub.add_parser("check", help="overlay image to judge a calibration by eye")
    p.add_argument("calibration", help="calibration YAML")
    p.add_argument("--ir", required=True, help="thermal image")
    p.add_argument("--rgb", required=True, help="colour image")
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
