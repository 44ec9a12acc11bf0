"""Print the 12 standard fusion metrics of one fused image as a JSON object.

    python -m engine.metrics IR VI FUSED

Images are read as 8-bit grayscale. Keys, in order: EN SD SF AG MI SCD VIF Qabf SSIM PSNR CC Nabf.
A non-finite value (PSNR of a fused image identical to both sources) is written as null.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from ..errors import FusionError
from . import compute_all, load_gray


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine.metrics", description=__doc__.split("\n\n")[0])
    parser.add_argument("ir", help="thermal source image")
    parser.add_argument("vi", help="visible source image")
    parser.add_argument("fused", help="fused image to score")
    parser.add_argument("--indent", type=int, default=None, help="pretty-print the JSON with this indent")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        scores = compute_all(load_gray(args.ir), load_gray(args.vi), load_gray(args.fused))
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    clean = {k: (v if math.isfinite(v) else None) for k, v in scores.items()}
    print(json.dumps(clean, indent=args.indent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
