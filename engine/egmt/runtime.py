"""Running EGMT's fusion path on the CPU: ONNX Runtime (default) or eager PyTorch.

The graph takes ``ir, vi (B, 1, H, W)``, ``entities (B, E, D)`` and ``entity_mask (B, E)`` with dynamic
H, W and E, so a change of entities (the detector's names) needs no re-export. It is exported once per
model, checked against PyTorch, and cached on disk like M2PN's graph (:mod:`engine.backends.cache`).
On this 2-core machine under load ONNX Runtime ran the 128x96 network of ``egmt_rt`` in 51 ms against
71 ms for eager PyTorch (one thread each); eager PyTorch with two threads on a busy machine was
catastrophic (1.6 s per frame), so the default is one thread.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..backends.base import BackendChoice
from ..backends.cache import CacheKey, EngineCache, model_hash, runtime_versions
from ..backends.shapes import ShapeSpec
from ..errors import BackendUnavailableError, FusionInputError
from .model import EGMT

log = logging.getLogger("engine.egmt")
ONNX_OPSET = 17
ONNX_TOLERANCE = 1e-3
DEFAULT_THREADS = 1


class FusionPath(nn.Module):
    """``forward(ir, vi, entities, entity_mask) -> fused``: EGMT without the classification head."""

    def __init__(self, model: EGMT) -> None:
        super().__init__()
        self.model = model

    def forward(self, ir: Tensor, vi: Tensor, entities: Tensor, entity_mask: Tensor) -> Tensor:
        return self.model(ir, vi, entities, entity_mask, classify=False).fused


def export_onnx(model: EGMT) -> bytes:
    path = FusionPath(model).eval()
    d = model.config.entity_dim
    sample = (torch.rand(1, 1, 32, 48), torch.rand(1, 1, 32, 48), torch.randn(1, 2, d), torch.ones(1, 2, dtype=torch.bool))
    hw = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(path, sample, buffer, input_names=["ir", "vi", "entities", "entity_mask"],
                          output_names=["fused"], opset_version=ONNX_OPSET, dynamo=False,
                          dynamic_axes={"ir": hw, "vi": hw, "fused": hw, "entities": {0: "batch", 1: "entities"},
                                        "entity_mask": {0: "batch", 1: "entities"}})
    return buffer.getvalue()


class EGMTRunner:
    """Callable ``(ir, vi, entities, entity_mask) -> fused`` tensors; ``choice`` says what runs."""

    def __init__(self, model: EGMT, runtime: str = "auto", threads: int | None = DEFAULT_THREADS,
                 cache_dir: str | Path | None | bool = None) -> None:
        if runtime not in ("auto", "onnxruntime", "torch"):
            raise FusionInputError(f"egmt: unknown runtime {runtime!r}; use auto, onnxruntime or torch")
        self.model, self.session = model.eval(), None
        self.path = FusionPath(model).eval()
        fallbacks = []
        if runtime in ("auto", "onnxruntime"):
            try:
                self._open_session(threads, cache_dir)
            except (BackendUnavailableError, ImportError, RuntimeError) as exc:
                if runtime == "onnxruntime":
                    raise BackendUnavailableError(f"egmt: ONNX Runtime unavailable: {exc}") from None
                fallbacks.append(f"onnxruntime skipped: {exc}")
                log.warning("egmt: ONNX Runtime skipped (%s); using eager PyTorch", exc)
        if self.session is None and threads is not None:
            torch.set_num_threads(int(threads))  # process-wide; eager PyTorch has one pool
        self.choice = BackendChoice(runtime, "cpu", "onnxruntime" if self.session is not None else "torch", "fp32",
                                    fallbacks)

    def _open_session(self, threads: int | None, cache_dir) -> None:
        import onnxruntime as ort

        graph = self._graph(cache_dir)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads, options.inter_op_num_threads = int(threads), 1
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        gen = torch.Generator().manual_seed(0)
        ir, vi = torch.rand(1, 1, 32, 32, generator=gen), torch.rand(1, 1, 32, 32, generator=gen)
        ent = torch.randn(1, 3, self.model.config.entity_dim, generator=gen)
        mask = torch.tensor([[True, True, False]])
        with torch.inference_mode():
            expected = self.path(ir, vi, ent, mask).numpy()
        err = float(np.abs(self._run(ir, vi, ent, mask) - expected).max())
        if not err <= ONNX_TOLERANCE:
            self.session = None
            raise BackendUnavailableError(f"ONNX Runtime output differs from PyTorch by {err:.2e}")

    def _graph(self, cache_dir) -> bytes:
        if cache_dir is False:
            return export_onnx(self.model)
        cache = EngineCache(cache_dir, extension="onnx")
        key = CacheKey.make(model_hash(self.model), ShapeSpec.dynamic_range((96, 128), (16, 16), (4096, 4096)),
                            "fp32", f"egmt-onnx-opset{ONNX_OPSET}", runtime_versions("onnxruntime"))
        path = cache.lookup(key)
        if path is not None:
            return path.read_bytes()
        graph = export_onnx(self.model)
        try:
            cache.store(key, lambda p: p.write_bytes(graph))
        except OSError as exc:
            log.warning("cannot cache the EGMT ONNX graph: %s", exc)
        return graph

    def _run(self, ir: Tensor, vi: Tensor, ent: Tensor, mask: Tensor) -> np.ndarray:
        feeds = {"ir": ir.numpy().astype(np.float32, copy=False), "vi": vi.numpy().astype(np.float32, copy=False),
                 "entities": ent.numpy().astype(np.float32, copy=False), "entity_mask": mask.numpy()}
        return self.session.run(["fused"], feeds)[0]

    def __call__(self, ir: Tensor, vi: Tensor, entities: Tensor, entity_mask: Tensor) -> Tensor:
        """ir, vi (B, 1, H, W); entities (B, E, D) with E >= 1; entity_mask (B, E) bool -> fused (B, 1, H, W)."""
        if self.session is not None:
            return torch.from_numpy(self._run(ir, vi, entities, entity_mask))
        with torch.inference_mode():
            return self.path(ir, vi, entities, entity_mask)
