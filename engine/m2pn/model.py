"""The M2PN network (paper sec. 3, Fig. 2): feature extraction, prompt generation, reconstruction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import M2PNConfig
from .csgn import CSGN
from .dmb import DynamicMemoryBank, MemoryUpdate
from .encoders import DenseEncoder, ResidualEncoder, conv3x3
from .pgm import PromptGuidanceModule

QualityFn = Callable[[Tensor], Tensor]  # fused (B, 1, H, W) in [0, 1] -> (B,) scores in (0, 1)


@dataclass
class M2PNOutput:
    """Everything one forward pass produces.

    fused (B, 1, H, W) in [0, 1]; phi_ir, phi_vi (B, C, H, W) encoder features; f_ir, f_vi (B, D) the
    flattened features projected for Eq. 17; g_ir, g_vi (B, D) modality prompts (None without prompts);
    theta_f, theta_q (B, D); similarity (B, N) to the memory; alphas: list of (B, 2) IR/VIS preferences
    (one per PGM); quality (B,) evaluator scores (training only); memory_update: what Eq. 5 changed.
    """

    fused: Tensor
    phi_ir: Tensor
    phi_vi: Tensor
    f_ir: Tensor
    f_vi: Tensor
    g_ir: Tensor | None = None
    g_vi: Tensor | None = None
    theta_f: Tensor | None = None
    theta_q: Tensor | None = None
    similarity: Tensor | None = None
    alphas: list[Tensor] | None = None
    quality: Tensor | None = None
    memory_update: MemoryUpdate | None = None


class M2PN(nn.Module):
    """Memory-orchestrated multi-prompt network.

    ``forward(ir, vi)``: ir, vi (B, 1, H, W) float in [0, 1], any H, W >= 2 (fully convolutional, no
    down-sampling) -> :class:`M2PNOutput`. The decoder ends in Tanh (Algorithm 1); its output t in
    (-1, 1) is mapped to the fused image by ``(t + 1) / 2`` so that fused lies in (0, 1).

    The memory bank changes only in training mode and only when a quality evaluator is attached
    (:meth:`set_quality_evaluator`) or ``use_quality`` is off; inference (eval mode) never changes it.
    """

    #: the network needs no particular size multiple (no pooling); kept for callers that pad
    size_multiple: int = 1

    def __init__(self, config: M2PNConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or M2PNConfig()
        cfg.validate()
        c = cfg.encoder_channels
        d = cfg.prompt_dim
        self.encoder = DenseEncoder(cfg.stem_channels, cfg.dense_growth, cfg.dense_layers)
        self.fuse_conv = nn.Sequential(conv3x3(2 * c, c), nn.LeakyReLU(0.1))        # Phi_f = Conv(CAT(.))
        # F_ir / F_vi of Eq. 17: flattened (pooled) encoder features projected to the prompt dimension
        self.contrast_head = nn.Linear(c * cfg.contrast_pool**2, d)
        self.prompts_enabled = cfg.use_prompts
        if cfg.use_prompts:
            with_residual = cfg.use_csgn and cfg.use_residual
            self.residual_encoder = ResidualEncoder(cfg.residual_channels) if with_residual else None
            self.csgn = CSGN(c, cfg.residual_channels if with_residual else 0, d, cfg.graph_heads, use_graph=cfg.use_csgn)
            self.dmb = DynamicMemoryBank(
                c, d, cfg.memory_slots, cfg.memory_momentum, cfg.retrieval_temperature, cfg.kappa_init,
                cfg.quality_stats_momentum, cfg.gate_temperature, cfg.target_accept_rate,
                use_memory=cfg.use_dmb, use_quality=cfg.use_quality,
                key_mode=cfg.memory_key, merge_threshold=cfg.memory_merge_threshold,
                key_momentum=cfg.memory_key_momentum,
            )
        widths = (c, *cfg.decoder_channels)
        self.pgms = nn.ModuleList(
            PromptGuidanceModule(widths[i], widths[i + 1], d, cfg.mgf_heads, cfg.use_prompts) for i in range(3)
        )
        self.head = conv3x3(widths[-1], 1)
        object.__setattr__(self, "_quality_fn", None)  # not a submodule: never saved with the weights

    def set_quality_evaluator(self, evaluator: QualityFn | None) -> None:
        """Attach the evaluator used by the memory-bank update (Eq. 3) in training. It is not saved."""
        object.__setattr__(self, "_quality_fn", evaluator)

    @property
    def quality_evaluator(self) -> QualityFn | None:
        return self._quality_fn

    def contrast_features(self, phi: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, D): adaptive average pool to p x p, flatten, linear (F of Eq. 17)."""
        pooled = F.adaptive_avg_pool2d(phi, self.config.contrast_pool).flatten(1)
        return self.contrast_head(pooled)

    def forward(self, ir: Tensor, vi: Tensor) -> M2PNOutput:
        batch = ir.shape[0]
        # Siamese encoder: one pass over the stacked batch shares the weights (and is faster)
        phi = self.encoder(torch.cat([ir, vi], dim=0))
        phi_ir, phi_vi = phi[:batch], phi[batch:]
        phi_f = self.fuse_conv(torch.cat([phi_ir, phi_vi], dim=1))
        out = M2PNOutput(
            fused=phi_f, phi_ir=phi_ir, phi_vi=phi_vi,
            f_ir=self.contrast_features(phi_ir), f_vi=self.contrast_features(phi_vi),
        )
        theta_q = g_ir = g_vi = None
        if self.prompts_enabled:
            phi_m = self.residual_encoder(ir - vi) if self.residual_encoder is not None else None
            g_ir, g_vi = self.csgn(phi_ir, phi_vi, phi_f, phi_m)
            theta_f, theta_q, similarity = self.dmb(phi_f)
            out.g_ir, out.g_vi, out.theta_f, out.theta_q, out.similarity = g_ir, g_vi, theta_f, theta_q, similarity
        x, alphas = phi_f, []
        for pgm in self.pgms:
            x, alpha = pgm(x, theta_q, g_ir, g_vi)
            alphas.append(alpha)
        out.fused = (torch.tanh(self.head(x)) + 1.0) * 0.5
        out.alphas = alphas if self.prompts_enabled else None
        if self.training and self.prompts_enabled and self.config.use_dmb:
            out.quality, out.memory_update = self._update_memory(out)
        return out

    def _update_memory(self, out: M2PNOutput) -> tuple[Tensor | None, MemoryUpdate | None]:
        quality = None
        if self.config.use_quality:
            if self._quality_fn is None:
                return None, None  # nothing to judge quality with: leave the memory alone
            with torch.no_grad():
                quality = self._quality_fn(out.fused.detach()).detach().flatten()
        return quality, self.dmb.update(out.theta_f, quality)

    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
