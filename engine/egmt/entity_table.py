"""Entity text features: a table of entity names -> CLIP text embeddings, looked up case-insensitively.

The paper encodes each entity word with CLIP ViT-L/14's text encoder (768-d). Here the features come from
a table on disk: ``names.txt`` (one name a line) + ``features.npy`` (rows in the same order), e.g. the CLIP
ViT-B/32 embeddings of "a {name}" in ``../shared/models/clip_text`` (512-d). Any such table plugs in: a user
with local CLIP weights or another vocabulary writes two files and passes them.

Rows are L2-normalised on load (the shipped ones have norms of 8-13, not 1), so the network sees unit
vectors whatever encoder produced them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import FusionError
from ..paths import REPO_ROOT

#: names file -> features file of the shipped CLIP tables, in lookup priority (COCO first: YOLOv5's names)
CLIP_TABLE_FILES: tuple[tuple[str, str], ...] = (
    ("coco_names.txt", "coco_vitb32_a_name.npy"),
    ("o365_names.txt", "o365_vitb32_a_name.npy"),
    ("lvis_v1_names.txt", "lvis_v1_vitb32_a_name.npy"),
)


def default_clip_dir() -> Path | None:
    """``IRVIS_CLIP_TEXT_DIR`` or ``../shared/models/clip_text`` beside the checkout, None when absent."""
    override = os.environ.get("IRVIS_CLIP_TEXT_DIR")
    for path in ([Path(override)] if override else []) + [REPO_ROOT.parent / "shared" / "models" / "clip_text"]:
        if path.is_dir():
            return path
    return None


def normalise_name(name: str) -> str:
    """Case-insensitive key of an entity name: lower case, '_' -> ' ', LVIS's '(qualifier)' dropped.

    ``"car_(automobile)"`` -> ``"car"``, ``"Traffic Light"`` -> ``"traffic light"``.
    """
    key = re.sub(r"\(.*?\)", "", name.lower()).replace("_", " ")
    return " ".join(key.split())


def dedupe(names: Iterable[str]) -> list[str]:
    """Entity names without duplicates regardless of case (the paper's de-duplication), first spelling kept."""
    seen, out = set(), []
    for n in names:
        k = normalise_name(n)
        if k and k not in seen:
            seen.add(k)
            out.append(n)
    return out


@dataclass
class EntityTable:
    """Unit-norm text features of named entities.

    Attributes:
        names: canonical names (first spelling seen), one per row.
        features: (N, D) float32, rows of unit length.
        source: where the table came from (for sidecars and the model card).
    """

    names: list[str]
    features: np.ndarray
    source: str = ""
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        feats = np.asarray(self.features, dtype=np.float32)
        if feats.ndim != 2 or feats.shape[0] != len(self.names):
            raise FusionError(f"entity table: {len(self.names)} names but features of shape {feats.shape}")
        norms = np.linalg.norm(feats, axis=1, keepdims=True)
        self.features = feats / np.maximum(norms, 1e-8)
        self._index = {}
        for i, n in enumerate(self.names):
            self._index.setdefault(normalise_name(n), i)

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    def __contains__(self, name: str) -> bool:
        return normalise_name(name) in self._index

    def lookup(self, names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Features of the known names, de-duplicated case-insensitively.

        Returns:
            ((E, D) float32, the E names found); names not in the table are left out (see :meth:`missing`).
        """
        found = [n for n in dedupe(names) if normalise_name(n) in self._index]
        rows = [self._index[normalise_name(n)] for n in found]
        return (self.features[rows] if rows else np.zeros((0, self.dim), np.float32)), found

    def missing(self, names: Sequence[str]) -> list[str]:
        return [n for n in dedupe(names) if normalise_name(n) not in self._index]

    @classmethod
    def from_files(cls, names_file: str | Path, features_file: str | Path) -> "EntityTable":
        """One names file + one .npy of rows in the same order."""
        names_file, features_file = Path(names_file), Path(features_file)
        for p in (names_file, features_file):
            if not p.is_file():
                raise FusionError(f"entity table file not found: {p}")
        names = [line.strip() for line in names_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        try:
            feats = np.load(features_file)
        except (OSError, ValueError) as exc:
            raise FusionError(f"cannot read entity features {features_file}: {exc}") from None
        return cls(names, feats, source=f"{names_file.name}+{features_file.name}")

    @classmethod
    def merge(cls, tables: Sequence["EntityTable"]) -> "EntityTable":
        """One table from several of one dimension; earlier tables win on names they share."""
        if not tables:
            raise FusionError("entity table: nothing to merge")
        dims = {t.dim for t in tables}
        if len(dims) != 1:
            raise FusionError(f"entity tables of different dimensions cannot be merged: {sorted(dims)}")
        names, rows, seen = [], [], set()
        for t in tables:
            for n, row in zip(t.names, t.features):
                k = normalise_name(n)
                if k not in seen:
                    seen.add(k)
                    names.append(n)
                    rows.append(row)
        return cls(names, np.stack(rows), source=" + ".join(t.source for t in tables))

    @classmethod
    def clip_default(cls, folder: str | Path | None = None) -> "EntityTable":
        """The shipped CLIP ViT-B/32 tables (COCO, then Objects365, then LVIS names), merged.

        Raises FusionError naming the folder when it is absent.
        """
        folder = Path(folder) if folder is not None else default_clip_dir()
        if folder is None or not folder.is_dir():
            raise FusionError("CLIP text embeddings not found (expected ../shared/models/clip_text or "
                              "IRVIS_CLIP_TEXT_DIR); pass an entity table with names + .npy features")
        tables = [cls.from_files(folder / n, folder / f) for n, f in CLIP_TABLE_FILES if (folder / n).is_file()]
        if not tables:
            raise FusionError(f"{folder} holds no entity table ({', '.join(n for n, _ in CLIP_TABLE_FILES)})")
        return cls.merge(tables)
