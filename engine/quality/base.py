"""The interface the memory bank uses to judge fused images (paper Eq. 3)."""

from __future__ import annotations

import torch
from torch import Tensor


class QualityEvaluator(torch.nn.Module):
    """No trainable parameters. ``forward(fused)``: (B, 1, H, W) in [0, 1] -> (B,) scores in (0, 1)."""

    name: str = "base"
    version: str = "base"

    def forward(self, fused: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError
