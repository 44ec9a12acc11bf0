"""The registered ``egmt`` and ``egmt_rt`` fusion methods: a trained EGMT with entity guidance.

Entities (names) reach the network as CLIP text features through :class:`EntitySelection`:

* ``set_entities(names, "detector")`` — the application passes the detector's class names on the current
  frames while detection is on;
* otherwise the ``entities`` option (a configured list);
* otherwise every class the model was trained to recognise ("all known").

:attr:`entity_status` says which, for the status bar. The multi-label head is not run at inference
(the paper disables it for its runtime figures too).

``egmt_rt`` runs the same network on a reduced frame (pixel budget, as ``m2pn_rt``) and carries the result
to full resolution with the two-guide guided upsampling of :mod:`engine.realtime.guided`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from ..errors import FusionError, FusionInputError
from ..m2pn.method import pad_to_multiple
from ..methods.base import FusionMethod
from ..realtime.guided import guided_upsample_batch
from ..realtime.method import DEFAULT_EPS, DEFAULT_MAX_WORK_PIXELS, DEFAULT_RADIUS, work_size
from ..registry import register_method
from .entity_table import EntityTable, dedupe, normalise_name
from .model import EGMT
from .runtime import DEFAULT_THREADS, EGMTRunner
from .weights import load_model

#: the real-time variant's network input budget: the same 120x90 as m2pn_rt (padded to 128x96 for 16 px patches)
RT_MAX_WORK_PIXELS = DEFAULT_MAX_WORK_PIXELS


class EntitySelection:
    """Which entity names guide the fusion, and where they came from (thread-safe)."""

    def __init__(self, table: EntityTable, known: Sequence[str], configured: Sequence[str] | None) -> None:
        self.table = table
        self.known = [n for n in dedupe(known) if n in table]
        missing = table.missing(configured or [])
        if missing:
            raise FusionInputError(f"egmt: entities not in the text-feature table: {', '.join(missing)}")
        self.configured = dedupe(configured) if configured else None
        self._lock = threading.Lock()
        self._detected: list[str] | None = None
        self._features = self._encode(self.current_names())

    def _encode(self, names: list[str]) -> torch.Tensor:
        feats, _ = self.table.lookup(names)
        return torch.from_numpy(np.ascontiguousarray(feats))[None]      # (1, E, D)

    def current_names(self) -> list[str]:
        if self._detected is not None:
            return self._detected
        return self.configured if self.configured is not None else self.known

    @property
    def source(self) -> str:
        if self._detected is not None:
            return "detector"
        return "configured list" if self.configured is not None else "all known"

    def set_detected(self, names: Sequence[str] | None) -> str | None:
        """New detector names (None: detection off). Returns a status line when the entities changed."""
        new = None if names is None else [n for n in dedupe(names) if n in self.table]
        key = lambda v: None if v is None else sorted(normalise_name(n) for n in v)
        with self._lock:
            if key(new) == key(self._detected):  # same set in another order: no change, no status line
                return None
            self._detected = new
            self._features = self._encode(self.current_names())
        return self.status()

    def features(self) -> torch.Tensor:
        with self._lock:
            return self._features

    def status(self) -> str:
        names = self.current_names()
        shown = ", ".join(names[:6]) + (" ..." if len(names) > 6 else "") if names else "none"
        return f"EGMT entities from {self.source}: {shown}"


class _EGMTBase(FusionMethod):
    """Shared setup: weights, entity table, entity selection, one eager forward pass."""

    method_label = "egmt"

    def __init__(self, weights: str | Path | None = None, entities: Sequence[str] | str | None = None,
                 entity_table: EntityTable | None = None, model: EGMT | None = None,
                 classes: Sequence[str] | None = None, threads: int | None = DEFAULT_THREADS,
                 runtime: str = "auto", cache_dir: str | Path | None = None) -> None:
        if threads is not None and int(threads) < 1:
            raise FusionInputError(f"{self.method_label}: threads must be at least 1, got {threads!r}")
        embedded = None
        if model is None:
            model, classes, self.meta, embedded = load_model(weights)
            self.weights_path = Path(weights) if weights is not None else None
        else:
            model.eval()
            self.meta, self.weights_path = {}, None
        self.model = model
        self.classes = list(classes or [])
        if entity_table is None:
            try:
                entity_table = EntityTable.clip_default()
            except FusionError:
                if embedded is None:
                    raise
                entity_table = embedded  # the COCO names' features shipped inside the weights file
        table = entity_table
        if table.dim != model.config.entity_dim:
            raise FusionError(f"{self.method_label}: entity table is {table.dim}-d but the model expects "
                              f"{model.config.entity_dim}-d entity features")
        if isinstance(entities, str):
            entities = [e.strip() for e in entities.split(",") if e.strip()]
        self.entities = EntitySelection(table, self.classes, entities)
        self.size_multiple = model.config.patch_size
        self._runner = EGMTRunner(model, runtime, threads, cache_dir)
        self.backend_choice = self._runner.choice
        self.backend = self._runner.choice.describe()

    # --- entity guidance (called by the application) -------------------------------------------------
    def set_entities(self, names: Sequence[str] | None, source: str = "detector") -> str | None:
        """Detector class names on the current frames (None: detection is off). Returns a status line on change."""
        return self.entities.set_detected(names)

    @property
    def entity_status(self) -> str:
        return self.entities.status()

    def _network(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """(B, h, w) float32 -> (B, h, w) float32 in [0, 1]: pad to the patch size, run, crop."""
        if self._runner is None:
            raise FusionError(f"{self.method_label}: this method was closed; create a new one to fuse again")
        with torch.inference_mode():
            ir_t = torch.from_numpy(np.ascontiguousarray(ir, dtype=np.float32))[:, None]
            vi_t = torch.from_numpy(np.ascontiguousarray(vi, dtype=np.float32))[:, None]
            ir_t, h, w = pad_to_multiple(ir_t, self.size_multiple)
            vi_t, _, _ = pad_to_multiple(vi_t, self.size_multiple)
            ent = self.entities.features()
            mask = torch.ones(ent.shape[:2], dtype=torch.bool)
            if ent.shape[1] == 0:  # no entity: one padding row (the graph needs E >= 1); the null entity answers
                ent, mask = ent.new_zeros(1, 1, ent.shape[2]), torch.zeros(1, 1, dtype=torch.bool)
            b = ir_t.shape[0]
            fused = self._runner(ir_t, vi_t, ent.expand(b, -1, -1), mask.expand(b, -1))[:, 0, :h, :w]
            return np.ascontiguousarray(fused.clamp(0, 1).numpy(), dtype=np.float32)

    def _check(self, ir: np.ndarray, vi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ir, vi = np.asarray(ir, np.float32), np.asarray(vi, np.float32)
        if ir.ndim != 3 or ir.shape != vi.shape:
            raise FusionInputError(f"{self.method_label}: expected two (B, H, W) batches of one shape, "
                                   f"got {ir.shape} and {vi.shape}")
        if min(ir.shape[1:]) < 2:
            raise FusionInputError(f"{self.method_label}: images must be at least 2x2 pixels")
        return ir, vi

    def fuse(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """(H, W) float32 [0, 1] thermal and visible luminance -> (H, W) float32 [0, 1] fused."""
        return self.fuse_batch(ir[None], vi[None])[0]

    def close(self) -> None:
        self._runner = None

    def predict_entities(self, ir: np.ndarray, vi: np.ndarray) -> dict[str, float]:
        """The multi-label head on one pair: class name -> probability (the paper's auxiliary task)."""
        if not self.model.config.use_multitask or not self.classes:
            return {}
        ir, vi = self._check(ir[None], vi[None])
        with torch.inference_mode():
            ir_t, _, _ = pad_to_multiple(torch.from_numpy(ir)[:, None], self.size_multiple)
            vi_t, _, _ = pad_to_multiple(torch.from_numpy(vi)[:, None], self.size_multiple)
            logits = self.model(ir_t, vi_t, self.entities.features(), None).logits[0]
        return dict(zip(self.classes, torch.sigmoid(logits).tolist()))


@register_method("egmt", "EGMT network (entity-guided multi-task fusion), entities from detector/list/all")
class EGMTMethod(_EGMTBase):
    """Full-resolution EGMT.

    Options: ``weights`` (default ``engine/weights/egmt.pt``), ``entities`` (list or comma-separated names;
    default: all classes the model knows), ``entity_table`` (an :class:`EntityTable`; default the CLIP
    ViT-B/32 tables in ``../shared/models/clip_text``, else the COCO names' features inside the weights),
    ``runtime`` (``auto``: ONNX Runtime, else eager PyTorch; ``onnxruntime``; ``torch``), ``threads``
    (default 1, see :mod:`engine.egmt.runtime`), ``cache_dir`` (exported graph cache).
    """

    def fuse_batch(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        ir, vi = self._check(ir, vi)
        return self._network(ir, vi)


@register_method("egmt_rt", "EGMT in real time: network at reduced size + edge-aware guided upsampling")
class EGMTRealtimeMethod(_EGMTBase):
    """EGMT at a reduced resolution (``max_work_pixels``, default 120x90) + two-guide guided upsampling.

    Extra options: ``scale`` (default 0.25), ``max_work_pixels``, ``radius``, ``eps``, ``residual``.
    """

    method_label = "egmt_rt"

    def __init__(self, *args, scale: float = 0.25, max_work_pixels: int | None = RT_MAX_WORK_PIXELS,
                 radius: int = DEFAULT_RADIUS, eps: float = DEFAULT_EPS, residual: bool = True, **kwargs) -> None:
        work_size(64, 64, float(scale), max_work_pixels)  # validates
        if int(radius) < 1 or float(eps) <= 0:
            raise FusionInputError(f"egmt_rt: radius must be >= 1 and eps > 0, got radius={radius}, eps={eps}")
        super().__init__(*args, **kwargs)
        self.scale, self.max_work_pixels = float(scale), max_work_pixels
        self.radius, self.eps, self.residual = int(radius), float(eps), bool(residual)

    def fuse_batch(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        ir, vi = self._check(ir, vi)
        _, height, width = ir.shape
        h, w = work_size(height, width, self.scale, self.max_work_pixels)
        if (h, w) == (height, width):
            return self._network(ir, vi)
        ir_low = np.stack([cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA) for x in ir])
        vi_low = np.stack([cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA) for x in vi])
        fused_low = self._network(ir_low, vi_low)
        return guided_upsample_batch(ir, vi, ir_low, vi_low, fused_low, self.radius, self.eps, self.residual)
