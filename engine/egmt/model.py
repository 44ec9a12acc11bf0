"""EGMT: entity-guided multi-task network for infrared/visible fusion (Shao et al., sec. III).

Flow for one pair (B, 1, H, W) each, H and W multiples of ``patch_size`` (the method pads)::

    shallow conv encoders           Phi_s^ir, Phi_s^vi               (B, C, H, W)
    ECIM  channel cross-attention   Phi_ic^m  (Eq. 1-2)              (B, C, H, W)
          patch tokens + MSA        Phi_ct^m  (Eq. 3)                (B, T, d)
          CGHA with entities        Eq. 4-6                          (B, T, d)
          back to pixels, + Phi_ic^m                                 (B, C, H, W)
    shared representation Phi_f^sr = [ir ; vi]                       (B, 2C, H, W)
    reconstructor (Eq. 7)           fused                            (B, 1, H, W)
    classification head (Eq. 8)     logits                           (B, K)

Entities are text features (B, E, D_e) with a validity mask (B, E); one shared FC maps them to the
token width d (the paper's "fully-connected layer ... same dimension as the visual features").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .attention import CGHA, ChannelCrossAttention, PatchTokens, TokenSelfAttention
from .config import EGMTConfig


@dataclass
class EGMTOutput:
    fused: Tensor                 # (B, 1, H, W) in [0, 1]
    logits: Tensor | None = None  # (B, K) multi-label logits; None without the multi-task head


def shallow_encoder(channels: int) -> nn.Sequential:
    """Two vanilla 3x3 conv blocks: (B, 1, H, W) -> (B, C, H, W)."""
    return nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.LeakyReLU(0.2),
                         nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.2))


def mask_entities(entities: Tensor, rate: float, generator: torch.Generator | None = None) -> Tensor:
    """Zero exactly ``round(rate * E * D)`` uniformly chosen elements of each sample's flattened entity
    features (Eq. 8's Mask). (B, E, D) -> (B, E, D)."""
    b, e, d = entities.shape
    n = e * d
    k = int(round(rate * n))
    if k == 0 or n == 0:
        return entities
    scores = torch.rand(b, n, generator=generator, device=entities.device)
    drop = scores.argsort(dim=1)[:, :k]
    keep = torch.ones(b, n, device=entities.device, dtype=entities.dtype).scatter_(1, drop, 0.0)
    return entities * keep.reshape(b, e, d)


class ModalityBranch(nn.Module):
    """ECIM for one modality after its channel cross-attention: tokens, MSA, CGHA, back to pixels."""

    def __init__(self, cfg: EGMTConfig) -> None:
        super().__init__()
        self.patches = PatchTokens(cfg.channels, cfg.patch_size, cfg.token_dim)
        self.msa = TokenSelfAttention(cfg.token_dim, cfg.token_heads, cfg.ffn_ratio) if cfg.use_token_attention else None
        self.cgha = CGHA(cfg.token_dim, cfg.cgha_heads, cfg.ffn_ratio) if cfg.use_cgha else None

    def forward(self, x: Tensor, entities: Tensor, entity_mask: Tensor) -> Tensor:
        b, c, h, w = x.shape
        t = self.patches.tokens(x)
        if self.msa is not None:
            t = self.msa(t)                            # Eq. 3
        if self.cgha is not None:
            t = self.cgha(t, entities, entity_mask)    # Eq. 4-6
        return x + self.patches.image(t, c, h, w)      # the "+ Phi_ic" residual of Eq. 3


class EGMT(nn.Module):
    """The network. ``forward(ir, vi, entities, entity_mask)`` -> :class:`EGMTOutput`."""

    def __init__(self, config: EGMTConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or EGMTConfig()
        cfg.validate()
        self.size_multiple = cfg.patch_size
        c = cfg.channels
        self.encode_ir, self.encode_vi = shallow_encoder(c), shallow_encoder(c)
        if cfg.use_channel_attention:
            self.mca_ir = ChannelCrossAttention(c, cfg.channel_heads, cfg.patch_size)   # Q from IR, K/V from VIS
            self.mca_vi = ChannelCrossAttention(c, cfg.channel_heads, cfg.patch_size)   # Q from VIS, K/V from IR
        self.branch_ir, self.branch_vi = ModalityBranch(cfg), ModalityBranch(cfg)
        self.entity_fc = nn.Linear(cfg.entity_dim, cfg.token_dim) if cfg.use_cgha else None
        r1, r2 = cfg.recon_channels
        self.reconstruct = nn.Sequential(                                  # Eq. 7: Conv3, Conv3, Conv1
            nn.Conv2d(2 * c, r1, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(r1, r2, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(r2, 1, 1), nn.Sigmoid())
        if cfg.use_multitask:                                              # Eq. 8
            self.joint = nn.Linear(cfg.entity_dim, 2 * c)                  # entities -> visual-entity joint space
            self.null_joint = nn.Parameter(torch.zeros(1, 1, 2 * c))
            self.classify = nn.Linear(2 * c, cfg.num_classes)

    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def shared_representation(self, ir: Tensor, vi: Tensor, entities: Tensor, entity_mask: Tensor) -> Tensor:
        """Phi_f^sr, (B, 2C, H, W)."""
        f_ir, f_vi = self.encode_ir(ir), self.encode_vi(vi)
        if self.config.use_channel_attention:
            f_ir, f_vi = self.mca_ir(f_ir, f_vi), self.mca_vi(f_vi, f_ir)      # Eq. 2, both directions
        ent = self.entity_fc(entities) if self.entity_fc is not None else entities
        return torch.cat([self.branch_ir(f_ir, ent, entity_mask), self.branch_vi(f_vi, ent, entity_mask)], dim=1)

    def classification_logits(self, shared: Tensor, entities: Tensor, entity_mask: Tensor) -> Tensor:
        """Eq. 8: ``FC(MP(Phi_f^sr * Mask(Phi_en)))``; the (masked) entity features, mapped to the joint space
        and averaged over the pair's entities (plus a learned "no entity" vector), weight the channels of
        Phi_f^sr; global max pooling over pixels; FC to K logits. (B, 2C, H, W) -> (B, K)."""
        if self.training and self.config.mask_rate > 0:
            entities = mask_entities(entities, self.config.mask_rate)
        joint = self.joint(entities) * entity_mask[..., None]                       # (B, E, 2C)
        weight = (joint.sum(1, keepdim=True) + self.null_joint) / (entity_mask.sum(1) + 1)[:, None, None]
        pooled = (shared * weight[:, 0, :, None, None]).amax(dim=(2, 3))            # (B, 2C)
        return self.classify(pooled)

    def forward(self, ir: Tensor, vi: Tensor, entities: Tensor | None = None, entity_mask: Tensor | None = None,
                classify: bool = True) -> EGMTOutput:
        """ir, vi (B, 1, H, W) in [0, 1]; entities (B, E, D_e) (None: no entities); mask (B, E) bool."""
        b = ir.shape[0]
        if entities is None:
            entities = ir.new_zeros(b, 0, self.config.entity_dim)
        if entity_mask is None:
            entity_mask = torch.ones(entities.shape[:2], dtype=torch.bool, device=ir.device)
        shared = self.shared_representation(ir, vi, entities, entity_mask)
        fused = self.reconstruct(shared)
        logits = None
        if classify and self.config.use_multitask:
            logits = self.classification_logits(shared, entities, entity_mask)
        return EGMTOutput(fused=fused, logits=logits)
