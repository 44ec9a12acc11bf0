"""The interface every fusion method implements (M2PN, classical baselines, display modes)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class FusionMethod(ABC):
    """One way of fusing a registered thermal/visible pair.

    Methods see float32 images in [0, 1]. A luminance method (``produces_color = False``) receives the
    visible luminance and returns fused luminance; :class:`engine.FusionEngine` puts the visible
    chrominance back. A colour method (``produces_color = True``, e.g. thermal palettes, MSX overlay)
    receives the visible image as given (gray or BGR) and returns a BGR image itself.

    Methods keep no per-frame state unless they say so (``stateful``): the engine may call them from
    a worker thread and in any order.
    """

    #: registry name, set by :func:`engine.registry.register_method`
    name: str = ""
    #: one line for menus and ``--help``
    description: str = ""
    produces_color: bool = False
    #: True for methods whose output depends on earlier frames (temporal smoothing, automatic gain).
    stateful: bool = False

    @abstractmethod
    def fuse(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """Fuse one pair.

        Args:
            ir: (H, W) float32 thermal image in [0, 1].
            vi: (H, W) float32 visible luminance in [0, 1]; for colour methods (H, W) gray or (H, W, 3) BGR.

        Returns:
            (H, W) float32 fused luminance in [0, 1], or (H, W, 3) BGR float32 for colour methods.
        """

    def fuse_batch(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """Fuse a batch of equally sized pairs.

        Args:
            ir: (B, H, W) float32 in [0, 1].
            vi: (B, H, W) float32 in [0, 1] (or (B, H, W, 3) for colour methods).

        Returns:
            (B, H, W) fused luminance, or (B, H, W, 3) BGR for colour methods.

        Networks override this to run one batched forward pass; the default loops.
        """
        return np.stack([self.fuse(a, b) for a, b in zip(ir, vi)])

    def close(self) -> None:
        """Release resources (threads, GPU memory). Safe to call twice."""
