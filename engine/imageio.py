"""Reading images and matching thermal/visible files by name, with errors that name the file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .errors import FusionInputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def read_image(path: str | Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """Read an image with OpenCV; raise :class:`FusionInputError` naming the file if that fails.

    Args:
        path: image file.
        flags: OpenCV imread flags (``IMREAD_UNCHANGED`` keeps 16-bit thermal data and gray/colour as stored).

    Returns:
        (H, W) or (H, W, C) array (BGR order for colour).
    """
    p = Path(path)
    if not p.is_file():
        raise FusionInputError(f"no such image file: {p}")
    data = np.fromfile(str(p), dtype=np.uint8)  # fromfile+imdecode also handles non-ASCII paths
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise FusionInputError(f"cannot read {p}: not an image OpenCV can decode, or the file is corrupt")
    return image


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write an image (format from the suffix), creating the folder; raise FusionInputError on failure."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(p.suffix or ".png", image)
    if not ok:
        raise FusionInputError(f"cannot encode an image as {p.suffix!r} for {p}")
    buf.tofile(str(p))


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


@dataclass
class PairListing:
    """Thermal/visible files matched by name, and what could not be matched."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    ir_only: list[Path] = field(default_factory=list)
    vi_only: list[Path] = field(default_factory=list)


def match_pairs(ir: str | Path, vi: str | Path) -> PairListing:
    """Match thermal and visible images.

    Two files make one pair. Two folders are matched by file name (exact name first, then name without
    suffix, so ``01.png`` pairs with ``01.jpg``); names found on one side only are returned, not dropped.
    """
    ir_p, vi_p = Path(ir), Path(vi)
    if not ir_p.exists():
        raise FusionInputError(f"thermal path does not exist: {ir_p}")
    if not vi_p.exists():
        raise FusionInputError(f"visible path does not exist: {vi_p}")
    if ir_p.is_file() and vi_p.is_file():
        return PairListing(pairs=[(ir_p, vi_p)])
    if ir_p.is_dir() != vi_p.is_dir():
        raise FusionInputError("give two files or two folders, not a file and a folder")
    ir_files, vi_files = list_images(ir_p), list_images(vi_p)
    vi_by_name = {p.name: p for p in vi_files}
    vi_by_stem = {p.stem: p for p in vi_files}
    listing = PairListing()
    used: set[Path] = set()
    for f in ir_files:
        match = vi_by_name.get(f.name) or vi_by_stem.get(f.stem)
        if match is None or match in used:
            listing.ir_only.append(f)
        else:
            listing.pairs.append((f, match))
            used.add(match)
    listing.vi_only = [p for p in vi_files if p not in used]
    return listing
