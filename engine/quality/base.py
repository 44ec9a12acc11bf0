"""The interface the memory bank uses to judge fused images (paper Eq. 3), and the errors of this package."""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import FusionError, FusionInputError


class QualityEvaluatorError(FusionError, ValueError):
    """Unknown evaluator kind or bad options for one."""


class QualityEvaluator(torch.nn.Module):
    """No trainable parameters (every weight frozen). ``forward(fused)``: (B, 1, H, W) in [0, 1] -> (B,) in (0, 1).

    ``name`` is the kind ("noref" | "clip"); ``version`` names the exact formula or weights, so a training
    run can record what judged its memory bank.
    """

    name: str = "base"
    version: str = "base"

    def forward(self, fused: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def train(self, mode: bool = True) -> "QualityEvaluator":
        """Always stays in eval mode: an evaluator is a fixed judge, even inside a training loop."""
        return super().train(False)


def check_fused_batch(fused: Tensor, min_size: int = 3) -> None:
    """Raise :class:`FusionInputError` unless ``fused`` is a (B, 1, H, W) floating tensor with H, W >= min_size."""
    if not isinstance(fused, Tensor):
        raise FusionInputError(f"quality evaluator expects a torch.Tensor, got {type(fused).__name__}")
    if fused.ndim != 4 or fused.shape[1] != 1:
        raise FusionInputError(
            f"quality evaluator expects fused images of shape (B, 1, H, W), got {tuple(fused.shape)}"
        )
    if not fused.is_floating_point():
        raise FusionInputError(f"quality evaluator expects a float tensor in [0, 1], got dtype {fused.dtype}")
    if fused.shape[0] == 0 or fused.shape[2] < min_size or fused.shape[3] < min_size:
        raise FusionInputError(
            f"quality evaluator needs a non-empty batch of images at least {min_size}x{min_size}, "
            f"got {tuple(fused.shape)}"
        )


def freeze(module: torch.nn.Module) -> torch.nn.Module:
    """Turn off gradients for every parameter and put the module in eval mode; returns it."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()
