"""Fuse image pairs from the command line.

    python -m engine.fuse --ir PATH --vi PATH --out DIR [--method m2pn]

PATH is a file or a folder; folders are matched by file name. Output PNGs keep the input name and size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from .errors import FusionError
from .fusion_engine import FusionEngine
from .imageio import match_pairs, read_image, write_image
from .registry import available_methods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine.fuse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ir", required=True, help="thermal image file or folder")
    parser.add_argument("--vi", required=True, help="visible image file or folder (names match --ir)")
    parser.add_argument("--out", required=True, help="output folder for the fused PNGs")
    parser.add_argument("--method", default="m2pn", help="fusion method (see --list-methods)")
    parser.add_argument("--list-methods", action="store_true", help="print the available methods and exit")
    return parser


def run(args: argparse.Namespace) -> int:
    listing = match_pairs(args.ir, args.vi)
    for path in listing.ir_only:
        print(f"warning: no visible image matches {path.name}", file=sys.stderr)
    for path in listing.vi_only:
        print(f"warning: no thermal image matches {path.name}", file=sys.stderr)
    if not listing.pairs:
        print("error: no thermal/visible pairs found", file=sys.stderr)
        return 2
    engine = FusionEngine(args.method)
    out_dir = Path(args.out)
    failed = 0
    for ir_path, vi_path in tqdm(listing.pairs, desc=f"fusing ({args.method})", unit="pair"):
        try:
            fused = engine.fuse(read_image(ir_path), read_image(vi_path))
        except FusionError as exc:
            failed += 1
            tqdm.write(f"error: {ir_path.name}: {exc}", file=sys.stderr)
            continue
        write_image(out_dir / (ir_path.stem + ".png"), fused)
    engine.close()
    done = len(listing.pairs) - failed
    unmatched = len(listing.ir_only) + len(listing.vi_only)
    print(f"fused {done} of {len(listing.pairs)} pairs into {out_dir}"
          + (f"; {unmatched} unmatched file(s) reported above" if unmatched else "")
          + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_methods:
        for name, description in available_methods().items():
            print(f"{name:16s} {description}")
        return 0
    try:
        return run(args)
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
