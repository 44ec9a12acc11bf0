"""`FusionEngine`: the one entry point the application, the CLIs, the evaluation and the benchmarks use."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .color import merge_luma, merge_luma_uint8, split_luma, split_luma_uint8, to_gray, to_uint8
from .errors import FusionInputError
from .methods.base import FusionMethod
from .registry import create_method


class FusionEngine:
    """Fuse registered thermal/visible pairs with a named method.

    Example::

        engine = FusionEngine("m2pn")
        fused = engine.fuse(ir, vis)        # ir (H, W) uint8, vis (H, W, 3) BGR uint8 -> (H, W, 3) uint8

    Colour handling follows the M2PN paper: the thermal image is fused with the luminance (Y of YCbCr)
    of the visible image and the visible chrominance is restored afterwards. A gray visible image gives a
    gray result. Inputs must already be registered (same size); see ``calibration``.
    """

    def __init__(self, method: str | FusionMethod = "m2pn", **method_options) -> None:
        self.method: FusionMethod = (
            method if isinstance(method, FusionMethod) else create_method(method, **method_options)
        )

    @property
    def name(self) -> str:
        return self.method.name

    def fuse(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        """Fuse one pair.

        Args:
            ir: (H, W) or (H, W, 3) thermal image, uint8 or float in [0, 1] (16-bit: apply a gain control first).
            vis: (H, W) gray or (H, W, 3) BGR visible image, uint8 or float in [0, 1], same H and W.

        Returns:
            uint8 (H, W, 3) BGR when ``vis`` is colour (or the method paints colour), else uint8 (H, W).
        """
        return self.fuse_batch([ir], [vis])[0]

    def fuse_batch(self, irs: Sequence[np.ndarray], viss: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Fuse several pairs; equally sized pairs go through the method in one batch.

        Args:
            irs, viss: sequences of N images each, as for :meth:`fuse`; pair i must share H and W.

        Returns:
            list of N uint8 images, as for :meth:`fuse`.
        """
        if len(irs) != len(viss):
            raise FusionInputError(f"got {len(irs)} thermal images but {len(viss)} visible images")
        if len(irs) == 0:
            return []
        ir_planes, vi_inputs, chromas = [], [], []
        for i, (ir, vis) in enumerate(zip(irs, viss)):
            label = f" (pair {i})" if len(irs) > 1 else ""
            ir_y = to_gray(ir, "thermal image" + label)
            if _is_uint8_colour(vis) and not self.method.produces_color:
                vi_y, crcb = split_luma_uint8(vis)  # camera frames: the 8-bit conversion saves ~8 ms at 640x480
            else:
                vi_y, crcb = split_luma(vis, "visible image" + label)
            if ir_y.shape != vi_y.shape:
                raise FusionInputError(
                    f"thermal image{label} is {ir_y.shape[1]}x{ir_y.shape[0]} but visible image is "
                    f"{vi_y.shape[1]}x{vi_y.shape[0]}; register them onto one grid first (see calibration)"
                )
            ir_planes.append(ir_y)
            chromas.append(crcb)
            vi_inputs.append(merge_luma(vi_y, crcb) if self.method.produces_color else vi_y)

        fused_planes: list[np.ndarray | None] = [None] * len(irs)
        # Group pairs by size (and colour layout) so a network runs one forward pass per group.
        groups: dict[tuple, list[int]] = {}
        for i, (ir_y, vi_in) in enumerate(zip(ir_planes, vi_inputs)):
            groups.setdefault((ir_y.shape, vi_in.shape), []).append(i)
        for indices in groups.values():
            out = self.method.fuse_batch(
                np.stack([ir_planes[i] for i in indices]), np.stack([vi_inputs[i] for i in indices])
            )
            for j, i in enumerate(indices):
                fused_planes[i] = out[j]

        results = []
        for plane, crcb in zip(fused_planes, chromas):
            if self.method.produces_color:
                results.append(to_uint8(plane))
            elif crcb is not None and crcb.dtype == np.uint8:
                results.append(merge_luma_uint8(plane, crcb))
            else:
                results.append(to_uint8(merge_luma(plane, crcb)))
        return results

    def close(self) -> None:
        self.method.close()

    def __enter__(self) -> "FusionEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_uint8_colour(image: np.ndarray) -> bool:
    """True for a non-empty (H, W, 3|4) uint8 array (the fast colour path)."""
    return (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] in (3, 4) and image.shape[0] > 0 and image.shape[1] > 0)
