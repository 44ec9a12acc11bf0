"""Fuse image pairs from the command line.

    python -m engine.fuse --ir PATH --vi PATH --out DIR [--method m2pn] [--weights FILE] [--option KEY=VALUE ...]

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
    parser.add_argument("--ir", help="thermal image file or folder")
    parser.add_argument("--vi", help="visible image file or folder (names match --ir)")
    parser.add_argument("--out", help="output folder for the fused PNGs")
    parser.add_argument("--method", default="m2pn", help="fusion method (see --list-methods)")
    parser.add_argument("--weights", help="weights file for a network method (same as --option weights=FILE)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="method option, repeatable (e.g. --option threads=2); numbers are converted")
    parser.add_argument("--list-methods", action="store_true", help="print the available methods and exit")
    return parser


def parse_options(pairs: list[str], weights: str | None = None) -> dict[str, object]:
    """``["threads=2", "backend=cpu"]`` -> ``{"threads": 2, "backend": "cpu"}`` (ints and floats converted)."""
    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise FusionError(f"--option needs KEY=VALUE, got {pair!r}")
        for convert in (int, float):
            try:
                options[key.strip()] = convert(value)
                break
            except ValueError:
                continue
        else:
            options[key.strip()] = value
    if weights is not None:
        options["weights"] = weights
    return options


def create_engine(method: str, options: dict[str, object]) -> FusionEngine:
    try:
        return FusionEngine(method, **options)
    except TypeError as exc:  # an option the method's constructor does not take
        raise FusionError(f"method {method!r} does not accept the given option(s) {sorted(options)}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    listing = match_pairs(args.ir, args.vi)
    for path in listing.ir_only:
        print(f"warning: no visible image matches {path.name}", file=sys.stderr)
    for path in listing.vi_only:
        print(f"warning: no thermal image matches {path.name}", file=sys.stderr)
    if not listing.pairs:
        print("error: no thermal/visible pairs found", file=sys.stderr)
        return 2
    engine = create_engine(args.method, parse_options(args.option, args.weights))
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
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_methods:
        for name, description in available_methods().items():
            print(f"{name:16s} {description}")
        return 0
    missing = [f"--{name}" for name in ("ir", "vi", "out") if getattr(args, name) is None]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    try:
        return run(args)
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
