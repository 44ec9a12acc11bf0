"""torch-tensorrt backend: the model compiled to a TensorRT engine (FP16 by default), cached on disk.

torch-tensorrt is an optional extra (``pip install .[tensorrt]``) and needs an NVIDIA GPU; it is imported
only when this backend is built. The compile/save/load calls follow the torch-tensorrt documentation
(dynamo front end, ``torch_tensorrt.compile(..., ir="dynamo", inputs=[torch_tensorrt.Input(...)])``,
``torch_tensorrt.save`` / ``torch_tensorrt.load`` in the ExportedProgram format).

The engine bookkeeping (:class:`EngineSet`: which shape needs which engine, cache hit or build) is kept
apart from the compiler (:class:`TorchTensorRTCompiler`) so it can be tested on machines without a GPU.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Callable, Protocol

import torch
from torch import nn

from ..errors import BackendUnavailableError
from .base import BackendChoice, FusedOutput, Runner
from .cache import CacheKey, EngineCache, model_hash, runtime_versions
from .cuda import cuda_unavailable_reason
from .shapes import ShapeSpec, pad_to_multiple, padded_size

log = logging.getLogger("engine.backends")

Engine = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class EngineCompiler(Protocol):
    """What :class:`EngineSet` needs from a compiler."""

    name: str

    def versions(self) -> dict[str, str]: ...
    def compile(self, module: nn.Module, spec: ShapeSpec, precision: str) -> nn.Module: ...
    def save(self, compiled: nn.Module, path: Path, spec: ShapeSpec, precision: str) -> None: ...
    def load(self, path: Path) -> Engine: ...


def import_torch_tensorrt():
    """``torch_tensorrt`` or :class:`BackendUnavailableError` saying how to get it."""
    try:
        import torch_tensorrt  # noqa: PLC0415 - optional, heavy, GPU-only
    except ImportError as exc:
        raise BackendUnavailableError(
            f"torch-tensorrt is not installed ({exc}); install the 'tensorrt' extra on a machine with an NVIDIA GPU"
        ) from None
    return torch_tensorrt


class TorchTensorRTCompiler:
    """The real compiler: torch-tensorrt's dynamo front end, ExportedProgram files."""

    name = "torch-tensorrt"

    def __init__(self) -> None:
        self.trt = import_torch_tensorrt()

    def versions(self) -> dict[str, str]:
        return runtime_versions("torch_tensorrt")

    @staticmethod
    def _dtype(precision: str) -> torch.dtype:
        return torch.float16 if precision == "fp16" else torch.float32

    def _inputs(self, spec: ShapeSpec, precision: str) -> list:
        dtype = self._dtype(precision)
        one = self.trt.Input(min_shape=spec.min_shape, opt_shape=spec.opt_shape, max_shape=spec.max_shape, dtype=dtype)
        return [one, self.trt.Input(min_shape=spec.min_shape, opt_shape=spec.opt_shape, max_shape=spec.max_shape,
                                    dtype=dtype)]

    def compile(self, module: nn.Module, spec: ShapeSpec, precision: str) -> nn.Module:
        dtype = self._dtype(precision)
        # The module is cast too, so the graph is FP16 end to end whether or not the installed version
        # still honours ``enabled_precisions`` (newer releases type the graph explicitly from its inputs).
        module = module.to("cuda", dtype).eval()
        try:
            return self.trt.compile(module, ir="dynamo", inputs=self._inputs(spec, precision),
                                    enabled_precisions={dtype})
        except TypeError:  # releases that dropped enabled_precisions type the graph from its inputs alone
            return self.trt.compile(module, ir="dynamo", inputs=self._inputs(spec, precision))

    def save(self, compiled: nn.Module, path: Path, spec: ShapeSpec, precision: str) -> None:
        dtype = self._dtype(precision)
        example = [torch.rand(spec.opt_shape, device="cuda", dtype=dtype) for _ in range(2)]
        try:
            self.trt.save(compiled, str(path), arg_inputs=example)  # torch-tensorrt >= 2.5
        except TypeError:
            self.trt.save(compiled, str(path), inputs=example)

    def load(self, path: Path) -> Engine:
        return self.trt.load(str(path)).module()


class EngineSet:
    """The compiled engines of one model: one per padded shape (static) or one for a range (dynamic).

    Args:
        module: the model, returning the fused tensor (see :class:`FusedOutput`).
        compiler: an :class:`EngineCompiler`.
        cache: where engines live on disk.
        precision: ``fp16`` or ``fp32``.
        dynamic: one engine for every (H, W) in ``[min_hw, max_hw]`` instead of one per shape.
        multiple: inputs are padded to multiples of this (default 1: never). Padding changes M2PN's output
            (its prompts pool over the whole image, padding included: up to 0.167 at 120x90 padded to 128x96),
            and the cache is keyed by shape anyway, so engines are built for the exact frame size.
    """

    def __init__(self, module: nn.Module, compiler: EngineCompiler, cache: EngineCache, precision: str = "fp16",
                 dynamic: bool = False, multiple: int = 1, opt_hw: tuple[int, int] = (480, 640),
                 min_hw: tuple[int, int] = (16, 16), max_hw: tuple[int, int] = (1088, 1920)) -> None:
        self.module, self.compiler, self.cache = module, compiler, cache
        self.precision, self.dynamic, self.multiple = precision, dynamic, multiple
        self.opt_hw, self.min_hw, self.max_hw = padded_size(*opt_hw, multiple), min_hw, max_hw
        self.model_digest = model_hash(module)
        self._engines: dict[str, Engine] = {}
        self.builds = 0
        self.cache_hits = 0

    def spec_for(self, shape: tuple[int, int, int, int]) -> ShapeSpec:
        """The engine spec that serves a padded input of ``shape`` (B, 1, H, W)."""
        b, _, h, w = shape
        if self.dynamic:
            spec = ShapeSpec.dynamic_range(self.opt_hw, self.min_hw, self.max_hw, batch=b)
            if not spec.accepts(shape):
                raise BackendUnavailableError(
                    f"frame {w}x{h} is outside the dynamic engine range {self.min_hw[1]}x{self.min_hw[0]}.."
                    f"{self.max_hw[1]}x{self.max_hw[0]}")
            return spec
        return ShapeSpec.static(b, h, w)

    def key_for(self, spec: ShapeSpec) -> CacheKey:
        return CacheKey.make(self.model_digest, spec, self.precision, self.compiler.name, self.compiler.versions())

    def engine(self, shape: tuple[int, int, int, int]) -> Engine:
        """The engine for a padded input shape: in memory, else from the disk cache, else built and stored."""
        spec = self.spec_for(shape)
        key = self.key_for(spec)
        if key.digest in self._engines:
            return self._engines[key.digest]
        path = self.cache.lookup(key)
        if path is not None:
            log.info("TensorRT engine cache hit for %s (%s): %s", spec.key(), self.precision, path)
            self.cache_hits += 1
            engine = self.compiler.load(path)
        else:
            log.info("TensorRT engine cache miss for %s (%s): building (takes a while)", spec.key(), self.precision)
            compiled = self.compiler.compile(copy.deepcopy(self.module), spec, self.precision)
            self.builds += 1
            try:
                self.cache.store(key, lambda p: self.compiler.save(compiled, p, spec, self.precision))
            except OSError as exc:
                log.warning("cannot write the TensorRT engine cache in %s: %s", self.cache.root, exc)
            engine = compiled
        self._engines[key.digest] = engine
        return engine


class TensorRTRunner(Runner):
    """Run the (cached) TensorRT engine built for the input's exact shape on the GPU; return CPU float32.

    ``multiple`` > 1 pads to that multiple first and crops after (fewer engines, but the output then
    differs from the CPU's: see :class:`EngineSet`); the default 1 never pads.
    """

    def __init__(self, model: nn.Module, precision: str = "fp16", cache_dir: str | Path | None = None,
                 dynamic: bool = False, multiple: int = 1, opt_hw: tuple[int, int] = (480, 640),
                 compiler: EngineCompiler | None = None, requested: str = "tensorrt",
                 fallbacks: list[str] | None = None) -> None:
        if precision not in ("fp16", "fp32"):
            raise BackendUnavailableError(f"unknown precision {precision!r}; use fp16 or fp32")
        if compiler is None:
            compiler = TorchTensorRTCompiler()  # raises when torch-tensorrt is absent
            reason = cuda_unavailable_reason()
            if reason:
                raise BackendUnavailableError(reason)
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
        self.engines = EngineSet(FusedOutput(model).eval(), compiler, EngineCache(cache_dir, "ep"), precision,
                                 dynamic, multiple, opt_hw)
        self.choice = BackendChoice(requested, "tensorrt", compiler.name, precision, list(fallbacks or []))

    def __call__(self, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
        ir_p, (h, w) = pad_to_multiple(ir, self.engines.multiple)
        vi_p, _ = pad_to_multiple(vi, self.engines.multiple)
        engine = self.engines.engine(tuple(ir_p.shape))
        with torch.inference_mode():
            out = engine(ir_p.to(self.device, self.dtype), vi_p.to(self.device, self.dtype))
        return out[..., :h, :w].float().cpu()

    def close(self) -> None:
        self.engines._engines.clear()
