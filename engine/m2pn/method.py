"""The registered ``m2pn`` fusion method: a trained M2PN run for inference with its memory bank frozen.

Inference never changes the network: the model is in eval mode (the Dynamic Memory Bank updates only in
training mode), every parameter has ``requires_grad=False`` and the forward pass runs under
``torch.inference_mode()``. Two fusions of the same pair therefore give the same image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..backends import RunnerBacked, create_runner
from ..errors import FusionError, FusionInputError
from ..methods.base import FusionMethod
from ..registry import register_method
from .model import M2PN
from .weights import load_frozen


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad the bottom/right of ``x`` (B, C, H, W) so H and W are multiples of ``multiple``.

    Returns the padded tensor and the original (H, W) to crop back to. Reflection needs a side of at least
    2 pixels, which every input here has (checked by the caller).
    """
    h, w = x.shape[-2:]
    if multiple <= 1:
        return x, h, w
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    return x, h, w


@register_method("m2pn", "M2PN network (memory-orchestrated multi-prompt fusion), frozen memory bank")
class M2PNMethod(RunnerBacked, FusionMethod):
    """Fuse thermal and visible luminance with a trained M2PN.

    Options:
        weights: weights file written by ``engine.m2pn.save_weights`` or an ``engine.train`` checkpoint
            (default ``engine/weights/m2pn.pt``). Missing or corrupt -> :class:`engine.errors.WeightsError`.
        threads: torch CPU threads for the forward pass (None leaves torch's setting alone).
        backend: ``auto`` | ``tensorrt`` | ``cuda`` | ``cpu`` (see :func:`engine.backends.create_runner`;
            unavailable ones fall back in that order, with the reason logged and kept in ``backend_choice``).
        cpu_runtime: ``auto`` (ONNX Runtime, else eager PyTorch) | ``onnxruntime`` | ``torch``.
        cache_dir: compiled-engine / ONNX graph cache folder.
        model: an already built :class:`M2PN` (tests, training previews); ``weights`` is then ignored.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        threads: int | None = None,
        backend: str = "auto",
        model: M2PN | None = None,
        cpu_runtime: str = "auto",
        cache_dir: str | Path | None = None,
    ) -> None:
        if threads is not None:
            try:
                count = int(threads)
            except (TypeError, ValueError):
                count = 0
            if count < 1:
                raise FusionInputError(f"m2pn: threads must be a whole number of at least 1, got {threads!r}")
            torch.set_num_threads(count)  # process-wide: torch has one intra-op thread pool
        # Frozen: eval mode keeps the memory bank out of Eq. 5; no parameter wants a gradient.
        self.model, self.meta, self.weights_path = load_frozen(weights, model)
        self.size_multiple = int(getattr(self.model, "size_multiple", 1) or 1)
        self._runner = create_runner(self.model, backend, cache_dir=cache_dir, cpu_runtime=cpu_runtime,
                                     threads=count if threads is not None else None)

    # ---- fusion ---------------------------------------------------------------------------------
    def fuse(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """(H, W) float32 [0, 1] thermal and visible luminance -> (H, W) float32 [0, 1] fused."""
        return self.fuse_batch(ir[None], vi[None])[0]

    def fuse_batch(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """(B, H, W) float32 [0, 1] pairs -> (B, H, W) float32 [0, 1], one forward pass."""
        ir, vi = np.asarray(ir), np.asarray(vi)
        if ir.ndim != 3 or ir.shape != vi.shape:
            raise FusionInputError(
                f"m2pn: expected two (B, H, W) luminance batches of one shape, got {ir.shape} and {vi.shape}"
            )
        if min(ir.shape[1:]) < 2:
            raise FusionInputError(f"m2pn: images must be at least 2x2 pixels, got {ir.shape[2]}x{ir.shape[1]}")
        if self._runner is None:
            raise FusionError("m2pn: this method was closed; create a new one to fuse again")
        with torch.inference_mode():
            ir_t = torch.from_numpy(np.ascontiguousarray(ir, dtype=np.float32))[:, None]  # (B, 1, H, W)
            vi_t = torch.from_numpy(np.ascontiguousarray(vi, dtype=np.float32))[:, None]
            ir_t, h, w = pad_to_multiple(ir_t, self.size_multiple)
            vi_t, _, _ = pad_to_multiple(vi_t, self.size_multiple)
            fused = self._runner(ir_t, vi_t)[:, 0, :h, :w]
            out = fused.float().clamp_(0.0, 1.0).cpu().numpy()
        return np.ascontiguousarray(out, dtype=np.float32)
