"""EGMT training data: aligned IR/VIS patches with their entities (text features) and multi-label targets.

Sources are dataset folders (``ir/`` + ``vi/``) each with an entity file from ``engine.egmt.entities``.
A training crop's entities are the detected objects whose box lies at least half inside the crop (either
modality): the paper's entities are per pair, but a 128 px crop of a 640x480 frame rarely shows every
object of the pair. Half of the crops are centred (with jitter) on a detected box so the multi-label head
sees entities; the other half are uniform. The crop table is drawn once from a seed (exact resume).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..datasets import load_pair_luma
from ..errors import FusionError
from ..imageio import match_pairs
from .entities import PairEntities, load_pair_entities
from .entity_table import EntityTable, dedupe, normalise_name

MAX_ENTITIES = 8


@dataclass
class PairRecord:
    dataset: str
    name: str
    ir_path: Path
    vi_path: Path
    entities: PairEntities


def collect_pairs(sources: list[dict]) -> list[PairRecord]:
    """``[{name, root, entities}]`` -> every matched pair that has an entry in its entity file."""
    records = []
    for src in sources:
        root, ent_file = Path(src["root"]), Path(src["entities"])
        if not (root / "ir").is_dir():
            raise FusionError(f"training data folder {root} needs ir/ and vi/ (see ../shared/data/SOURCES.md)")
        ents = load_pair_entities(ent_file)
        for ir_p, vi_p in match_pairs(root / "ir", root / "vi").pairs:
            if ir_p.name not in ents:
                raise FusionError(f"{ir_p.name} of {root} has no entry in {ent_file}; re-run python -m engine.egmt.entities")
            records.append(PairRecord(src.get("name", root.name), ir_p.name, ir_p, vi_p, ents[ir_p.name]))
    return records


def split_records(records: list[PairRecord], val_pairs: int, seed: int) -> tuple[list[PairRecord], list[PairRecord]]:
    if len(records) <= val_pairs:
        raise FusionError(f"{len(records)} pairs are not enough to hold out {val_pairs} for validation")
    order = np.random.default_rng(seed).permutation(len(records))
    val = set(order[:val_pairs].tolist())
    return [r for i, r in enumerate(records) if i not in val], [r for i, r in enumerate(records) if i in val]


def class_vocabulary(records: list[PairRecord], min_pairs: int) -> list[str]:
    """Entity names present in at least ``min_pairs`` pairs, most frequent first (the multi-label classes)."""
    counts = Counter(normalise_name(n) for r in records for n in r.entities.entities)
    return [n for n, c in counts.most_common() if c >= min_pairs]


def crop_entities(boxes: list[list], y: int, x: int, size: int, min_inside: float = 0.5) -> list[str]:
    """Names of the boxes ``[label, score, x1, y1, x2, y2]`` with at least ``min_inside`` of their area in the crop."""
    names = []
    for label, _score, x1, y1, x2, y2 in boxes:
        area = max(x2 - x1, 1e-6) * max(y2 - y1, 1e-6)
        ix = max(0.0, min(x2, x + size) - max(x1, x))
        iy = max(0.0, min(y2, y + size) - max(y1, y))
        if ix * iy >= min_inside * area:
            names.append(label)
    return dedupe(names)


def encode_entities(names_per_item: list[list[str]], table: EntityTable, max_entities: int = MAX_ENTITIES
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Lists of names -> (B, E, D) features and (B, E) validity mask (E = longest list, at most max_entities)."""
    feats = [table.lookup(n)[0][:max_entities] for n in names_per_item]
    e = max([len(f) for f in feats] + [1])
    out = np.zeros((len(feats), e, table.dim), np.float32)
    mask = np.zeros((len(feats), e), bool)
    for i, f in enumerate(feats):
        out[i, :len(f)] = f
        mask[i, :len(f)] = True
    return torch.from_numpy(out), torch.from_numpy(mask)


def multi_hot(names: list[str], classes: list[str]) -> np.ndarray:
    keys = {normalise_name(n) for n in names}
    return np.array([c in keys for c in classes], np.float32)


class EntityPatchDataset:
    """``count`` crops of ``size`` px; item i -> (ir (1,s,s), vi (1,s,s), entity names, targets (K,))."""

    def __init__(self, records: list[PairRecord], classes: list[str], count: int, size: int, seed: int,
                 box_centred: float = 0.5) -> None:
        self.records, self.classes, self.size = records, classes, size
        self.images = [load_pair_luma(r.ir_path, r.vi_path) for r in records]
        small = [r.name for r, (ir, _) in zip(records, self.images) if min(ir.shape) < size]
        if small:
            raise FusionError(f"{len(small)} pair(s) smaller than the {size}px crop, e.g. {small[0]}")
        rng = np.random.default_rng(seed)
        self.crops = np.empty((count, 3), np.int64)
        for n in range(count):
            i = int(rng.integers(len(records)))
            h, w = self.images[i][0].shape
            boxes = records[i].entities.boxes()
            if boxes and rng.random() < box_centred:
                _, _, x1, y1, x2, y2 = boxes[int(rng.integers(len(boxes)))]
                cy = (y1 + y2) / 2 + rng.normal(0, size / 6)
                cx = (x1 + x2) / 2 + rng.normal(0, size / 6)
                y = int(np.clip(round(cy - size / 2), 0, h - size))
                x = int(np.clip(round(cx - size / 2), 0, w - size))
            else:
                y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
            self.crops[n] = (i, y, x)
        self.names = [crop_entities(records[i].entities.boxes(), y, x, size) for i, y, x in self.crops]
        self.targets = np.stack([multi_hot(n, classes) for n in self.names]) if classes else np.zeros((count, 0), np.float32)

    def __len__(self) -> int:
        return len(self.crops)

    def positive_ratio(self) -> torch.Tensor:
        return torch.from_numpy(self.targets.mean(axis=0))

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor, list[list[str]], torch.Tensor]:
        s = self.size
        irs, vis = [], []
        for idx in indices:
            i, y, x = (int(v) for v in self.crops[int(idx)])
            ir, vi = self.images[i]
            irs.append(ir[None, y:y + s, x:x + s])
            vis.append(vi[None, y:y + s, x:x + s])
        names = [self.names[int(i)] for i in indices]
        targets = torch.from_numpy(self.targets[np.asarray(indices, dtype=np.int64)])
        return torch.from_numpy(np.stack(irs)), torch.from_numpy(np.stack(vis)), names, targets

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update("\n".join(f"{r.dataset}/{r.name}" for r in self.records).encode())
        h.update(self.crops.tobytes())
        h.update("|".join(self.classes).encode())
        return h.hexdigest()[:16]
