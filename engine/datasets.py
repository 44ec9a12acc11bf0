"""Training data: random aligned IR/VIS patch pairs cropped from a folder of registered image pairs.

The paper trains on 8,000 random 128x128 patches of RoadScene, with 40 pairs held out for validation.
Crops are drawn once from a seeded generator, so the same config always gives the same patch list
(recorded in the checkpoint by :func:`PatchDataset.fingerprint`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .color import to_float01, to_gray
from .errors import FusionInputError
from .imageio import match_pairs, read_image


@dataclass(frozen=True)
class PairSplit:
    """Names of the training and validation pairs (matched by file name in ir/ and vi/)."""

    train: list[tuple[Path, Path]]
    val: list[tuple[Path, Path]]


def split_pairs(root: str | Path, val_count: int = 40, seed: int = 0) -> PairSplit:
    """Match ``root/ir`` with ``root/vi`` and hold out ``val_count`` pairs (seeded choice)."""
    root = Path(root)
    ir_dir, vi_dir = root / "ir", root / "vi"
    if not ir_dir.is_dir() or not vi_dir.is_dir():
        raise FusionInputError(f"training data folder {root} needs ir/ and vi/ sub-folders (see ../shared/data/SOURCES.md)")
    listing = match_pairs(ir_dir, vi_dir)
    pairs = list(listing.pairs)
    if len(pairs) <= val_count:
        raise FusionInputError(f"{root} has {len(pairs)} matched pairs, not enough for {val_count} validation pairs")
    order = np.random.default_rng(seed).permutation(len(pairs))
    val_idx = set(order[:val_count].tolist())
    train = [pairs[i] for i in range(len(pairs)) if i not in val_idx]
    val = [pairs[i] for i in range(len(pairs)) if i in val_idx]
    return PairSplit(train=train, val=val)


def load_pair_luma(ir_path: Path, vi_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one pair as float32 [0, 1] grayscale IR and VIS luma (Y of YCbCr), both (H, W)."""
    ir = to_gray(to_float01(read_image(ir_path)))
    vi = to_gray(to_float01(read_image(vi_path)))
    if ir.shape != vi.shape:
        raise FusionInputError(f"pair {ir_path.name}: IR {ir.shape} and VIS {vi.shape} differ in size")
    return ir.astype(np.float32), vi.astype(np.float32)


class PatchDataset(Dataset):
    """``count`` random ``size`` x ``size`` crops of the given pairs; item i -> (ir, vi), each (1, size, size).

    Images stay in memory (RoadScene is ~9 MB); the crop table is fixed at construction.
    """

    def __init__(self, pairs: list[tuple[Path, Path]], count: int = 8000, size: int = 128, seed: int = 0) -> None:
        if not pairs:
            raise FusionInputError("no training pairs given")
        self.names = [ir.name for ir, _ in pairs]
        self.images = [load_pair_luma(ir, vi) for ir, vi in pairs]
        small = [n for n, (ir, _) in zip(self.names, self.images) if min(ir.shape) < size]
        if small:
            raise FusionInputError(f"{len(small)} pair(s) smaller than the {size}px patch size, e.g. {small[0]}")
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, len(self.images), size=count)
        self.crops = np.empty((count, 3), dtype=np.int64)   # (image index, y, x)
        for n, i in enumerate(picks):
            h, w = self.images[i][0].shape
            self.crops[n] = (i, rng.integers(0, h - size + 1), rng.integers(0, w - size + 1))
        self.size = size

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        i, y, x = (int(v) for v in self.crops[index])
        ir, vi = self.images[i]
        s = self.size
        return (torch.from_numpy(ir[None, y:y + s, x:x + s].copy()),
                torch.from_numpy(vi[None, y:y + s, x:x + s].copy()))

    def fingerprint(self) -> str:
        """SHA-256 over the pair names and the crop table: identical data <=> identical fingerprint."""
        h = hashlib.sha256()
        h.update("\n".join(self.names).encode())
        h.update(self.crops.tobytes())
        return h.hexdigest()[:16]
