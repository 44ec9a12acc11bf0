"""PyTorch on an NVIDIA GPU: FP16 weights and activations, channels-last memory format, warm-up."""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from ..errors import BackendUnavailableError
from .base import BackendChoice, FusedOutput, Runner

log = logging.getLogger("engine.backends")


def cuda_unavailable_reason() -> str | None:
    """None when a CUDA device can be used, else why not (for the fallback log)."""
    if not torch.cuda.is_available():
        built = torch.version.cuda
        return "no CUDA device visible to PyTorch" + ("" if built else " (this torch build has no CUDA)")
    return None


class CudaRunner(Runner):
    """The model on ``cuda:0`` in FP16 (or FP32), channels-last.

    Inputs arrive as CPU float32 tensors; they are copied to the GPU, cast, run, and the result comes back
    as CPU float32. ``warmup`` passes at ``warmup_shape`` let cuDNN pick its kernels before anything is timed.
    """

    def __init__(self, model: nn.Module, precision: str = "fp16", warmup: int = 3,
                 warmup_shape: tuple[int, int] = (480, 640), requested: str = "cuda",
                 fallbacks: list[str] | None = None) -> None:
        reason = cuda_unavailable_reason()
        if reason:
            raise BackendUnavailableError(reason)
        if precision not in ("fp16", "fp32"):
            raise BackendUnavailableError(f"unknown precision {precision!r}; use fp16 or fp32")
        self.device = torch.device("cuda", 0)
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        torch.backends.cudnn.benchmark = True  # fixed frame size: let cuDNN autotune once
        module = FusedOutput(copy.deepcopy(model)).eval().to(self.device, self.dtype)
        self.module = module.to(memory_format=torch.channels_last)
        self.choice = BackendChoice(requested, "cuda", "torch", precision, list(fallbacks or []))
        self.warmup(warmup, warmup_shape)

    def warmup(self, passes: int, shape: tuple[int, int]) -> None:
        x = torch.rand(1, 1, *shape)
        for _ in range(max(0, passes)):
            self(x, x)
        torch.cuda.synchronize(self.device)

    def __call__(self, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            ir_d = ir.to(self.device, self.dtype, non_blocking=True).contiguous(memory_format=torch.channels_last)
            vi_d = vi.to(self.device, self.dtype, non_blocking=True).contiguous(memory_format=torch.channels_last)
            return self.module(ir_d, vi_d).float().cpu()

    def close(self) -> None:
        if getattr(self, "module", None) is not None:
            self.module = None
            torch.cuda.empty_cache()
