"""Inference backends for M2PN behind one interface: ``create_runner(model, backend=...) -> Runner``.

``backend``: ``auto`` (tensorrt, then cuda, then cpu), ``tensorrt``, ``cuda`` or ``cpu``. A backend that
cannot run here falls back to the next one in that order; every fallback is logged on the
``engine.backends`` logger with its reason and recorded in ``runner.choice`` (shown by the viewer and the
benchmark). Example::

    runner = create_runner(model, backend="auto")
    fused = runner(ir, vi)                 # (B, 1, H, W) float32 CPU tensors in [0, 1]
    print(runner.choice.describe())        # e.g. "cpu (onnxruntime, fp32); requested auto: tensorrt skipped: ..."
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from ..errors import BackendUnavailableError
from .base import BACKEND_NAMES, BackendChoice, FusedOutput, Runner, RunnerBacked
from .cache import CacheKey, EngineCache, default_cache_dir, model_hash
from .cpu import OnnxCpuRunner, TorchCpuRunner, create_cpu_runner
from .shapes import ShapeSpec, pad_to_multiple, padded_size

log = logging.getLogger("engine.backends")

#: the order ``auto`` tries, and where an explicit choice falls back to
FALLBACK_ORDER = ("tensorrt", "cuda", "cpu")


def create_runner(model: nn.Module, backend: str = "auto", precision: str | None = None,
                  cache_dir: str | Path | None = None, cpu_runtime: str = "auto", threads: int | None = None,
                  dynamic_shapes: bool = False, strict: bool = False) -> Runner:
    """Build the fastest available runner for ``model`` starting from ``backend``.

    Args:
        model: an M2PN (or any module with ``forward(ir, vi)`` returning ``.fused`` or a tensor), eval mode.
        backend: ``auto`` | ``tensorrt`` | ``cuda`` | ``cpu``.
        precision: ``fp16`` / ``fp32`` for the GPU backends (default fp16); the CPU always runs fp32.
        cache_dir: compiled-engine / ONNX cache (default ``~/.cache/irvis-fusion/engines``).
        cpu_runtime: ``auto`` (ONNX Runtime, else torch), ``onnxruntime`` or ``torch``.
        threads: CPU threads for the cpu backend (None: the runtime's default).
        dynamic_shapes: TensorRT builds one engine for a range of sizes instead of one per size.
        strict: raise :class:`BackendUnavailableError` instead of falling back.
    """
    requested = str(backend).lower()
    if requested not in BACKEND_NAMES:
        raise BackendUnavailableError(f"unknown backend {backend!r}; use one of: {', '.join(BACKEND_NAMES)}")
    gpu_precision = precision or "fp16"
    order = FALLBACK_ORDER if requested == "auto" else FALLBACK_ORDER[FALLBACK_ORDER.index(requested):]
    fallbacks: list[str] = []
    for name in order:
        try:
            if name == "tensorrt":
                from .tensorrt import TensorRTRunner

                runner = TensorRTRunner(model, gpu_precision, cache_dir, dynamic_shapes, requested=requested,
                                        fallbacks=fallbacks)
            elif name == "cuda":
                from .cuda import CudaRunner

                runner = CudaRunner(model, gpu_precision, requested=requested, fallbacks=fallbacks)
            else:
                runner = create_cpu_runner(model, cpu_runtime, threads, cache_dir, requested, fallbacks)
        except BackendUnavailableError as exc:
            if strict or name == order[-1]:
                raise
            reason = f"{name} skipped: {exc}"
            level = logging.INFO if requested == "auto" else logging.WARNING
            log.log(level, "backend %s: %s; trying %s", requested, reason, order[order.index(name) + 1])
            fallbacks.append(reason)
            continue
        log.info("inference backend: %s", runner.choice.describe())
        return runner
    raise AssertionError("unreachable: the cpu backend always builds or raises")


__all__ = [
    "BACKEND_NAMES", "BackendChoice", "CacheKey", "EngineCache", "FALLBACK_ORDER", "FusedOutput",
    "OnnxCpuRunner", "Runner", "RunnerBacked", "ShapeSpec", "TorchCpuRunner", "create_runner", "default_cache_dir",
    "model_hash", "pad_to_multiple", "padded_size",
]
