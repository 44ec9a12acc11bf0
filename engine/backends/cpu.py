"""CPU runners: ONNX Runtime (default when installed; ~1.5-2x faster than eager PyTorch for M2PN here) and
eager PyTorch (always available).

The ONNX graph is exported once per model (dynamic batch/height/width), checked against PyTorch on a
small random pair, and cached on disk like a compiled engine (see :mod:`engine.backends.cache`).
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import BackendUnavailableError
from .base import BackendChoice, FusedOutput, Runner
from .cache import CacheKey, EngineCache, model_hash, runtime_versions
from .shapes import ShapeSpec

log = logging.getLogger("engine.backends")

#: largest |onnx - torch| accepted on the check pair (float32 both ways; measured ~1e-6)
ONNX_TOLERANCE = 1e-3
ONNX_OPSET = 17


class TorchCpuRunner(Runner):
    """Eager PyTorch on the CPU, float32, under ``torch.inference_mode``."""

    def __init__(self, model: nn.Module, threads: int | None = None, requested: str = "cpu",
                 fallbacks: list[str] | None = None) -> None:
        if threads is not None:
            torch.set_num_threads(int(threads))
        self.module = FusedOutput(model).eval()
        self.choice = BackendChoice(requested, "cpu", "torch", "fp32", list(fallbacks or []))

    def __call__(self, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(ir.float(), vi.float())


def export_onnx_bytes(model: nn.Module, height: int = 64, width: int = 80) -> bytes:
    """Export ``model`` (fused output only) to ONNX with dynamic batch, height and width; returns the bytes."""
    module = FusedOutput(model).eval()
    sample = (torch.rand(1, 1, height, width), torch.rand(1, 1, height, width))
    axes = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation / constant-folding chatter
        torch.onnx.export(module, sample, buffer, input_names=["ir", "vi"], output_names=["fused"],
                          opset_version=ONNX_OPSET, dynamo=False,
                          dynamic_axes={"ir": axes, "vi": axes, "fused": axes})
    return buffer.getvalue()


class OnnxCpuRunner(Runner):
    """ONNX Runtime CPU session of the exported model, float32.

    Args:
        model: the M2PN (eval mode).
        threads: ONNX Runtime intra-op threads (None: its default, one per core).
        cache_dir: where the exported graph is cached (None: :func:`default_cache_dir`); False: no cache.
    """

    def __init__(self, model: nn.Module, threads: int | None = None, cache_dir: str | Path | None | bool = None,
                 requested: str = "cpu", fallbacks: list[str] | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError(f"onnxruntime is not installed ({exc})") from None
        graph = self._graph_bytes(model, cache_dir)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self._check_against_torch(model)
        self.choice = BackendChoice(requested, "cpu", "onnxruntime", "fp32", list(fallbacks or []))

    @staticmethod
    def _graph_bytes(model: nn.Module, cache_dir) -> bytes:
        if cache_dir is False:
            return export_onnx_bytes(model)
        cache = EngineCache(cache_dir, extension="onnx")
        key = CacheKey.make(model_hash(model), ShapeSpec.dynamic_range((64, 80), (2, 2), (4096, 4096)), "fp32",
                            f"onnx-opset{ONNX_OPSET}", runtime_versions("onnxruntime"))
        path = cache.lookup(key)
        if path is not None:
            log.debug("ONNX graph cache hit: %s", path)
            return path.read_bytes()
        graph = export_onnx_bytes(model)
        try:
            path = cache.store(key, lambda p: p.write_bytes(graph))
            log.info("exported M2PN to ONNX (%d kB), cached at %s", len(graph) // 1024, path)
        except OSError as exc:  # read-only home: run without the cache
            log.warning("cannot cache the ONNX graph in %s: %s", cache.root, exc)
        return graph

    def _check_against_torch(self, model: nn.Module) -> None:
        gen = torch.Generator().manual_seed(0)
        ir, vi = torch.rand(1, 1, 24, 32, generator=gen), torch.rand(1, 1, 24, 32, generator=gen)
        with torch.inference_mode():
            expected = FusedOutput(model).eval()(ir, vi).numpy()
        got = self._run(ir, vi)
        err = float(np.abs(got - expected).max())
        if not err <= ONNX_TOLERANCE:
            raise BackendUnavailableError(f"ONNX Runtime output differs from PyTorch by {err:.2e} (> {ONNX_TOLERANCE})")

    def _run(self, ir: torch.Tensor, vi: torch.Tensor) -> np.ndarray:
        feeds = {"ir": np.ascontiguousarray(ir.detach().cpu().numpy(), np.float32),
                 "vi": np.ascontiguousarray(vi.detach().cpu().numpy(), np.float32)}
        return self.session.run(["fused"], feeds)[0]

    def __call__(self, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._run(ir, vi))

    def close(self) -> None:
        self.session = None


def create_cpu_runner(model: nn.Module, runtime: str = "auto", threads: int | None = None,
                      cache_dir=None, requested: str = "cpu", fallbacks: list[str] | None = None) -> Runner:
    """``runtime``: ``onnxruntime``, ``torch`` or ``auto`` (ONNX Runtime, else torch with a logged reason)."""
    fallbacks = list(fallbacks or [])
    if runtime not in ("auto", "onnxruntime", "torch"):
        raise BackendUnavailableError(f"unknown CPU runtime {runtime!r}; use auto, onnxruntime or torch")
    if runtime in ("auto", "onnxruntime"):
        try:
            return OnnxCpuRunner(model, threads, cache_dir, requested, fallbacks)
        except BackendUnavailableError as exc:
            if runtime == "onnxruntime":
                raise
            reason = f"onnxruntime skipped: {exc}"
            log.warning("CPU backend: %s; using eager PyTorch", reason)
            fallbacks.append(reason)
        except Exception as exc:  # noqa: BLE001 - an export failure (unsupported op) must not stop fusion
            if runtime == "onnxruntime":
                raise BackendUnavailableError(f"ONNX export/session failed: {exc}") from None
            reason = f"onnxruntime skipped: export/session failed: {exc}"
            log.warning("CPU backend: %s; using eager PyTorch", reason)
            fallbacks.append(reason)
    return TorchCpuRunner(model, threads, requested, fallbacks)
