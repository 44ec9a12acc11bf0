"""A contact sheet of M2PN results on the TNO pairs: one row per pair, IR | VIS | fused.

    python -m engine.m2pn.montage [--weights PATH] [--data DIR] [--out docs/images/m2pn_tno_montage.png]

Each tile is scaled to ``--tile-height`` pixels (aspect kept); if the PNG would still be larger than
``--max-mb`` the whole sheet is scaled down until it fits. The pair name is written on the IR tile.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import FusionError
from ..fusion_engine import FusionEngine
from ..imageio import match_pairs, read_image
from ..paths import shared_data_dir

DEFAULT_OUT = Path("docs/images/m2pn_tno_montage.png")


def to_bgr_uint8(image: np.ndarray) -> np.ndarray:
    """Any (H, W) / (H, W, 1|3|4) uint8/uint16 image -> (H, W, 3) BGR uint8 for display."""
    if image.dtype == np.uint16:
        image = (image / 257.0).round().astype(np.uint8)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def resize_to_height(image: np.ndarray, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    width = max(1, round(w * height / h))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def make_row(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, tile_height: int, label: str, gap: int = 4) -> np.ndarray:
    """(H, W, 3) BGR uint8 strip IR | VIS | fused, each tile ``tile_height`` high, white gaps between."""
    tiles = [resize_to_height(to_bgr_uint8(t), tile_height) for t in (ir, vi, fused)]
    cv2.putText(tiles[0], label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 255), 1, cv2.LINE_AA)
    spacer = np.full((tile_height, gap, 3), 255, np.uint8)
    return np.concatenate([tiles[0], spacer, tiles[1], spacer, tiles[2]], axis=1)


def stack_rows(rows: list[np.ndarray], columns: int = 1, gap: int = 4) -> np.ndarray:
    """Rows (each (h, w_i, 3)) -> one grid image, ``columns`` rows side by side, padded with white."""
    width = max(r.shape[1] for r in rows)
    height = rows[0].shape[0]
    padded = [np.pad(r, ((0, gap), (0, width - r.shape[1] + gap), (0, 0)), constant_values=255) for r in rows]
    while len(padded) % columns:
        padded.append(np.full_like(padded[0], 255))
    per_column = len(padded) // columns
    cols = [np.concatenate(padded[i * per_column:(i + 1) * per_column], axis=0) for i in range(columns)]
    grid = np.concatenate(cols, axis=1)
    assert grid.shape[0] == per_column * (height + gap)
    return grid


def header(width: int, titles: list[str], tile_width: int, gap: int = 4) -> np.ndarray:
    bar = np.full((22, width, 3), 255, np.uint8)
    for i, title in enumerate(titles):
        cv2.putText(bar, title, (i * (tile_width + gap) + 4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def build_montage(data_dir: Path, weights: str | None, tile_height: int = 128, columns: int = 3,
                  method: str = "m2pn") -> tuple[np.ndarray, int]:
    """Fuse every pair in ``data_dir/ir`` + ``data_dir/vi``; return the montage (BGR uint8) and the pair count."""
    listing = match_pairs(data_dir / "ir", data_dir / "vi")
    if not listing.pairs:
        raise FusionError(f"no thermal/visible pairs found under {data_dir}/ir and {data_dir}/vi")
    options = {"weights": weights} if weights else {}
    rows = []
    with FusionEngine(method, **options) as engine:
        for ir_path, vi_path in tqdm(listing.pairs, desc=f"fusing TNO ({method})", unit="pair"):
            ir, vi = read_image(ir_path), read_image(vi_path)
            rows.append(make_row(ir, vi, engine.fuse(ir, vi), tile_height, ir_path.stem))
    grid = stack_rows(rows, columns=columns)
    tile_width = (rows[0].shape[1] - 8) // 3
    titles = ["IR", "VIS", f"fused ({method})"] * columns
    bar = np.concatenate([header(grid.shape[1] // columns, titles[:3], tile_width)] * columns, axis=1)
    return np.concatenate([bar, grid], axis=0), len(rows)


def encode_png_under(image: np.ndarray, max_bytes: int) -> tuple[np.ndarray, bytes]:
    """PNG-encode ``image``, shrinking it (INTER_AREA) until the file is at most ``max_bytes``."""
    while True:
        ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok:
            raise FusionError("cannot encode the montage as PNG")
        if buf.size <= max_bytes or min(image.shape[:2]) < 64:
            return image, buf.tobytes()
        # PNG size grows roughly with the pixel count: shrink the area by the overshoot, plus a margin
        scale = 0.95 * (max_bytes / buf.size) ** 0.5
        size = (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.m2pn.montage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="M2PN weights (default engine/weights/m2pn.pt)")
    parser.add_argument("--data", help="folder with ir/ and vi/ (default: the shared TNO set)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"output PNG (default {DEFAULT_OUT})")
    parser.add_argument("--tile-height", type=int, default=128, help="height of each tile in pixels (default 128)")
    parser.add_argument("--columns", type=int, default=3, help="pairs side by side (default 3)")
    parser.add_argument("--max-mb", type=float, default=1.5, help="largest PNG size in MB (default 1.5)")
    parser.add_argument("--method", default="m2pn", help="fusion method for the third column (default m2pn)")
    args = parser.parse_args(argv)
    try:
        if args.data:
            data_dir = Path(args.data)
        else:
            shared = shared_data_dir()
            if shared is None:
                raise FusionError("the shared data folder (../shared/data or $IRVIS_DATA_DIR) is missing; pass --data DIR")
            data_dir = shared / "tno"
        montage, count = build_montage(data_dir, args.weights, args.tile_height, args.columns, args.method)
        montage, png = encode_png_under(montage, int(args.max_mb * 1e6))
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(png)
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size_mb = Path(args.out).stat().st_size / 1e6
    print(f"wrote {args.out}: {count} pairs, {montage.shape[1]}x{montage.shape[0]} px, {size_mb:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
