"""Input shapes for compiled backends: padding to the multiple a network needs, static vs dynamic shapes.

M2PN itself has no down-sampling (``size_multiple = 1``), but compiled engines are built for shapes: a
*static* engine accepts exactly one (H, W), a *dynamic* one any (H, W) inside [min, max]. Padding every
frame up to a fixed multiple (e.g. 32) would keep the number of distinct shapes small, but it changes
M2PN's output (its prompts pool globally over the padded image), so the runners build engines for the
exact size instead (a camera's size does not change, and the cache is keyed by shape);
:func:`pad_to_multiple` stays for networks that need it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import FusionInputError


def padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """(H, W) rounded up to multiples of ``multiple`` (>= 1)."""
    if multiple < 1:
        raise FusionInputError(f"size multiple must be >= 1, got {multiple}")
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom/right of ``x`` (B, C, H, W) up to multiples of ``multiple``.

    Reflection keeps the padded border looking like image content (a constant border would add edges the
    network reacts to); it needs the pad to be smaller than the side, otherwise replication is used.

    Returns:
        (padded tensor, original (H, W)) — crop with ``y[..., :H, :W]``.
    """
    h, w = x.shape[-2:]
    ph, pw = padded_size(h, w, multiple)
    pad_h, pad_w = ph - h, pw - w
    if pad_h == 0 and pad_w == 0:
        return x, (h, w)
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (h, w)


@dataclass(frozen=True)
class ShapeSpec:
    """The input shapes an engine is built for.

    Static: ``min == opt == max``. Dynamic: any (B, 1, H, W) with min <= shape <= max element-wise;
    ``opt`` is the shape TensorRT tunes its kernels for.
    """

    min_shape: tuple[int, int, int, int]
    opt_shape: tuple[int, int, int, int]
    max_shape: tuple[int, int, int, int]

    @property
    def dynamic(self) -> bool:
        return not (self.min_shape == self.opt_shape == self.max_shape)

    @classmethod
    def static(cls, batch: int, height: int, width: int) -> "ShapeSpec":
        shape = (batch, 1, height, width)
        return cls(shape, shape, shape)

    @classmethod
    def dynamic_range(cls, opt: tuple[int, int], min_hw: tuple[int, int] = (64, 64),
                      max_hw: tuple[int, int] = (1088, 1920), batch: int = 1) -> "ShapeSpec":
        """Dynamic (H, W) between ``min_hw`` and ``max_hw``, tuned for ``opt``; fixed batch."""
        if not (min_hw[0] <= opt[0] <= max_hw[0] and min_hw[1] <= opt[1] <= max_hw[1]):
            raise FusionInputError(f"optimal shape {opt} is outside the dynamic range {min_hw}..{max_hw}")
        return cls((batch, 1, *min_hw), (batch, 1, *opt), (batch, 1, *max_hw))

    def accepts(self, shape: tuple[int, ...]) -> bool:
        """True when a (B, 1, H, W) input fits this spec."""
        shape = tuple(int(s) for s in shape)
        return len(shape) == 4 and all(lo <= s <= hi for lo, s, hi in zip(self.min_shape, shape, self.max_shape))

    def key(self) -> str:
        """Compact text for cache keys and file names, e.g. ``1x1x480x640`` or ``1x1x64x64-1x1x480x640-1x1x1088x1920``."""
        fmt = lambda s: "x".join(str(v) for v in s)  # noqa: E731
        if not self.dynamic:
            return fmt(self.opt_shape)
        return "-".join(fmt(s) for s in (self.min_shape, self.opt_shape, self.max_shape))
