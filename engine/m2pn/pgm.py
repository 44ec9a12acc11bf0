"""Reconstruction (paper sec. 3.3): Memory-Guided Fusion (Eq. 7-8), AdaIN and the Prompt Guidance Module (Eq. 6)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .encoders import conv3x3


class MemoryGuidedFusion(nn.Module):
    """Multi-head attention with query Theta_q and keys/values [G_ir, G_vi] (Eq. 7-8).

    Shapes: theta_q (B, D), g_ir (B, D), g_vi (B, D) -> Theta_p (B, D), preference alpha (B, 2)
    (mean over heads of the softmax weights for IR and VIS).
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.w_q, self.w_k, self.w_v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, theta_q: Tensor, g_ir: Tensor, g_vi: Tensor) -> tuple[Tensor, Tensor]:
        b, d = theta_q.shape
        bank = torch.stack([g_ir, g_vi], dim=1)                                        # (B, 2, D)
        q = self.w_q(theta_q).view(b, self.heads, 1, self.head_dim)
        k = self.w_k(bank).view(b, 2, self.heads, self.head_dim).transpose(1, 2)      # (B, h, 2, dk)
        v = self.w_v(bank).view(b, 2, self.heads, self.head_dim).transpose(1, 2)
        alpha = (q @ k.transpose(-1, -2) / self.head_dim**0.5).softmax(dim=-1)          # (B, h, 1, 2)
        theta_p = (alpha @ v).reshape(b, d)
        return self.out(theta_p), alpha.mean(dim=1).squeeze(1)


class AdaIN(nn.Module):
    """Adaptive instance normalisation driven by a prompt: ``gamma(p) * IN(x) + beta(p)``.

    gamma is predicted as 1 + delta so an untrained module starts close to plain instance norm.
    Shapes: x (B, C, H, W), prompt (B, D) -> (B, C, H, W).
    """

    def __init__(self, channels: int, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.affine = nn.Linear(dim, 2 * channels)
        self.eps = eps

    def forward(self, x: Tensor, prompt: Tensor) -> Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = (x.var(dim=(2, 3), keepdim=True, unbiased=False) + self.eps).sqrt()
        delta_gamma, beta = self.affine(prompt)[:, :, None, None].chunk(2, dim=1)
        return (1 + delta_gamma) * (x - mean) / std + beta


class PromptGuidanceModule(nn.Module):
    """One decoder stage: its own MGF makes Theta_p^i, then ``Phi = AdaIN(Phi_in, Theta_p^i) + Phi_in``
    (Eq. 6), then a 3x3 conv to the next width.

    With ``use_prompts=False`` (ablation Case 9) the stage is just the conv.
    Shapes: x (B, C_in, H, W) -> (B, C_out, H, W); alpha (B, 2) or None.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int, heads: int, use_prompts: bool = True) -> None:
        super().__init__()
        self.use_prompts = use_prompts
        if use_prompts:
            self.mgf = MemoryGuidedFusion(dim, heads)
            self.adain = AdaIN(in_channels, dim)
        self.conv = conv3x3(in_channels, out_channels)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: Tensor, theta_q: Tensor | None, g_ir: Tensor | None, g_vi: Tensor | None) -> tuple[Tensor, Tensor | None]:
        alpha = None
        if self.use_prompts:
            theta_p, alpha = self.mgf(theta_q, g_ir, g_vi)
            x = self.adain(x, theta_p) + x
        return self.act(self.conv(x)), alpha
