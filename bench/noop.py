"""The ``noop`` method of the benchmark: a pipeline pass that copies the visible frame instead of fusing.

It gives the floor of the pipeline's own cost (read, gain, colour split/merge, draw); every method's
frame rate is also reported relative to it, which cancels part of the noise of a shared machine.
"""

from __future__ import annotations

import numpy as np

from engine.methods.base import FusionMethod
from engine.registry import _REGISTRY, register_method

NOOP = "noop"


class NoopMethod(FusionMethod):
    """Returns the visible luminance unchanged: (H, W) float32 -> the same array."""

    description = "no fusion: the visible frame (benchmark baseline)"

    def fuse(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        return vi


def ensure_registered() -> None:
    """Register ``noop`` once (only the benchmark needs it, so it is not a built-in method)."""
    if NOOP not in _REGISTRY:
        register_method(NOOP, NoopMethod.description)(NoopMethod)
