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
    pairs = _matched(root)
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

    Images stay in memory (all the training data is ~150 MB as float32); the crop table is fixed at
    construction. Build from files (``pairs``) or from already loaded images (:meth:`from_images`).
    """

    def __init__(self, pairs: list[tuple[Path, Path]], count: int = 8000, size: int = 128, seed: int = 0) -> None:
        if not pairs:
            raise FusionInputError("no training pairs given")
        self._build([ir.name for ir, _ in pairs], [load_pair_luma(ir, vi) for ir, vi in pairs], count, size, seed)

    @classmethod
    def from_images(cls, names: list[str], images: list[tuple[np.ndarray, np.ndarray]], count: int, size: int,
                    seed: int) -> "PatchDataset":
        """names[i] labels images[i] = (ir, vi), (H, W) float32 in [0, 1] each."""
        if not images:
            raise FusionInputError("no training images given")
        dataset = cls.__new__(cls)
        dataset._build(list(names), list(images), count, size, seed)
        return dataset

    def _build(self, names: list[str], images: list[tuple[np.ndarray, np.ndarray]], count: int, size: int,
               seed: int) -> None:
        self.names = names
        self.images = images
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


# --- several sources: image-pair folders and synchronised videos -----------------------------------

@dataclass(frozen=True)
class SourceSpec:
    """One training source (YAML ``data.sources`` entry).

    path: a folder with ``ir/`` and ``vi/`` (relative paths are relative to the shared data folder);
    kind: ``pairs`` (images matched by name) or ``video`` (videos matched by name, every ``every``-th frame);
    val: how many pairs (pairs) or whole videos (video: frames of one video are alike) are held out.
    """

    path: Path
    kind: str = "pairs"
    val: int = 0
    every: int = 15

    @classmethod
    def from_dict(cls, data: dict, base: Path | None) -> "SourceSpec":
        data = dict(data)
        unknown = sorted(set(data) - {"path", "kind", "val", "every"})
        if unknown or "path" not in data:
            raise FusionInputError(f"data.sources entry {data}: needs 'path'; known keys: path, kind, val, every")
        path = Path(data["path"]).expanduser()
        if not path.is_absolute():
            if base is None:
                raise FusionInputError(f"data source {path} is relative but ../shared/data was not found (set IRVIS_DATA_DIR)")
            path = base / path
        kind = str(data.get("kind", "pairs"))
        if kind not in ("pairs", "video"):
            raise FusionInputError(f"data source {path}: kind must be 'pairs' or 'video', got {kind!r}")
        return cls(path=path, kind=kind, val=int(data.get("val", 0)), every=max(1, int(data.get("every", 15))))


Loaded = list[tuple[str, tuple[np.ndarray, np.ndarray]]]  # (name, (ir, vi)) with (H, W) float32 [0, 1] images


def _video_frames(ir_path: Path, vi_path: Path, every: int) -> Loaded:
    """Every ``every``-th frame of a synchronised video pair as luma images (names ``video#frame``)."""
    import cv2

    caps = [cv2.VideoCapture(str(p)) for p in (ir_path, vi_path)]
    try:
        if not all(c.isOpened() for c in caps):
            raise FusionInputError(f"cannot open video pair {ir_path} / {vi_path}")
        frames: Loaded = []
        index = 0
        while True:
            ok_ir, ir = caps[0].read()
            ok_vi, vi = caps[1].read()
            if not (ok_ir and ok_vi):
                break
            if index % every == 0:
                pair = tuple(to_gray(to_float01(f)).astype(np.float32) for f in (ir, vi))
                if pair[0].shape != pair[1].shape:
                    raise FusionInputError(f"{ir_path.name}: IR {pair[0].shape} and VIS {pair[1].shape} frames differ in size")
                frames.append((f"{ir_path.stem}#{index}", pair))
            index += 1
        return frames
    finally:
        for c in caps:
            c.release()


def load_source(spec: SourceSpec, seed: int = 0) -> tuple[Loaded, Loaded]:
    """(train, val) images of one source; the held-out choice is seeded and recorded by name."""
    if spec.kind == "pairs":
        split = split_pairs(spec.path, spec.val, seed) if spec.val else PairSplit(
            train=list(_matched(spec.path)), val=[])
        load = lambda pairs: [(f"{spec.path.name}/{ir.name}", load_pair_luma(ir, vi)) for ir, vi in pairs]
        return load(split.train), load(split.val)
    videos = list(_matched(spec.path, (".mp4", ".avi", ".mkv", ".mov")))
    if len(videos) <= spec.val:
        raise FusionInputError(f"{spec.path} has {len(videos)} video pairs, not enough to hold out {spec.val}")
    order = np.random.default_rng(seed).permutation(len(videos))
    held = set(order[:spec.val].tolist())
    train: Loaded = []
    val: Loaded = []
    for i, (ir, vi) in enumerate(videos):
        (val if i in held else train).extend(_video_frames(ir, vi, spec.every))
    return train, val


def _matched(root: Path, suffixes: tuple[str, ...] | None = None) -> list[tuple[Path, Path]]:
    ir_dir, vi_dir = root / "ir", root / "vi"
    if not ir_dir.is_dir() or not vi_dir.is_dir():
        raise FusionInputError(f"training data folder {root} needs ir/ and vi/ sub-folders (see ../shared/data/SOURCES.md)")
    if suffixes is None:
        return list(match_pairs(ir_dir, vi_dir).pairs)
    names = sorted(p.name for p in ir_dir.iterdir() if p.suffix.lower() in suffixes)
    return [(ir_dir / n, vi_dir / n) for n in names if (vi_dir / n).is_file()]


def load_sources(specs: list[SourceSpec], seed: int = 0) -> tuple[Loaded, Loaded]:
    """Concatenate the (train, val) images of every source, in the order given."""
    train: Loaded = []
    val: Loaded = []
    for spec in specs:
        t, v = load_source(spec, seed)
        train.extend(t)
        val.extend(v)
    return train, val
